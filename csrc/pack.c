/* Bit packing: b-bit vectors <-> a little-endian bit stream (format in cdef/pack.h).
 *
 * The general path streams through a 64-bit accumulator in chunks of at most 32 bits
 * (a 33..64-bit value is two chunks: its low 32 bits, then the rest), so every shift
 * stays below 64. Whole-byte widths (8, 16, 32, 64) have straight-line paths. */
#include <string.h>

#include "secagg.h"

#define MAX_ELEMS ((uint64_t)1 << 56)

/* m as 64 bits: compared with MAX_ELEMS without a "always false" warning on 32-bit targets. */
static inline uint64_t wide(size_t m) { return m; }

/* On a little-endian host the whole-byte formats are the memory layout (memcpy). */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LE 1
#else
#define HOST_LE 0
#endif

static inline uint32_t load32_le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void store32_le(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

uint64_t secagg_pack_max_length(void) { return MAX_ELEMS; }

size_t secagg_pack_size(size_t m, unsigned bits)
{
    if (bits < 1 || bits > 64 || wide(m) > MAX_ELEMS)
        return SIZE_MAX;
    uint64_t total = (uint64_t)m * bits; /* < 2^62 */
    uint64_t bytes = (total + 7) / 8;
    return bytes >= SIZE_MAX ? SIZE_MAX : (size_t)bytes; /* a 32-bit size_t may not hold it */
}

/* 0 if m bits-bit values fit the format and this address space, else -1. SIZE_MAX is
 * never a valid size, so a caller passing nbytes = SIZE_MAX cannot slip through. */
static int check_length(size_t m, unsigned bits)
{
    return (wide(m) > MAX_ELEMS || secagg_pack_size(m, bits) == SIZE_MAX) ? -1 : 0;
}

/* --- writer ------------------------------------------------------------------- */

typedef struct {
    uint8_t *out;
    uint64_t acc; /* pending bits, LSB first */
    unsigned n;   /* number of pending bits, < 32 between calls */
} writer;

/* Appends the low `b` bits of `v` (b <= 32, v < 2^32). */
static inline void put(writer *w, uint64_t v, unsigned b)
{
    w->acc |= v << w->n;
    w->n += b;
    if (w->n >= 32) {
        store32_le(w->out, (uint32_t)w->acc);
        w->out += 4;
        w->acc >>= 32;
        w->n -= 32;
    }
}

static inline void flush(writer *w)
{
    while (w->n > 0) {
        *w->out++ = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n = w->n > 8 ? w->n - 8 : 0;
    }
}

static inline uint64_t low_mask(unsigned b)
{
    return b >= 64 ? UINT64_MAX : (((uint64_t)1 << b) - 1);
}

int secagg_pack_encode_u32(uint8_t *out, const uint32_t *v, size_t m, unsigned bits)
{
    if (bits < 1 || bits > 32 || check_length(m, bits) != 0)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || v == NULL)
        return -1;
    uint32_t seen = 0;
    if (bits == 32) {
        if (HOST_LE) {
            memcpy(out, v, 4 * m);
        } else {
            for (size_t i = 0; i < m; i++)
                store32_le(out + 4 * i, v[i]);
        }
        return 0;
    }
    if (bits == 16) {
        for (size_t i = 0; i < m; i++) {
            seen |= v[i];
            if (HOST_LE) {
                uint16_t h = (uint16_t)v[i];
                memcpy(out + 2 * i, &h, 2);
            } else {
                out[2 * i] = (uint8_t)v[i];
                out[2 * i + 1] = (uint8_t)(v[i] >> 8);
            }
        }
    } else if (bits == 8) {
        for (size_t i = 0; i < m; i++) {
            seen |= v[i];
            out[i] = (uint8_t)v[i];
        }
    } else {
        writer w = {out, 0, 0};
        for (size_t i = 0; i < m; i++) {
            seen |= v[i];
            put(&w, v[i], bits);
        }
        flush(&w);
    }
    return (seen >> bits) ? -1 : 0;
}

