/* MinHash's text folding (lowercase, punctuation to spaces), the shingle hashes of a batch of texts, one pass over
 * each text's bytes, their MinHash signatures and their distinct sets (see shingles.py).
 *
 * Why C: column-wise (NumPy) the same hashes took a dozen whole-batch passes (whitespace and
 * unspaced-script masks, token boundaries, prefix sums of byte powers, gathers, the chain over n
 * shifted views), most of the MinHash scan's time; here each byte is read once and each token
 * hashed as it ends. The signatures' minima were three NumPy passes over a (permutations ×
 * shingles) buffer; here one loop whose minima stay in vector registers.
 *
 * Definitions (shingles.py's, bit for bit): a token is a run of bytes other than 9-13 and 32, cut
 * around each character of an unspaced script (a code point in one of the `unspaced` ranges;
 * 3- and 4-byte UTF-8 characters only); its hash is splitmix(Σ (byte_i + 1)·B^i + length). A
 * shingle of tokens t_0..t_{m-1} hashes to h ← splitmix(t_0), then h ← splitmix(h·B + t_j); a text
 * of fewer than n tokens has one shingle of all of them, an empty one none.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../filters/_text.h"
#include "_fold_tables.h"

#define BASE 0x100000001B3ULL

/* The two vector loops (the shingle chain, the signature minima) are compiled for AVX-512 (x86-64-v4:
 * 64-bit multiplies) and AVX2 too, and the CPU's best is picked at load time. On the held-out corpus:
 * signatures 4x NumPy's speed with AVX-512, twice with AVX2, slower than NumPy with x86-64's baseline
 * SSE2 (no unsigned 32-bit minimum); the chain 6x faster with AVX-512. GCC with glibc only (ifunc). */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__GNUC__) && __GNUC__ >= 11 && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

static uint64_t splitmix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static int is_space(uint8_t b) { return b == 32 || (b >= 9 && b <= 13); }

typedef struct {
    uint8_t bmp[0x10000 / 8]; /* a bit per BMP code point */
    const int64_t *ranges;    /* [lo, hi] pairs, for code points past the BMP */
    Py_ssize_t n_ranges;
} Unspaced;

static int unspaced(const Unspaced *u, uint32_t cp) {
    if (cp < 0x10000) return (u->bmp[cp >> 3] >> (cp & 7)) & 1;
    for (Py_ssize_t r = 0; r < u->n_ranges; r++)
        if ((int64_t)cp >= u->ranges[2 * r] && (int64_t)cp <= u->ranges[2 * r + 1]) return 1;
    return 0;
}

/* The character at bytes[0] (its length, at most `left`), and whether it belongs to an unspaced script. */
static int char_at(const uint8_t *bytes, int64_t left, const Unspaced *u, int *is_unspaced) {
    uint8_t b = bytes[0];
    *is_unspaced = 0;
    if (b < 0xC0) return 1;
    if (b < 0xE0) return left < 2 ? (int)left : 2;
    if (b < 0xF0) {
        if (left < 3) return (int)left;
        *is_unspaced = unspaced(u, ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(bytes[1] & 0x3F) << 6) | (bytes[2] & 0x3F));
        return 3;
    }
    if (left < 4) return (int)left;
    uint32_t cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(bytes[1] & 0x3F) << 12) | ((uint32_t)(bytes[2] & 0x3F) << 6) | (bytes[3] & 0x3F);
    *is_unspaced = unspaced(u, cp);
    return 4;
}

typedef struct {
    uint64_t *data;
    int64_t size, capacity;
} Array;

