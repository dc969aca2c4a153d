// libpng behind setjmp: see CPNGShim.h for why every fallible call lives here and not in Swift.
#include "CPNGShim.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cpng_decoder {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t position;
    int passes;
    int info_read;
    uint32_t height;
    size_t row_bytes;
    // libpng's error handler writes here before it jumps; heap memory, so it survives the longjmp intact.
    char message[256];
};

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void set_error(cpng_error *error, const char *message) {
    if (error != NULL) snprintf(error->message, sizeof error->message, "%s", message);
}

// libpng calls this for every fatal error; it must not return, so it jumps back to the caller's setjmp point.
static void on_png_error(png_structp png, png_const_charp message) {
    char *sink = (char *)png_get_error_ptr(png);
    if (sink != NULL) snprintf(sink, 256, "%s", message != NULL ? message : "unknown libpng error");
    png_longjmp(png, 1);
}

// Warnings (an odd ancillary chunk, a known-bad sRGB profile) never stop a decode and are not worth printing.
static void on_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void read_from_memory(png_structp png, png_bytep out, size_t length) {
    cpng_decoder *decoder = (cpng_decoder *)png_get_io_ptr(png);
    if (length > decoder->size - decoder->position) {
        png_error(png, "unexpected end of data (the PNG is truncated)");
    }
    memcpy(out, decoder->data + decoder->position, length);
    decoder->position += length;
}

cpng_decoder *cpng_decoder_create(const uint8_t *data, size_t size, cpng_error *error) {
    cpng_decoder *decoder = (cpng_decoder *)calloc(1, sizeof *decoder);
    if (decoder == NULL) {
        set_error(error, "out of memory");
        return NULL;
    }
    decoder->data = data;
    decoder->size = size;
    decoder->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, decoder->message, on_png_error, on_png_warning);
    if (decoder->png != NULL) decoder->info = png_create_info_struct(decoder->png);
    if (decoder->png == NULL || decoder->info == NULL) {
        set_error(error, "libpng could not allocate its state");
        cpng_decoder_destroy(decoder);
        return NULL;
    }
    png_set_read_fn(decoder->png, decoder, read_from_memory);
    return decoder;
}

int cpng_decoder_read_info(cpng_decoder *decoder, cpng_info *info, cpng_error *error) {
    png_structp png = decoder->png;
    png_infop png_info = decoder->info;
    if (setjmp(png_jmpbuf(png))) {
        set_error(error, decoder->message);
        return -1;
    }
    png_read_info(png, png_info);
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, png_info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);

    // Normalise to 8- or 16-bit gray, gray+alpha, RGB or RGBA; the Swift side converts from there.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, png_info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
    decoder->passes = png_set_interlace_handling(png);
    png_read_update_info(png, png_info);

    info->width = width;
    info->height = height;
    info->source_bit_depth = bit_depth;
    info->source_color_type = color_type;
    info->interlaced = interlace == PNG_INTERLACE_ADAM7;
    info->channels = png_get_channels(png, png_info);
    info->bit_depth = png_get_bit_depth(png, png_info);
    info->row_bytes = png_get_rowbytes(png, png_info);
    decoder->height = height;
    decoder->row_bytes = info->row_bytes;
    decoder->info_read = 1;
    return 0;
}

int cpng_decoder_read_image(cpng_decoder *decoder, uint8_t *out, size_t out_size, cpng_error *error) {
    if (!decoder->info_read) {
        set_error(error, "internal: read_info must come before read_image");
        return -1;
    }
    if (decoder->height != 0 && out_size / decoder->height < decoder->row_bytes) {
        set_error(error, "internal: output buffer is smaller than the image");
        return -1;
    }
    png_structp png = decoder->png;
    if (setjmp(png_jmpbuf(png))) {
        set_error(error, decoder->message);
        return -1;
    }
    // With interlace handling on, each Adam7 pass updates the same full-size rows in place.
    for (int pass = 0; pass < decoder->passes; pass++) {
        for (uint32_t y = 0; y < decoder->height; y++) {
            png_read_row(png, out + (size_t)y * decoder->row_bytes, NULL);
        }
    }
    png_read_end(png, NULL);
    return 0;
}

size_t cpng_decoder_bytes_read(const cpng_decoder *decoder) { return decoder->position; }

void cpng_decoder_destroy(cpng_decoder *decoder) {
    if (decoder == NULL) return;
    if (decoder->png != NULL) png_destroy_read_struct(&decoder->png, decoder->info != NULL ? &decoder->info : NULL, NULL);
    free(decoder);
}

static void write_to_buffer(png_structp png, png_bytep bytes, size_t length) {
    cpng_buffer *buffer = (cpng_buffer *)png_get_io_ptr(png);
    if (length > buffer->capacity - buffer->size) {
        size_t capacity = buffer->capacity < 4096 ? 4096 : buffer->capacity;
        while (length > capacity - buffer->size) {
            if (capacity > SIZE_MAX / 2) png_error(png, "encoded PNG too large");
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(buffer->bytes, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        buffer->bytes = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->size, bytes, length);
    buffer->size += length;
}

static void flush_nothing(png_structp png) { (void)png; }

int cpng_encode(const cpng_image *image, const uint8_t *pixels, size_t row_bytes, cpng_buffer *out,
                cpng_error *error) {
    out->bytes = NULL;
    out->size = 0;
    out->capacity = 0;
    // The message goes straight into the caller's struct: memory outside this frame, safe across the longjmp.
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, error->message, on_png_error, on_png_warning);
    png_infop info = png != NULL ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        if (png != NULL) png_destroy_write_struct(&png, NULL);
        set_error(error, "libpng could not allocate its state");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        cpng_buffer_free(out);
        return -1;
    }
    png_set_write_fn(png, out, write_to_buffer, flush_nothing);
    png_set_IHDR(png, info, image->width, image->height, image->bit_depth, image->color_type,
                 image->interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (row_bytes < png_get_rowbytes(png, info)) png_error(png, "pixel rows are shorter than the width needs");
    if (image->color_type == PNG_COLOR_TYPE_PALETTE) {
        if (image->palette == NULL || image->palette_count < 1 || image->palette_count > 256) {
            png_error(png, "a palette image needs 1...256 palette entries");
        }
        png_color colors[256];
        for (int i = 0; i < image->palette_count; i++) {
            colors[i].red = image->palette[3 * i];
            colors[i].green = image->palette[3 * i + 1];
            colors[i].blue = image->palette[3 * i + 2];
        }
        png_set_PLTE(png, info, colors, image->palette_count);
        if (image->palette_alpha != NULL && image->palette_alpha_count > 0) {
            png_set_tRNS(png, info, image->palette_alpha, image->palette_alpha_count, NULL);
        }
    } else if (image->has_transparent_color) {
        png_color_16 color;
        memset(&color, 0, sizeof color);
        color.gray = image->transparent_color[0];
        color.red = image->transparent_color[0];
        color.green = image->transparent_color[1];
        color.blue = image->transparent_color[2];
        png_set_tRNS(png, info, NULL, 0, &color);
    }
    if (image->compression_level >= 0) png_set_compression_level(png, image->compression_level);
    png_write_info(png, info);
    if (image->bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < image->height; y++) png_write_row(png, pixels + (size_t)y * row_bytes);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return 0;
}

void cpng_buffer_free(cpng_buffer *buffer) {
    free(buffer->bytes);
    buffer->bytes = NULL;
    buffer->size = 0;
    buffer->capacity = 0;
}
