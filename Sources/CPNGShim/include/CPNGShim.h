// The libpng bridge: every libpng call that can fail runs inside a C function that sets its own setjmp point, so
// libpng's longjmp on error never unwinds a Swift frame. Each function returns 0 on success or -1 with a message.
#ifndef CPNGSHIM_H
#define CPNGSHIM_H

#include <stddef.h>
#include <stdint.h>

/// Why a call failed: libpng's own message (e.g. "IHDR: CRC error") or the shim's.
typedef struct {
    char message[256];
} cpng_error;

/// What the header says, and the layout the decoder will produce after its transforms (palette and tRNS expanded
/// to RGB(A), gray below 8 bits widened to 8, 16-bit samples in host byte order).
typedef struct {
    uint32_t width;
    uint32_t height;
    int source_bit_depth;   // 1, 2, 4, 8 or 16 as stored
    int source_color_type;  // PNG colour type as stored: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
    int interlaced;         // 1 for Adam7
    int channels;           // after transforms: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int bit_depth;          // after transforms: 8 or 16
    size_t row_bytes;       // after transforms
} cpng_info;

/// An in-progress decode of a PNG held in memory; the caller keeps the bytes alive until it is destroyed.
typedef struct cpng_decoder cpng_decoder;

/// Starts decoding `size` bytes at `data`; returns NULL (and fills `error`) only when memory runs out.
cpng_decoder *cpng_decoder_create(const uint8_t *data, size_t size, cpng_error *error);
/// Reads the chunks before the image data and sets up the transforms; allocates nothing proportional to the image.
int cpng_decoder_read_info(cpng_decoder *decoder, cpng_info *info, cpng_error *error);
/// Decodes every row (all Adam7 passes) into `out`, which holds `info.row_bytes * info.height` bytes, then reads
/// the chunks after the image data so a damaged tail is reported too.
int cpng_decoder_read_image(cpng_decoder *decoder, uint8_t *out, size_t out_size, cpng_error *error);
// Bytes of the input consumed so far; after read_image, the PNG's length through its IEND chunk.
size_t cpng_decoder_bytes_read(const cpng_decoder *decoder);
void cpng_decoder_destroy(cpng_decoder *decoder);

/// What to write. `pixels` holds `height` rows of `row_bytes`; 16-bit samples are in host byte order, samples
/// below 8 bits are packed big-end first as in the PNG format itself.
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;          // PNG colour type, as in cpng_info.source_color_type
    int interlaced;          // write Adam7 when 1
    int compression_level;   // zlib level 0...9, or -1 for libpng's default
    const uint8_t *palette;  // palette_count RGB triples, for colour type 3
    int palette_count;
    const uint8_t *palette_alpha;  // tRNS alpha per palette entry, for colour type 3 (may be NULL)
    int palette_alpha_count;
    int has_transparent_color;      // tRNS single colour for gray or RGB
    uint16_t transparent_color[3];  // gray in [0], or R, G, B
} cpng_image;

/// Bytes the encoder produced; free them with cpng_buffer_free.
typedef struct {
    uint8_t *bytes;
    size_t size;
    size_t capacity;
} cpng_buffer;

int cpng_encode(const cpng_image *image, const uint8_t *pixels, size_t row_bytes, cpng_buffer *out,
                cpng_error *error);
void cpng_buffer_free(cpng_buffer *buffer);

#endif