static int reserve(Array *a, int64_t more) {
    if (a->size + more <= a->capacity) return 0;
    int64_t capacity = a->capacity * 2 + more + 1024;
    uint64_t *grown = realloc(a->data, sizeof(uint64_t) * capacity);
    if (!grown) return -1;
    a->data = grown;
    a->capacity = capacity;
    return 0;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static uint64_t powers[9]; /* BASE^0 .. BASE^8 */

/* Σ (byte_k + 1)·B^k over the first `run` bytes of a little-endian word of ASCII bytes (no byte + 1 carries). */
static uint64_t word_sum(uint64_t word, int run) {
    uint64_t mask = run == 8 ? ~0ULL : (1ULL << (8 * run)) - 1, c = (word & mask) + (ONES & mask), sum = 0;
    for (int k = 0; k < 8; k++) sum += ((c >> (8 * k)) & 0xFF) * powers[k];
    return sum;
}

/* The hashes of one text's tokens, into `tokens` (emptied first). Runs of ASCII bytes above 32 are
 * read 8 at a time (the first byte of a word that is ≤ 32 or ≥ 128 ends the run); any other byte
 * is a space, a control character or a character's lead byte, decoded one at a time. */
static int token_hashes(const uint8_t *bytes, int64_t size, const Unspaced *u, Array *tokens) {
    tokens->size = 0;
    int64_t i = 0;
    while (i < size) {
        if (is_space(bytes[i])) { i++; continue; }
        int64_t start = i;
        uint64_t sum = 0, power = 1; /* power: B^(i - start) */
        for (;;) {
            if (i + 8 <= size) {
                uint64_t word;
                memcpy(&word, bytes + i, 8);
                uint64_t special = (((word - 0x2121212121212121ULL) & ~word) | word) & HIGHS; /* exact up to the first */
                int run = special ? __builtin_ctzll(special) / 8 : 8;
                if (run) {
                    sum += power * word_sum(word, run);
                    power *= powers[run];
                    i += run;
                }
                if (run == 8) continue;
            } else {
                for (; i < size && bytes[i] > 32 && bytes[i] < 0x80; i++, power *= BASE) sum += ((uint64_t)bytes[i] + 1) * power;
            }
            if (i >= size || is_space(bytes[i])) break;
            int cut;
            int len = char_at(bytes + i, size - i, u, &cut);
            if (cut && i > start) break;
            for (int k = 0; k < len; k++, power *= BASE) sum += ((uint64_t)bytes[i + k] + 1) * power;
            i += len;
            if (cut) break;
        }
        if (reserve(tokens, 1)) return -1;
        tokens->data[tokens->size++] = splitmix(sum + (uint64_t)(i - start));
    }
    return 0;
}

#define BLOCK 512

/* One text's shingles appended to `out`: chained a step at a time over a block of positions (independent
 * multiplications, vector lanes, not one shingle's chain of dependent ones). */
VECTOR_CLONES static int text_shingles(const uint64_t *tok, int64_t m, int ngram, Array *out) {
    if (m == 0) return 0;
    int n = m < ngram ? (int)m : ngram;
    int64_t count = m - n + 1;
    if (reserve(out, count)) return -1;
    uint64_t *h = out->data + out->size;
    for (int64_t lo = 0; lo < count; lo += BLOCK) {
        int64_t hi = lo + BLOCK < count ? lo + BLOCK : count;
        for (int64_t p = lo; p < hi; p++) h[p] = splitmix(tok[p]);
        for (int j = 1; j < n; j++)
            for (int64_t p = lo; p < hi; p++) h[p] = splitmix(h[p] * BASE + tok[p + j]);
    }
    out->size += count;
    return 0;
}

static PyObject *shingle_hashes(PyObject *self, PyObject *args) {
    PyObject *data_obj, *offsets_obj, *ranges_obj, *starts_obj;
    int ngram;
    if (!PyArg_ParseTuple(args, "OOiOO", &data_obj, &offsets_obj, &ngram, &ranges_obj, &starts_obj)) return NULL;
    if (ngram < 1) return PyErr_Format(PyExc_ValueError, "shingle_hashes: ngram is %d, not at least 1", ngram);
    Py_buffer data = {0}, offsets = {0}, ranges = {0}, starts = {0};
    PyObject *result = NULL;
    Unspaced *u = NULL;
    Array out = {0}, tokens = {0};
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) || PyObject_GetBuffer(offsets_obj, &offsets, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(ranges_obj, &ranges, PyBUF_SIMPLE) || PyObject_GetBuffer(starts_obj, &starts, PyBUF_WRITABLE))
        goto done;
    int64_t docs = offsets.len / 8 - 1;
    const int64_t *off = offsets.buf;
    int bad = docs < 0 || starts.len != 8 * (docs + 1) || ranges.len % 16 || off[0] < 0 || off[docs] > data.len;
    for (int64_t d = 0; d < docs && !bad; d++) bad = off[d + 1] < off[d];
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "shingle_hashes: offsets, data and starts do not match");
        goto done;
    }
    u = calloc(1, sizeof(Unspaced));
    if (!u) { PyErr_NoMemory(); goto done; }
    u->ranges = ranges.buf;
    u->n_ranges = ranges.len / 16;
    for (Py_ssize_t r = 0; r < u->n_ranges; r++)
        for (int64_t cp = u->ranges[2 * r] < 0 ? 0 : u->ranges[2 * r]; cp <= u->ranges[2 * r + 1] && cp < 0x10000; cp++)
            u->bmp[cp >> 3] |= (uint8_t)(1 << (cp & 7));
    int64_t *start_out = starts.buf;
    const uint8_t *bytes = data.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    start_out[0] = 0;
    for (int64_t d = 0; d < docs && !failed; d++) {
        failed = token_hashes(bytes + off[d], off[d + 1] - off[d], u, &tokens) || text_shingles(tokens.data, tokens.size, ngram, &out);
        start_out[d + 1] = out.size;
    }
    Py_END_ALLOW_THREADS
    if (failed) PyErr_NoMemory();
    else result = PyByteArray_FromStringAndSize((const char *)out.data, (Py_ssize_t)(sizeof(uint64_t) * out.size));