int secagg_pack_encode_u64(uint8_t *out, const uint64_t *v, size_t m, unsigned bits)
{
    if (bits < 1 || bits > 64 || check_length(m, bits) != 0)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || v == NULL)
        return -1;
    uint64_t seen = 0;
    if (bits == 64) {
        if (HOST_LE) {
            memcpy(out, v, 8 * m);
        } else {
            for (size_t i = 0; i < m; i++) {
                store32_le(out + 8 * i, (uint32_t)v[i]);
                store32_le(out + 8 * i + 4, (uint32_t)(v[i] >> 32));
            }
        }
        return 0;
    }
    if (bits > 32) {
        writer w = {out, 0, 0};
        for (size_t i = 0; i < m; i++) {
            seen |= v[i];
            put(&w, v[i] & 0xffffffffu, 32);
            put(&w, (v[i] >> 32) & 0xffffffffu, bits - 32);
        }
        flush(&w);
    } else {
        writer w = {out, 0, 0};
        for (size_t i = 0; i < m; i++) {
            seen |= v[i];
            put(&w, v[i] & 0xffffffffu, bits);
        }
        flush(&w);
    }
    return (seen & ~low_mask(bits)) ? -1 : 0;
}

/* --- reader ------------------------------------------------------------------- */

typedef struct {
    const uint8_t *in;
    const uint8_t *end;
    uint64_t acc; /* loaded, unconsumed bits, LSB first */
    unsigned n;   /* number of those bits, < 32 between calls */
} reader;

/* Takes the next `b` bits (b <= 32). The caller has checked the total length, so the
 * bytes are there; the guard on `end` only keeps a bad caller from reading past it. */
static inline uint64_t get(reader *r, unsigned b)
{
    if (r->n < b) {
        if (r->end - r->in >= 4) {
            r->acc |= (uint64_t)load32_le(r->in) << r->n;
            r->in += 4;
            r->n += 32;
        } else {
            while (r->n < b && r->in < r->end) {
                r->acc |= (uint64_t)*r->in++ << r->n;
                r->n += 8;
            }
        }
    }
    uint64_t v = r->acc & low_mask(b);
    r->acc >>= b;
    r->n -= b;
    return v;
}

/* After the last element: everything read, and the leftover (pad) bits are zero. */
static inline int finish(const reader *r)
{
    return (r->in == r->end && r->acc == 0) ? 0 : -1;
}

int secagg_pack_decode_u32(uint32_t *out, const uint8_t *in, size_t nbytes, size_t m,
                           unsigned bits)
{
    if (bits < 1 || bits > 32 || check_length(m, bits) != 0 ||
        secagg_pack_size(m, bits) != nbytes)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || in == NULL)
        return -1;
    if (bits == 32) {
        if (HOST_LE) {
            memcpy(out, in, 4 * m);
        } else {
            for (size_t i = 0; i < m; i++)
                out[i] = load32_le(in + 4 * i);
        }
        return 0;
    }
    if (bits == 16) {
        for (size_t i = 0; i < m; i++) {
            if (HOST_LE) {
                uint16_t h;
                memcpy(&h, in + 2 * i, 2);
                out[i] = h;
            } else {
                out[i] = (uint32_t)in[2 * i] | ((uint32_t)in[2 * i + 1] << 8);
            }
        }
        return 0;
    }
    if (bits == 8) {
        for (size_t i = 0; i < m; i++)
            out[i] = in[i];
        return 0;
    }
    reader r = {in, in + nbytes, 0, 0};
    for (size_t i = 0; i < m; i++)
        out[i] = (uint32_t)get(&r, bits);
    return finish(&r);
}

int secagg_pack_decode_u64(uint64_t *out, const uint8_t *in, size_t nbytes, size_t m,
                           unsigned bits)
{
    if (bits < 1 || bits > 64 || check_length(m, bits) != 0 ||
        secagg_pack_size(m, bits) != nbytes)
        return -1;
    if (m == 0)
        return 0;
    if (out == NULL || in == NULL)
        return -1;
    if (bits == 64) {
        if (HOST_LE) {
            memcpy(out, in, 8 * m);
        } else {
            for (size_t i = 0; i < m; i++)
                out[i] = (uint64_t)load32_le(in + 8 * i) |
                         ((uint64_t)load32_le(in + 8 * i + 4) << 32);
        }
        return 0;
    }
    reader r = {in, in + nbytes, 0, 0};
    if (bits > 32) {
        for (size_t i = 0; i < m; i++) {
            uint64_t lo = get(&r, 32);
            out[i] = lo | (get(&r, bits - 32) << 32);
        }
    } else {
        for (size_t i = 0; i < m; i++)
            out[i] = get(&r, bits);
    }
    return finish(&r);
}
