// The libjpeg bridge: libjpeg reports a fatal error by calling a handler that must not return, so every
// fallible libjpeg call runs inside a C function with its own setjmp point, and the jump never crosses a
// Swift frame. Each function returns 0 on success or -1 with a message.
#ifndef CJPEGSHIM_H
#define CJPEGSHIM_H

#include <stddef.h>
#include <stdint.h>

/// Why a call failed: libjpeg's own message (e.g. "Premature end of JPEG file") or the shim's.
typedef struct {
    char message[256];
} cjpeg_error;

/// The frame size a JPEG's header declares.
typedef struct {
    uint32_t width;
    uint32_t height;
} cjpeg_info;

/// Reads the header of the JPEG of `size` bytes at `data`; allocates nothing proportional to the image.
int cjpeg_read_info(const uint8_t *data, size_t size, cjpeg_info *info, cjpeg_error *error);

/// Decodes the JPEG to 8-bit RGB (gray replicated; CMYK refused) into `out`, which holds
/// `info.width * info.height * 3` bytes of the size `cjpeg_read_info` gave. A truncated or corrupt stream is an
/// error, not a grey tail: libjpeg's warnings about bad data are turned into failures.
int cjpeg_decode_rgb(const uint8_t *data, size_t size, uint8_t *out, size_t out_size, cjpeg_error *error);

#endif