done:
    free(out.data);
    free(tokens.data);
    free(u);
    release(&data, 1);
    release(&offsets, 1);
    release(&ranges, 1);
    release(&starts, 1);
    return result;
}

#define PERM_BLOCK 8

/* One text's signature: m[p] = min over its shingle keys k of the top 32 bits of a_p·k + b_p (mod 2^64).
 * With k < 2^32 those bits are ah·k + ((al·k + b) >> 32) (mod 2^32), a = ah·2^32 + al: 32-bit lanes.
 * A block of permutations at a time, its minima in registers (the arrays are padded to whole blocks). */
VECTOR_CLONES static void text_signature(const uint64_t *hashes, int64_t count, int num_perm, const uint32_t *al,
                                         const uint32_t *ah, const uint64_t *b, uint32_t *m) {
    for (int p0 = 0; p0 < num_perm; p0 += PERM_BLOCK) {
        uint32_t low[PERM_BLOCK], high[PERM_BLOCK], mins[PERM_BLOCK];
        uint64_t add[PERM_BLOCK];
        for (int p = 0; p < PERM_BLOCK; p++) {
            low[p] = al[p0 + p];
            high[p] = ah[p0 + p];
            add[p] = b[p0 + p];
            mins[p] = UINT32_MAX;
        }
        for (int64_t s = 0; s < count; s++) {
            uint32_t k = (uint32_t)(hashes[s] >> 32);
            for (int p = 0; p < PERM_BLOCK; p++) {
                uint32_t v = high[p] * k + (uint32_t)(((uint64_t)low[p] * k + add[p]) >> 32);
                mins[p] = v < mins[p] ? v : mins[p];
            }
        }
        for (int p = 0; p < PERM_BLOCK && p0 + p < num_perm; p++) m[p0 + p] = mins[p];
    }
}

