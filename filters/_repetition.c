/* Gopher's n-gram repetition measures, one pass per document (see gopher_repetition.py).
 *
 * Why C: the measures need a hash table of every n-gram of every document, for nine values of n.
 * Done column-wise (Polars and NumPy) that was a dozen whole-batch passes and sorts, about a fifth of
 * the whole pipeline's time; here a document's tables fit in the CPU cache and are built once each.
 *
 * Input: a batch's token lists as Arrow buffers (list offsets, string offsets, UTF-8 bytes).
 * Output, per document and n: characters of the most frequent n-gram times its count (`top`), and
 * characters covered by n-grams seen earlier in the document, scanning as Gopher's reference code
 * does: left to right, jumping n tokens past each repeat (`dup`).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIX 0x9E3779B97F4A7C15ULL
#define MAX_N 16

typedef struct {
    uint64_t key;
    int64_t first; /* the n-gram's first position in the document */
    int32_t count; /* 0: an empty slot */
    int32_t seen;  /* met by the Gopher scan */
} Slot;

typedef struct {
    uint64_t *hash;   /* per token */
    int64_t *cum;     /* characters before each token */
    uint64_t *gram;   /* the n-gram starting at each position */
    int64_t *cand;    /* positions whose n-gram may repeat */
    int64_t *slot;    /* each candidate's slot in the table */
    Slot *table;
    int64_t tokens, slots;
} Work;

static uint64_t splitmix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* A 64-bit hash of a token's bytes: 8 bytes at a time, then the tail, then the length. */
static uint64_t token_hash(const uint8_t *bytes, int64_t size) {
    uint64_t h = 0x243F6A8885A308D3ULL;
    int64_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, bytes + i, 8);
        h = splitmix(h ^ word);
    }
    if (i < size) {
        uint64_t word = 0;
        memcpy(&word, bytes + i, (size_t)(size - i));
        h = splitmix(h ^ word);
    }
    return splitmix(h ^ (uint64_t)size);
}

static int64_t utf8_chars(const uint8_t *bytes, int64_t size) {
    int64_t chars = 0;
    for (int64_t i = 0; i < size; i++) chars += (bytes[i] & 0xC0) != 0x80;
    return chars;
}

static int reserve(Work *w, int64_t tokens) {
    if (w->hash && tokens <= w->tokens) return 0;
    if (tokens < 1024) tokens = 1024;
    int64_t slots = 16;
    while (slots < 2 * tokens) slots <<= 1;
    free(w->hash); free(w->cum); free(w->gram); free(w->cand); free(w->slot); free(w->table);
    w->hash = malloc(sizeof(uint64_t) * tokens);
    w->cum = malloc(sizeof(int64_t) * (tokens + 1));
    w->gram = malloc(sizeof(uint64_t) * tokens);
    w->cand = malloc(sizeof(int64_t) * tokens);
    w->slot = malloc(sizeof(int64_t) * tokens);
    w->table = malloc(sizeof(Slot) * slots);
    w->tokens = tokens;
    w->slots = slots;
    return (w->hash && w->cum && w->gram && w->cand && w->slot && w->table) ? 0 : -1;
}

/* The slot of `key` (n-gram keys are products of mixed hashes: their top bits pick the slot). */
static int64_t find(const Slot *table, int shift, uint64_t mask, uint64_t key) {
    uint64_t i = (key * MIX) >> shift;
    while (table[i].count && table[i].key != key) i = (i + 1) & mask;
    return (int64_t)i;
}

/* One document: `top` and `dup` hold one value per n in top_ns / dup_ns (already zeroed). */
static void measure(Work *w, int64_t m, int max_n, const int *is_top, const int *is_dup, int64_t *top, double *dup) {
    const int64_t *cum = w->cum;
    int64_t n_cand = m > 1 ? m - 1 : 0;
    for (int64_t p = 0; p < n_cand; p++) {
        w->cand[p] = p;
        w->gram[p] = w->hash[p] * MIX + w->hash[p + 1];
    }
    for (int n = 2; n <= max_n; n++) {
        if (n > 2) { /* an n-gram can repeat only where its (n-1)-gram prefix does */
            int64_t kept = 0;
            for (int64_t i = 0; i < n_cand; i++) {
                int64_t p = w->cand[i];
                if (p + n - 1 < m) {
                    w->gram[p] = w->gram[p] * MIX + w->hash[p + n - 1];
                    w->cand[kept++] = p;
                }
            }
            n_cand = kept;
        }
        int bits = 4;
        while ((1LL << bits) < 2 * n_cand) bits++;
        uint64_t mask = (1ULL << bits) - 1;
        Slot *table = w->table;
        memset(table, 0, sizeof(Slot) * (n_cand ? mask + 1 : 0));
        for (int64_t i = 0; i < n_cand; i++) {
            int64_t p = w->cand[i], at = find(table, 64 - bits, mask, w->gram[p]);
            if (!table[at].count) { table[at].key = w->gram[p]; table[at].first = p; }
            table[at].count++;
            w->slot[i] = at;
        }
        int64_t kept = 0;
        int32_t best = 0;
        int64_t best_first = 0;
        for (int64_t i = 0; i < n_cand; i++) {
            const Slot *s = &table[w->slot[i]];
            if (s->count < 2) continue;
            w->slot[kept] = w->slot[i];
            w->cand[kept++] = w->cand[i];
            if (s->count > best || (s->count == best && s->first < best_first)) { best = s->count; best_first = s->first; }
        }
        n_cand = kept;
        if (is_top[n] >= 0) {
            /* no repeat: the first n-gram, once (none in a document shorter than n) */
            if (!best && m >= n) { best = 1; best_first = 0; }
            if (best) top[is_top[n]] = (cum[best_first + n] - cum[best_first] + n - 1) * (int64_t)best;
        }
        if (is_dup[n] >= 0) {
            int64_t next_free = -1, covered = 0;
            for (int64_t i = 0; i < n_cand; i++) {
                int64_t p = w->cand[i];
                if (p < next_free) continue;
                Slot *s = &table[w->slot[i]];
                if (s->seen) {
                    covered += cum[p + n] - cum[p];
                    next_free = p + n;
                } else {
                    s->seen = 1;
                }
            }
            dup[is_dup[n]] = (double)covered;
        }
    }
}

