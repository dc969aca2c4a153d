// libjpeg behind setjmp: see CJPEGShim.h for why every fallible call lives here and not in Swift.
#include "CJPEGShim.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>

// libjpeg's error manager, extended with the jump point and the message buffer the handler fills.
struct shim_error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[256];
};

static void set_error(cjpeg_error *error, const char *message) {
    if (error != NULL) snprintf(error->message, sizeof error->message, "%s", message);
}

// Fatal errors: format libjpeg's message and jump back to the caller's setjmp point.
static void on_error_exit(j_common_ptr cinfo) {
    struct shim_error_manager *manager = (struct shim_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

// Warnings (level -1) mean corrupt data that libjpeg would paper over; a frame with them is refused.
static void on_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0) on_error_exit(cinfo);
}

static void on_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

static int start(struct jpeg_decompress_struct *cinfo, struct shim_error_manager *manager,
                 const uint8_t *data, size_t size) {
    cinfo->err = jpeg_std_error(&manager->base);
    manager->base.error_exit = on_error_exit;
    manager->base.emit_message = on_emit_message;
    manager->base.output_message = on_output_message;
    manager->message[0] = 0;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    return jpeg_read_header(cinfo, TRUE) == JPEG_HEADER_OK ? 0 : -1;
}

// Both entry points: a header read when `info` is given (filling it), else a decode into `out`. They share
// one body because the setjmp point must sit in the frame that owns `cinfo` and stays live until the last
// libjpeg call, so the common set-up cannot move into a helper that returns before the decode runs.
static int read_jpeg(const uint8_t *data, size_t size, cjpeg_info *info, uint8_t *out, size_t out_size,
                     cjpeg_error *error) {
    struct jpeg_decompress_struct cinfo;
    struct shim_error_manager manager;
    if (size == 0) {
        set_error(error, "empty file");
        return -1;
    }
    if (setjmp(manager.jump)) {
        set_error(error, manager.message);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (start(&cinfo, &manager, data, size) != 0) {
        set_error(error, "no JPEG header");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    if (info != NULL) {
        info->width = cinfo.image_width;
        info->height = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        set_error(error, "CMYK JPEGs are not supported");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * 3;
    if (cinfo.output_components != 3 || row_bytes * cinfo.output_height != out_size) {
        set_error(error, "the decoded size differs from the header's");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int cjpeg_read_info(const uint8_t *data, size_t size, cjpeg_info *info, cjpeg_error *error) {
    return read_jpeg(data, size, info, NULL, 0, error);
}

int cjpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, cjpeg_error *error) {
    return read_jpeg(data, size, NULL, out, out_size, error);
}