static PyObject *signatures(PyObject *self, PyObject *args) {
    PyObject *hashes_obj, *starts_obj, *a_obj, *b_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOOO", &hashes_obj, &starts_obj, &a_obj, &b_obj, &out_obj)) return NULL;
    Py_buffer hashes = {0}, starts = {0}, a = {0}, b = {0}, out = {0};
    PyObject *result = NULL;
    uint32_t *halves = NULL;
    uint64_t *adds = NULL;
    if (PyObject_GetBuffer(hashes_obj, &hashes, PyBUF_SIMPLE) || PyObject_GetBuffer(starts_obj, &starts, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(a_obj, &a, PyBUF_SIMPLE) || PyObject_GetBuffer(b_obj, &b, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE))
        goto done;
    int64_t docs = starts.len / 8 - 1, num_perm = a.len / 8;
    const int64_t *start = starts.buf;
    int bad = docs < 0 || b.len != a.len || out.len != 4 * docs * num_perm || start[0] < 0 || start[docs] > hashes.len / 8;
    for (int64_t d = 0; d < docs && !bad; d++) bad = start[d + 1] < start[d];
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "signatures: hashes, starts, permutations and out do not match");
        goto done;
    }
    int64_t padded = (num_perm + PERM_BLOCK - 1) / PERM_BLOCK * PERM_BLOCK;
    halves = calloc(2 * padded, sizeof(uint32_t));
    adds = calloc(padded, sizeof(uint64_t));
    if (!halves || !adds) { PyErr_NoMemory(); goto done; }
    const uint64_t *a64 = a.buf;
    memcpy(adds, b.buf, b.len);
    for (int64_t p = 0; p < num_perm; p++) {
        halves[p] = (uint32_t)a64[p];
        halves[padded + p] = (uint32_t)(a64[p] >> 32);
    }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t d = 0; d < docs; d++)
        text_signature((const uint64_t *)hashes.buf + start[d], start[d + 1] - start[d], (int)num_perm, halves, halves + padded, adds,
                       (uint32_t *)out.buf + d * num_perm);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(halves);
    free(adds);
    release(&hashes, 1);
    release(&starts, 1);
    release(&a, 1);
    release(&b, 1);
    release(&out, 1);
    return result;
}

#define SMALL_SORT 32

/* Sorts keys[0:n] ascending, `spare` (n keys) as the other buffer; returns whichever of the two holds the result.
 * Least significant byte first, one counting pass for all four bytes, skipping a byte all keys share; a
 * short run by insertion (a text of a few shingles would spend more on the 4 × 256 counts than on its keys). */
static uint32_t *sort_keys(uint32_t *keys, uint32_t *spare, int64_t n) {
    if (n <= SMALL_SORT) {
        for (int64_t i = 1; i < n; i++) {
            uint32_t k = keys[i];
            int64_t j = i;
            for (; j > 0 && keys[j - 1] > k; j--) keys[j] = keys[j - 1];
            keys[j] = k;
        }
        return keys;
    }
    int64_t count[4][256] = {{0}};
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = keys[i];
        count[0][k & 0xFF]++;
        count[1][(k >> 8) & 0xFF]++;
        count[2][(k >> 16) & 0xFF]++;
        count[3][k >> 24]++;
    }
    for (int byte = 0; byte < 4; byte++) {
        int shift = 8 * byte;
        int64_t *c = count[byte];
        if (c[(keys[0] >> shift) & 0xFF] == n) continue;
        int64_t at = 0;
        for (int v = 0; v < 256; v++) {
            int64_t here = c[v];
            c[v] = at;
            at += here;
        }
        for (int64_t i = 0; i < n; i++) spare[c[(keys[i] >> shift) & 0xFF]++] = keys[i];
        uint32_t *t = keys;
        keys = spare;
        spare = t;
    }
    return keys;
}

/* The distinct high halves (hash >> 32) of each text's hashes, ascending, one text after the other: a
 * text's are copied to a scratch buffer, sorted and their repeats dropped. Column-wise this was a
 * sort of (text << 32 | key) over the batch plus half a dozen whole-batch temporaries. */
