/* What the text kernels (`_lines.c`, `_script.c`, dedup's `_shingles.c`) share: UTF-8 decoding, per-code-point flag tables, and a batch
 * of texts read from Arrow buffers. Static inline functions in a header: each module gets its own copy, and none it does not use. */
#ifndef CLEANMIX_TEXT_H
#define CLEANMIX_TEXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Flags of every code point in two stages: blocks of 256, uniform blocks shared (most of the code space). */
typedef struct {
    uint16_t block_of[0x110000 >> 8];
    uint8_t (*blocks)[256];
} FlagTable;

static inline uint8_t flag_of(const FlagTable *t, uint32_t c) { return c < 256 ? t->blocks[0][c] : t->blocks[t->block_of[c >> 8]][c & 255]; } /* (block 0 is first) */

/* Fills `t` from `all`, the flags of every code point (0x110000 of them); -1 when out of memory. */
static inline int flag_table_build(FlagTable *t, const uint8_t *all) {
    int n = 0, cap = 64;
    t->blocks = malloc(sizeof(*t->blocks) * cap);
    for (int b = 0; b < (0x110000 >> 8) && t->blocks; b++) {
        const uint8_t *flags_b = all + (b << 8);
        int uniform = 1, found = -1;
        for (int i = 1; i < 256 && uniform; i++) uniform = flags_b[i] == flags_b[0];
        for (int k = 0; uniform && k < n && found < 0; k++)
            if (memcmp(t->blocks[k], flags_b, sizeof(t->blocks[k])) == 0) found = k;
        if (found < 0) {
            if (n == cap) {
                void *grown = realloc(t->blocks, sizeof(*t->blocks) * (cap *= 2));
                if (!grown) { free(t->blocks); t->blocks = NULL; break; }
                t->blocks = grown;
            }
            memcpy(t->blocks[n], flags_b, sizeof(t->blocks[n]));
            found = n++;
        }
        t->block_of[b] = (uint16_t)found;
    }
    return t->blocks ? 0 : -1;
}

/* OR-s `flag` into `all` for every code point of the inclusive `ranges` (a generated table). */
#define FLAG_RANGES(all, ranges, flag)                                             \
    for (size_t i_ = 0; i_ < sizeof(ranges) / sizeof(ranges[0]); i_++)            \
        for (uint32_t c_ = ranges[i_][0]; c_ <= ranges[i_][1]; c_++) (all)[c_] |= (flag);
#define FLAG_CLASS_RANGES(name) FLAG_RANGES(all, RANGES_##name, name)

/* Defines `static int build(void)`, which fills `table` from a generated header's classes: `CLASSES(X)` lists X(name)
 * for each, `name` being both the class's flag (an enum of the module) and its RANGES_name table; -1: out of memory. */
#define FLAG_TABLE_BUILDER(build, table, CLASSES)      \
    static int build(void) {                           \
        uint8_t *all = calloc(0x110000, 1);             \
        if (!all) return -1;                           \
        CLASSES(FLAG_CLASS_RANGES)                     \
        int failed = flag_table_build(&(table), all);  \
        free(all);                                     \
        return failed;                                 \
    }

/* The code point at s[*i] (valid UTF-8: Polars' strings are); moves *i past it. */
static inline uint32_t next_char(const uint8_t *s, int64_t *i) {
    uint32_t b = s[*i];
    if (b < 0x80) { *i += 1; return b; }
    if (b < 0xE0) { *i += 2; return ((b & 0x1F) << 6) | (s[*i - 1] & 0x3F); }
    if (b < 0xF0) { *i += 3; return ((b & 0x0F) << 12) | ((s[*i - 2] & 0x3F) << 6) | (s[*i - 1] & 0x3F); }
    *i += 4;
    return ((b & 0x07) << 18) | ((s[*i - 3] & 0x3F) << 12) | ((s[*i - 2] & 0x3F) << 6) | (s[*i - 1] & 0x3F);
}

/* The code point that ends at s[*j - 1]; moves *j to its start. */
static inline uint32_t prev_char(const uint8_t *s, int64_t *j) {
    int64_t k = *j - 1;
    while ((s[k] & 0xC0) == 0x80) k--;
    *j = k;
    return next_char(s, &k);
}

/* A batch's texts: large string offsets, UTF-8 bytes and a byte per text, 0 where null (`arrow_buffers`). */
typedef struct {
    const int64_t *offsets;
    const uint8_t *data, *valid;
    int64_t docs;
    Py_buffer views[3];
} Texts;

static inline void release(Py_buffer *views, int n) {
    for (int i = 0; i < n; i++)
        if (views[i].obj) PyBuffer_Release(&views[i]);
}

static inline int texts_from(Texts *t, PyObject *offsets, PyObject *data, PyObject *valid) {
    memset(t->views, 0, sizeof t->views);
    if (PyObject_GetBuffer(offsets, &t->views[0], PyBUF_SIMPLE) || PyObject_GetBuffer(data, &t->views[1], PyBUF_SIMPLE) ||
        PyObject_GetBuffer(valid, &t->views[2], PyBUF_SIMPLE))
        return -1;
    t->docs = t->views[2].len;
    if (t->views[0].len != 8 * (t->docs + 1)) {
        PyErr_SetString(PyExc_ValueError, "the offsets are not int64, one more than the texts");
        return -1;
    }
    t->offsets = t->views[0].buf, t->data = t->views[1].buf, t->valid = t->views[2].buf;
    return 0;
}

/* An output buffer of `size` bytes, written in place. */
static inline int writable(PyObject *obj, Py_buffer *view, Py_ssize_t size) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE)) return -1;
    if (view->len == size) return 0;
    PyErr_SetString(PyExc_ValueError, "an output's size does not match the texts");
    return -1;
}

#endif