static int positions(PyObject *ns, int *index, int *max_n) {
    for (int n = 0; n <= MAX_N; n++) index[n] = -1;
    Py_ssize_t size = PySequence_Size(ns);
    if (size < 0) return -1;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = PySequence_GetItem(ns, i);
        long n = item ? PyLong_AsLong(item) : -1;
        Py_XDECREF(item);
        if (n < 2 || n > MAX_N) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "n-gram sizes are 2..%d", MAX_N);
            return -1;
        }
        index[n] = (int)i;
        if (n > *max_n) *max_n = (int)n;
    }
    return (int)size;
}

static PyObject *ngram_repetition(PyObject *self, PyObject *args) {
    PyObject *list_obj, *str_obj, *data_obj, *top_ns, *dup_ns, *top_obj, *dup_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &list_obj, &str_obj, &data_obj, &top_ns, &dup_ns, &top_obj, &dup_obj)) return NULL;
    int is_top[MAX_N + 1], is_dup[MAX_N + 1], max_n = 1;
    int n_top = positions(top_ns, is_top, &max_n), n_dup = positions(dup_ns, is_dup, &max_n);
    if (n_top < 0 || n_dup < 0) return NULL;
    Py_buffer lists = {0}, strs = {0}, data = {0}, top = {0}, dup = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(list_obj, &lists, PyBUF_SIMPLE) || PyObject_GetBuffer(str_obj, &strs, PyBUF_SIMPLE) ||
        PyObject_GetBuffer(data_obj, &data, PyBUF_SIMPLE) || PyObject_GetBuffer(top_obj, &top, PyBUF_WRITABLE) ||
        PyObject_GetBuffer(dup_obj, &dup, PyBUF_WRITABLE))
        goto done;
    int64_t docs = lists.len >= 8 ? lists.len / 8 - 1 : 0; /* (an empty array may have no offsets) */
    const int64_t *list_off = lists.buf, *str_off = strs.buf;
    if (top.len != 8 * docs * n_top || dup.len != 8 * docs * n_dup) {
        PyErr_SetString(PyExc_ValueError, "ngram_repetition: buffer sizes do not match the documents");
        goto done;
    }
    int64_t *top_out = top.buf;
    double *dup_out = dup.buf;
    memset(top_out, 0, top.len);
    memset(dup_out, 0, dup.len);
    Work w = {0};
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t d = 0; d < docs && !failed; d++) {
        int64_t first = list_off[d], m = list_off[d + 1] - first;
        if (reserve(&w, m)) { failed = 1; break; }
        w.cum[0] = 0;
        for (int64_t t = 0; t < m; t++) {
            const uint8_t *bytes = (const uint8_t *)data.buf + str_off[first + t];
            int64_t size = str_off[first + t + 1] - str_off[first + t];
            w.hash[t] = token_hash(bytes, size);
            w.cum[t + 1] = w.cum[t] + utf8_chars(bytes, size);
        }
        int64_t top_doc[MAX_N + 1];
        double dup_doc[MAX_N + 1];
        memset(top_doc, 0, sizeof top_doc);
        memset(dup_doc, 0, sizeof dup_doc);
        measure(&w, m, max_n, is_top, is_dup, top_doc, dup_doc);
        for (int i = 0; i < n_top; i++) top_out[i * docs + d] = top_doc[i];
        for (int i = 0; i < n_dup; i++) dup_out[i * docs + d] = dup_doc[i];
    }
    Py_END_ALLOW_THREADS
    free(w.hash); free(w.cum); free(w.gram); free(w.cand); free(w.slot); free(w.table);
    if (failed) PyErr_NoMemory();
    else result = Py_NewRef(Py_None);
done:
    if (lists.obj) PyBuffer_Release(&lists);
    if (strs.obj) PyBuffer_Release(&strs);
    if (data.obj) PyBuffer_Release(&data);
    if (top.obj) PyBuffer_Release(&top);
    if (dup.obj) PyBuffer_Release(&dup);
    return result;
}

static PyMethodDef methods[] = {
    {"ngram_repetition", ngram_repetition, METH_VARARGS,
     "ngram_repetition(list_offsets, str_offsets, data, top_ns, dup_ns, top_out, dup_out): fills top_out (int64, "
     "len(top_ns) x docs) and dup_out (float64, len(dup_ns) x docs)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_repetition", NULL, -1, methods};

PyMODINIT_FUNC PyInit__repetition(void) { return PyModule_Create(&module); }