static PyObject *shingle_sets(PyObject *self, PyObject *args) {
    PyObject *hashes_obj, *starts_obj, *values_obj, *offsets_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &hashes_obj, &starts_obj, &values_obj, &offsets_obj)) return NULL;
    Py_buffer hashes = {0}, starts = {0}, values = {0}, offsets = {0};
    PyObject *result = NULL;
    uint32_t *scratch = NULL;
    if (PyObject_GetBuffer(hashes_obj, &hashes, PyBUF_SIMPLE) || PyObject_GetBuffer(starts_obj, &starts, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(values_obj, &values, PyBUF_WRITABLE) || PyObject_GetBuffer(offsets_obj, &offsets, PyBUF_WRITABLE))
        goto done;
    int64_t docs = starts.len / 8 - 1, longest = 0;
    const int64_t *start = starts.buf;
    int bad = docs < 0 || offsets.len != starts.len || start[0] < 0 || start[docs] > hashes.len / 8 ||
              values.len < 4 * (start[docs] - start[0]);
    for (int64_t d = 0; d < docs && !bad; d++) {
        bad = start[d + 1] < start[d];
        longest = start[d + 1] - start[d] > longest ? start[d + 1] - start[d] : longest;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "shingle_sets: hashes, starts, values and offsets do not match");
        goto done;
    }
    scratch = malloc(sizeof(uint32_t) * (2 * longest + 1));
    if (!scratch) { PyErr_NoMemory(); goto done; }
    const uint64_t *h = hashes.buf;
    uint32_t *out = values.buf;
    int64_t *offset = offsets.buf, size = 0;
    Py_BEGIN_ALLOW_THREADS
    offset[0] = 0;
    for (int64_t d = 0; d < docs; d++) {
        int64_t n = start[d + 1] - start[d];
        for (int64_t i = 0; i < n; i++) scratch[i] = (uint32_t)(h[start[d] + i] >> 32);
        const uint32_t *sorted = sort_keys(scratch, scratch + longest, n);
        for (int64_t i = 0; i < n; i++)
            if (i == 0 || sorted[i] != sorted[i - 1]) out[size++] = sorted[i];
        offset[d + 1] = 4 * size;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(scratch);
    release(&hashes, 1);
    release(&starts, 1);
    release(&values, 1);
    release(&offsets, 1);
    return result;
}


/* Folding: normalize_expr's `str.to_lowercase()` then `str.replace_all(r"[\p{P}\p{S}]+", " ")`, as the installed
 * Polars does them (tables from `_fold_tables.h`): each character's lowercase (Σ's by Final_Sigma: ς where a cased
 * character comes before it and none after, case-ignorable ones skipped), and each run of punctuation and symbols
 * in the lowercased text one space. */
enum { PUNCT_SYMBOL = 1, CASED = 2, CASE_IGNORABLE = 4, LOWER_CHANGES = 8 };
#define SIGMA 0x3A3

static FlagTable fold_classes;

static inline uint8_t fold_flags(uint32_t c) { return flag_of(&fold_classes, c); }

FLAG_TABLE_BUILDER(build_fold_tables, fold_classes, FOLD_CLASSES)

/* A cased character comes first, past case-ignorable ones, walking from `i` back to `start` (or on to `end`). */
static int cased_before(const uint8_t *s, int64_t start, int64_t i) {
    while (i > start) {
        uint8_t f = fold_flags(prev_char(s, &i));
        if (!(f & CASE_IGNORABLE)) return (f & CASED) != 0;
    }
    return 0;
}

static int cased_after(const uint8_t *s, int64_t i, int64_t end) {
    while (i < end) {
        uint8_t f = fold_flags(next_char(s, &i));
        if (!(f & CASE_IGNORABLE)) return (f & CASED) != 0;
    }
    return 0;
}

/* The UTF-8 of c's lowercase (c one of LOWER_CHANGES), NUL-padded. */
static const uint8_t *lowercase_of(uint32_t c) {
    size_t lo = 0, hi = sizeof(LOWER_FROM) / sizeof(LOWER_FROM[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (LOWER_FROM[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return LOWER_TO[lo];
}

/* Appends a lowercased character (`flags`: its classes): a punctuation mark or symbol starts or continues a run,
 * which is one space. */
static inline void fold_char(uint8_t *o, int64_t *w, int *in_run, const uint8_t *bytes, int64_t size, uint8_t flags) {
    if (flags & PUNCT_SYMBOL) {
        if (!*in_run) o[(*w)++] = ' ';
        *in_run = 1;
        return;
    }
    memcpy(o + *w, bytes, (size_t)size);
    *w += size;
    *in_run = 0;
}

static PyObject *fold_texts(PyObject *self, PyObject *args) {
    PyObject *offsets, *data, *valid, *out_offsets_obj, *out_data_obj;
    if (!PyArg_ParseTuple(args, "OOOOO", &offsets, &data, &valid, &out_offsets_obj, &out_data_obj)) return NULL;
    Texts t;
    Py_buffer out[2] = {{0}};
    PyObject *result = NULL;
    if (texts_from(&t, offsets, data, valid) || writable(out_offsets_obj, &out[0], 8 * (t.docs + 1))) goto done;
    if (PyObject_GetBuffer(out_data_obj, &out[1], PyBUF_WRITABLE)) goto done;
    int64_t *out_offsets = out[0].buf, w = 0;
    uint8_t *o = out[1].buf;
    if (out[1].len < 2 * (t.offsets[t.docs] - t.offsets[0]) + 1) {
        PyErr_SetString(PyExc_ValueError, "the output holds less than twice the texts' bytes");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    out_offsets[0] = 0;
    for (int64_t d = 0; d < t.docs; d++) {
        int64_t start = t.offsets[d], end = t.valid[d] ? t.offsets[d + 1] : start;
        int in_run = 0;
        for (int64_t i = start; i < end;) {
            uint8_t b = t.data[i];
            if (b < 0x80) { /* ASCII: A-Z lowered */
                uint8_t lower = b >= 'A' && b <= 'Z' ? b + 32 : b;
                fold_char(o, &w, &in_run, &lower, 1, fold_flags(b));
                i++;
                continue;
            }
            int64_t at = i;
            uint32_t c = next_char(t.data, &i);
            uint8_t f = fold_flags(c);
            if (c == SIGMA) {
                uint8_t sigma[2] = {0xCF, cased_before(t.data, start, at) && !cased_after(t.data, i, end) ? 0x82 : 0x83}; /* ς : σ */
                fold_char(o, &w, &in_run, sigma, 2, 0);
            } else if (f & LOWER_CHANGES) {
                const uint8_t *lower = lowercase_of(c);
                int64_t size = lower[3] ? 4 : lower[2] ? 3 : lower[1] ? 2 : 1;
                for (int64_t k = 0, from = 0; k < size; from = k) { /* (a lowercase may be two characters: İ → i̇) */
                    uint8_t g = fold_flags(next_char(lower, &k));
                    fold_char(o, &w, &in_run, lower + from, k - from, g);
                }
            } else {
                fold_char(o, &w, &in_run, t.data + at, i - at, f);
            }
        }
        out_offsets[d + 1] = w;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong(w);
done:
    release(t.views, 3);
    release(out, 2);
    return result;
}

static PyMethodDef methods[] = {
    {"fold_texts", fold_texts, METH_VARARGS,
     "fold_texts(offsets, data, valid, out_offsets, out_data) -> int: each text lowercased and each run of punctuation "
     "and symbols made one space, as normalize_expr's Polars steps do, into out_data (uint8, at least twice the texts' "
     "bytes + 1) and out_offsets (int64, docs + 1); returns the bytes written. A null text is empty."},
    {"shingle_hashes", shingle_hashes, METH_VARARGS,
     "shingle_hashes(data, offsets, ngram, unspaced, starts_out) -> bytearray: the uint64 shingle hashes of the texts "
     "data[offsets[d]:offsets[d+1]] (int64 offsets), in order; fills starts_out (int64, docs + 1) with where each text's "
     "run starts. unspaced: int64 [lo, hi] code point ranges of the unspaced scripts."},
    {"signatures", signatures, METH_VARARGS,
     "signatures(hashes, starts, a, b, out): fills out (uint32, docs x num_perm) with each text's MinHash signature, "
     "min over its shingles of (a·(hash >> 32) + b mod 2^64) >> 32 (a, b: uint64, num_perm; UINT32_MAX: no shingle)."},
    {"shingle_sets", shingle_sets, METH_VARARGS,
     "shingle_sets(hashes, starts, values, offsets): writes each text's distinct hash >> 32 values, ascending, into values "
     "(uint32, at least as many as hashes in starts' range), one text after the other, and their byte offsets into offsets "
     "(int64, docs + 1; offsets[0] = 0)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_shingles", NULL, -1, methods};

PyMODINIT_FUNC PyInit__shingles(void) {
    if (!fold_classes.blocks && build_fold_tables()) return PyErr_NoMemory();
    powers[0] = 1;
    for (int k = 1; k <= 8; k++) powers[k] = powers[k - 1] * BASE;
    return PyModule_Create(&module);
}
