/* fastText's supervised predict, for many lines in one call (the model parsed by fasttext_model.py).
 *
 * Why C: the language stage called fastText's `predict` once per line from Python; inside it, the pruned model's
 * n-gram index is a std::unordered_map looked up for every 2-4 byte piece of every word (6.7% of the whole
 * pipeline's samples), and each call built strings, vectors and a dict. Here the word table and the pruning index
 * are open-addressing tables of our own, the latter behind a bit per bucket (most n-grams are not in it); a word's
 * n-gram hashes are computed as its bytes are walked (FNV-1a is a fold: a piece's hash extends its prefix's) and
 * listed, then looked up together and their rows summed; and the GIL is released over the lines.
 *
 * Every result is fastText's, bit for bit (tests/test_fasttext_kernel.py): the same words (split on ' ', \n, \r,
 * \t, \v, \f and \0; the line ends with "\n", read as the word "</s>", and a word "</s>" ends it too), the same
 * features in the same order (a known word's own row and n-grams, an unknown word's n-grams, then word n-grams),
 * the same float32 arithmetic in the same order (no reassociation: built without -ffast-math, and with
 * -ffp-contract=off, so that no multiply-add is fused whatever the target), fastText's log (`log(x + 1e-5)` in double), its sigmoid table for one-vs-all, and its
 * heap: libstdc++'s push_heap / pop_heap / sort_heap with a comparison of scores only, so that ties come out in the
 * same order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { HS = 1, SOFTMAX = 3, OVA = 4 };
enum { WORD = 0, LABEL = 1 };
enum { SIGMOID_TABLE = 512, MAX_SIGMOID = 8, KSUB = 256 };
enum { WORDS, OFFSETS, TYPES, PRUNE_KEYS, PRUNE_VALUES, LEFT, RIGHT, INPUT, OUTPUT = INPUT + 5, VIEWS = OUTPUT + 5 };

/* A dense matrix (`dense`) or a product-quantized one: per row nsubq codes, each choosing one of KSUB centroids of
 * its subvector (dsub floats, the last lastdsub), scaled by the row's norm where there are norm codes. */
typedef struct {
    int64_t rows, cols;
    const float *dense, *centroids, *norm_centroids;
    const uint8_t *codes, *norm_codes;
    int32_t nsubq, dsub, lastdsub;
} Matrix;

typedef struct {
    float score;
    int32_t id;
} Scored;

typedef struct {
    PyObject_HEAD
    int32_t dim, minn, maxn, bucket, word_ngrams, loss, nwords, nlabels, size;
    int64_t prune_size; /* fastText's pruneidx_size: -1 not pruned, 0 every n-gram dropped, else the index's size */
    const uint8_t *words;
    const int64_t *offsets;
    const int8_t *types;
    const int32_t *left, *right;
    uint32_t word_mask, prune_mask;
    uint64_t bucket_inverse, *pruned_in; /* (for h % bucket by multiplication); the buckets in the pruning index (bits) */
    uint32_t (*word_slots)[2]; /* the word table: (hash, id), open addressing; id -1 (as uint32): empty */
    int32_t (*pruned)[2]; /* the pruning index: (bucket, its row past the words), open addressing; bucket -1: empty */
    int64_t *sub_start; /* the rows of word w: sub_ids[sub_start[w]:sub_start[w + 1]] (itself, then its n-grams) */
    int32_t *sub_ids;
    Matrix in, out;
    float sigmoid[SIGMOID_TABLE + 1];
    Py_buffer views[VIEWS];
} Model;

/* The rows of a line's features (or a dictionary word's, at load), in fastText's order: listed first, summed after,
 * so that the lookups of many n-grams are under way at once. */
typedef struct {
    int32_t *list;
    int64_t listed, capacity;
} Sink;

static inline uint32_t fnv(uint32_t h, uint8_t byte) { return (h ^ (uint32_t)(int8_t)byte) * 16777619u; } /* fastText's signed char */

/* The rows' sum, row after row, into x. A quantized row adds, per subquantizer, its centroid (times the row's norm):
 * fastText's addcode. Each element's additions keep their order, which is all that the float sums depend on. */
static inline __attribute__((always_inline)) void add_quantized(const Matrix *m, float *x, const int32_t *rows, int64_t n, int32_t nsubq,
                                                                int32_t dsub, int32_t lastdsub) {
    for (int64_t r = 0; r < n; r++) {
        if (r + 8 < n) __builtin_prefetch(m->codes + (int64_t)nsubq * rows[r + 8]);
        float alpha = m->norm_codes ? m->norm_centroids[m->norm_codes[rows[r]]] : 1.0f;
        const uint8_t *code = m->codes + (int64_t)nsubq * rows[r];
        for (int32_t s = 0; s < nsubq - 1; s++) {
            const float *c = m->centroids + ((int64_t)s * KSUB + code[s]) * dsub;
            for (int32_t j = 0; j < dsub; j++) x[s * dsub + j] += alpha * c[j];
        }
        const float *c = m->centroids + (int64_t)(nsubq - 1) * KSUB * dsub + code[nsubq - 1] * lastdsub;
        for (int32_t j = 0; j < lastdsub; j++) x[(nsubq - 1) * dsub + j] += alpha * c[j];
    }
}

static void add_rows(const Matrix *m, float *x, const int32_t *rows, int64_t n) {
    if (m->dense) {
        for (int64_t r = 0; r < n; r++) {
            if (r + 8 < n) __builtin_prefetch(m->dense + (int64_t)rows[r + 8] * m->cols);
            const float *row = m->dense + (int64_t)rows[r] * m->cols;
            for (int64_t j = 0; j < m->cols; j++) x[j] += row[j];
        }
    } else if (m->nsubq == 8 && m->dsub == 2 && m->lastdsub == 2) { /* lid.176.ftz's shape, in registers */
        float sum[16];
        memcpy(sum, x, sizeof sum);
        add_quantized(m, sum, rows, n, 8, 2, 2);
        memcpy(x, sum, sizeof sum);
    } else {
        add_quantized(m, x, rows, n, m->nsubq, m->dsub, m->lastdsub);
    }
}

/* Row `row` of m times x, summed in column order; NaN for a dense row is fastText's "Encountered NaN" (flagged). */
static float dot_row(const Matrix *m, const float *x, int32_t row, int *nan) {
    float d = 0.0f;
    if (m->dense) {
        const float *r = m->dense + (int64_t)row * m->cols;
        for (int64_t j = 0; j < m->cols; j++) d += r[j] * x[j];
        if (isnan(d)) *nan = 1;
        return d;
    }
    float alpha = m->norm_codes ? m->norm_centroids[m->norm_codes[row]] : 1.0f;
    const uint8_t *code = m->codes + (int64_t)m->nsubq * row;
    for (int32_t s = 0, n_ = m->dsub; s < m->nsubq; s++) {
        const float *c = m->centroids + (s == m->nsubq - 1 ? (int64_t)s * KSUB * m->dsub + code[s] * m->lastdsub
                                                             : ((int64_t)s * KSUB + code[s]) * m->dsub);
        if (s == m->nsubq - 1) n_ = m->lastdsub;
        for (int32_t n = 0; n < n_; n++) d += x[s * m->dsub + n] * c[n];
    }
    return d * alpha;
}

/* Room for `more` rows; -1 when out of memory. */
static int reserve(Sink *sink, int64_t more) {
    if (sink->listed + more <= sink->capacity) return 0;
    int64_t capacity = 2 * (sink->listed + more);
    int32_t *grown = realloc(sink->list, sizeof(int32_t) * capacity);
    if (!grown) return -1;
    sink->list = grown, sink->capacity = capacity;
    return 0;
}

static inline uint32_t prune_slot(uint32_t bucket) { return bucket * 0x9E3779B1u; }

/* fastText's pushHash for the n-gram buckets listed from `from` on: each becomes its row, through the pruning index
 * where there is one (a bucket absent from it is dropped; with an empty index, all are). Most buckets are absent: a
 * bit per bucket (a few hundred KB) says so first, for all of them, then the index is read for those present. */
static void resolve(const Model *model, Sink *sink, int64_t from) {
    int32_t *rows = sink->list;
    int64_t kept = from;
    if (model->prune_size < 0) {
        for (int64_t r = from; r < sink->listed; r++) rows[r] += model->nwords;
        return;
    }
    if (model->prune_size > 0)
        for (int64_t r = from; r < sink->listed; r++) {
            uint32_t bucket = (uint32_t)rows[r];
            rows[kept] = rows[r], kept += model->pruned_in[bucket >> 6] >> (bucket & 63) & 1;
        }
    for (int64_t r = from; r < kept; r++) {
        uint32_t slot = prune_slot((uint32_t)rows[r]) & model->prune_mask;
        while (model->pruned[slot][0] != rows[r]) slot = (slot + 1) & model->prune_mask;
        rows[r] = model->nwords + model->pruned[slot][1];
    }
    sink->listed = kept;
}

/* h % bucket, by Lemire's multiply (exact for 32-bit operands): fastText's modulo is a division per n-gram. */
static inline uint32_t bucket_of(const Model *model, uint32_t h) {
    return (uint32_t)(((__uint128_t)(model->bucket_inverse * h) * (uint32_t)model->bucket) >> 64);
}

/* The rows of the character n-grams (minn..maxn code points, a UTF-8 sequence kept whole) of `w` ("<word>"), single
 * characters at either end left out, in fastText's order: by start, then length. */
static int subwords(const Model *model, Sink *sink, const uint8_t *w, int64_t n) {
    int64_t from = sink->listed;
    if (model->maxn < model->minn || model->maxn <= 0 || reserve(sink, n * (model->maxn - (model->minn > 1 ? model->minn : 1) + 1)))
        return model->maxn < model->minn || model->maxn <= 0 ? 0 : -1;
    int32_t *buckets = sink->list;
    int64_t listed = from;
    for (int64_t i = 0; i < n; i++) {
        if ((w[i] & 0xC0) == 0x80) continue;
        uint32_t h = 2166136261u;
        for (int64_t j = i, length = 1; j < n && length <= model->maxn; length++) {
            do h = fnv(h, w[j++]);
            while (j < n && (w[j] & 0xC0) == 0x80);
            if (length >= model->minn && !(length == 1 && (i == 0 || j == n))) buckets[listed++] = (int32_t)bucket_of(model, h);
        }
    }
    sink->listed = listed;
    resolve(model, sink, from);
    return 0;
}

static int32_t find_word(const Model *model, const uint8_t *w, int64_t n, uint32_t h) {
    for (uint32_t i = h & model->word_mask;; i = (i + 1) & model->word_mask) {
        int32_t id = (int32_t)model->word_slots[i][1];
        if (id < 0) return -1;
        const int64_t start = model->offsets[id];
        if (model->word_slots[i][0] == h && model->offsets[id + 1] - start == n && memcmp(model->words + start, w, (size_t)n) == 0)
            return id;
    }
}

/* Scratch of one predict call, sized for its longest line. */
typedef struct {
    float *hidden, *output;
    int32_t *hashes;
    uint8_t *bracketed;
    Scored *heap;
    int64_t heaped;
    Sink rows;
} Scratch;

/* fastText's Dictionary::getLine and Model::computeHidden for `s` + "\n": the rows of its features summed into
 * hidden (times 1/count, as fastText scales). Returns the count of rows (0: fastText predicts nothing; -1: out of
 * memory). */
static int64_t hidden_of(const Model *model, const uint8_t *s, int64_t n, Scratch *scratch) {
    Sink *sink = &scratch->rows;
    int64_t words = 0;
    sink->listed = 0;
    for (int64_t i = 0; i <= n;) {
        const uint8_t *w = s + i;
        int64_t length = 0;
        if (i == n || s[i] == '\n') { /* an empty word at a newline is "</s>" */
            w = (const uint8_t *)"</s>", length = 4;
        } else {
            uint8_t c = s[i];
            if (c == ' ' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0') { i++; continue; }
            while (i + length < n && (c = s[i + length]) != ' ' && c != '\n' && c != '\r' && c != '\t' && c != '\v' && c != '\f' && c != '\0')
                length++;
        }
        if (w == s + i) i += length;
        uint32_t h = 2166136261u;
        for (int64_t j = 0; j < length; j++) h = fnv(h, w[j]);
        int32_t id = find_word(model, w, length, h);
        int is_eos = length == 4 && memcmp(w, "</s>", 4) == 0;
        int type = id >= 0 ? model->types[id] : (length >= 9 && memcmp(w, "__label__", 9) == 0) ? LABEL : WORD;
        if (type == WORD) {
            if (id >= 0) { /* its own row, and its n-grams' unless the model has none */
                int64_t count = model->maxn <= 0 ? 1 : model->sub_start[id + 1] - model->sub_start[id];
                if (reserve(sink, count)) return -1;
                memcpy(sink->list + sink->listed, model->sub_ids + model->sub_start[id], sizeof(int32_t) * count);
                sink->listed += count;
            } else if (!is_eos) {
                uint8_t *b = scratch->bracketed;
                b[0] = '<', memcpy(b + 1, w, (size_t)length), b[length + 1] = '>';
                if (subwords(model, sink, b, length + 2)) return -1;
            }
            scratch->hashes[words++] = (int32_t)h;
        }
        if (is_eos) break;
    }
    int64_t from = sink->listed;
    if (model->word_ngrams > 1 && reserve(sink, words * (model->word_ngrams - 1))) return -1;
    for (int64_t i = 0; i < words; i++) { /* word n-grams: fastText's hashes are int32, widened with their sign */
        uint64_t h = (uint64_t)(int64_t)scratch->hashes[i];
        for (int64_t j = i + 1; j < words && j < i + model->word_ngrams; j++) {
            h = h * 116049371u + (uint64_t)(int64_t)scratch->hashes[j];
            sink->list[sink->listed++] = (int32_t)(h % (uint64_t)model->bucket);
        }
    }
    resolve(model, sink, from);
    float *hidden = scratch->hidden;
    memset(hidden, 0, sizeof(float) * model->dim);
    add_rows(&model->in, hidden, sink->list, sink->listed);
    if (sink->listed) {
        float scale = (float)(1.0 / (double)sink->listed);
        for (int32_t j = 0; j < model->dim; j++) hidden[j] *= scale;
    }
    return sink->listed;
}

/* libstdc++'s heap algorithms with fastText's comparison (a greater score first: the heap's front is the lowest). */
static inline int before(Scored a, Scored b) { return a.score > b.score; }

static void sift_up(Scored *h, int64_t hole, int64_t top, Scored value) {
    for (int64_t parent = (hole - 1) / 2; hole > top && before(h[parent], value); parent = (hole - 1) / 2) h[hole] = h[parent], hole = parent;
    h[hole] = value;
}

static void adjust(Scored *h, int64_t hole, int64_t length, Scored value) {
    int64_t top = hole, child = hole;
    while (child < (length - 1) / 2) {
        child = 2 * (child + 1);
        if (before(h[child], h[child - 1])) child--;
        h[hole] = h[child], hole = child;
    }
    if ((length & 1) == 0 && child == (length - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1], hole = child - 1;
    }
    sift_up(h, hole, top, value);
}

/* Moves the front to h[length - 1] and restores the heap over the rest (std::pop_heap). */
static void pop_front(Scored *h, int64_t length) {
    if (length < 2) return;
    Scored value = h[length - 1];
    h[length - 1] = h[0];
    adjust(h, 0, length - 1, value);
}

/* push_back + push_heap, and past k entries pop_heap + pop_back. */
static void keep(Scratch *scratch, int64_t k, Scored entry) {
    scratch->heap[scratch->heaped] = entry;
    sift_up(scratch->heap, scratch->heaped, 0, entry);
    if (++scratch->heaped > k) pop_front(scratch->heap, scratch->heaped--);
}

static inline float fasttext_log(float x) { return (float)log((double)x + 1e-5); }

static void dfs(const Model *model, Scratch *scratch, int64_t k, float log_threshold, int32_t node, float score, int *nan) {
    if (score < log_threshold) return;
    if (scratch->heaped == k && score < scratch->heap[0].score) return;
    if (model->left[node] == -1 && model->right[node] == -1) {
        keep(scratch, k, (Scored){score, node});
        return;
    }
    float f = dot_row(&model->out, scratch->hidden, node - model->nlabels, nan);
    f = (float)(1. / (double)(1.0f + expf(-f)));
    dfs(model, scratch, k, log_threshold, model->left[node], score + fasttext_log((float)(1.0 - (double)f)), nan);
    dfs(model, scratch, k, log_threshold, model->right[node], score + fasttext_log(f), nan);
}

/* The loss's predict into scratch->heap (sorted, best first); returns the count found. */
static int64_t predict_hidden(const Model *model, Scratch *scratch, int64_t k, float threshold, int *nan) {
    scratch->heaped = 0;
    if (model->loss == HS) {
        dfs(model, scratch, k, fasttext_log(threshold), 2 * model->nlabels - 2, 0.0f, nan);
    } else {
        float *output = scratch->output, max, z = 0.0f;
        for (int32_t i = 0; i < model->nlabels; i++) output[i] = dot_row(&model->out, scratch->hidden, i, nan);
        if (model->loss == SOFTMAX) {
            max = output[0];
            for (int32_t i = 0; i < model->nlabels; i++) max = output[i] < max ? max : output[i];
            for (int32_t i = 0; i < model->nlabels; i++) output[i] = (float)exp((double)(output[i] - max)), z += output[i];
            for (int32_t i = 0; i < model->nlabels; i++) output[i] /= z;
        } else {
            for (int32_t i = 0; i < model->nlabels; i++) {
                float x = output[i];
                output[i] = x < -MAX_SIGMOID ? 0.0f : x > MAX_SIGMOID ? 1.0f
                          : model->sigmoid[(int64_t)((x + (float)MAX_SIGMOID) * (float)SIGMOID_TABLE / (float)MAX_SIGMOID / 2.0f)];
            }
        }
        for (int32_t i = 0; i < model->nlabels; i++) {
            if (output[i] < threshold) continue;
            if (scratch->heaped == k && fasttext_log(output[i]) < scratch->heap[0].score) continue;
            keep(scratch, k, (Scored){fasttext_log(output[i]), i});
        }
    }
    for (int64_t length = scratch->heaped; length > 1; length--) pop_front(scratch->heap, length); /* sort_heap */
    return scratch->heaped;
}

/* predict(lines, k, threshold, labels, probabilities): per line (a str, read as UTF-8 + "\n"), the top k labels
 * into row i of labels (int32, lines x k, left as they are past the last found) and exp of their scores into
 * probabilities (float64, likewise), as fastText's binding returns them. */
static PyObject *Model_predict(Model *model, PyObject *args) {
    PyObject *list, *lines = NULL, *labels_obj, *probabilities_obj, *result = NULL;
    int k;
    float threshold;
    if (!PyArg_ParseTuple(args, "OifOO", &list, &k, &threshold, &labels_obj, &probabilities_obj)) return NULL;
    if (!model->sub_ids) { PyErr_SetString(PyExc_RuntimeError, "the Model was not made"); return NULL; }
    if (!(lines = PySequence_Tuple(list))) return NULL; /* (holds the lines, and so their UTF-8, while the GIL is released) */
    Py_ssize_t n = PyTuple_GET_SIZE(lines);
    Py_buffer labels = {0}, probabilities = {0};
    const char **texts = NULL;
    Py_ssize_t *lengths = NULL, longest = 0;
    Scratch scratch = {0};
    int nan = 0, failed = 0;
    if (k <= 0) { PyErr_SetString(PyExc_ValueError, "k needs to be 1 or higher"); goto done; }
    if (PyObject_GetBuffer(labels_obj, &labels, PyBUF_WRITABLE) || PyObject_GetBuffer(probabilities_obj, &probabilities, PyBUF_WRITABLE))
        goto done;
    if (labels.len != (Py_ssize_t)sizeof(int32_t) * n * k || probabilities.len != (Py_ssize_t)sizeof(double) * n * k) {
        PyErr_SetString(PyExc_ValueError, "labels (int32) and probabilities (float64) are not lines x k");
        goto done;
    }
    texts = malloc(sizeof(char *) * (n + 1)), lengths = malloc(sizeof(Py_ssize_t) * (n + 1));
    if (!texts || !lengths) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *line = PyTuple_GET_ITEM(lines, i);
        if (!PyUnicode_Check(line)) { PyErr_SetString(PyExc_TypeError, "lines are not all str"); goto done; }
        if (!(texts[i] = PyUnicode_AsUTF8AndSize(line, &lengths[i]))) goto done;
        if (lengths[i] > longest) longest = lengths[i];
    }
    scratch.hidden = malloc(sizeof(float) * model->dim), scratch.output = malloc(sizeof(float) * model->nlabels);
    scratch.hashes = malloc(sizeof(int32_t) * (longest + 2)), scratch.bracketed = malloc((size_t)longest + 2);
    scratch.heap = malloc(sizeof(Scored) * ((size_t)k + 1));
    if (!scratch.hidden || !scratch.output || !scratch.hashes || !scratch.bracketed || !scratch.heap) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    int32_t *found = labels.buf;
    double *probability = probabilities.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t rows = hidden_of(model, (const uint8_t *)texts[i], lengths[i], &scratch);
        if (rows < 0) { failed = 1; break; }
        if (!rows) continue;
        int64_t count = predict_hidden(model, &scratch, k, threshold, &nan);
        for (int64_t j = 0; j < count; j++)
            found[i * k + j] = scratch.heap[j].id, probability[i * k + j] = (double)expf(scratch.heap[j].score);
    }
    Py_END_ALLOW_THREADS
    if (failed) PyErr_NoMemory();
    else if (nan) PyErr_SetString(PyExc_RuntimeError, "Encountered NaN.");
    else result = Py_NewRef(Py_None);
done:
    Py_DECREF(lines);
    free(texts), free(lengths);
    free(scratch.hidden), free(scratch.output), free(scratch.hashes), free(scratch.bracketed), free(scratch.heap), free(scratch.rows.list);
    if (labels.obj) PyBuffer_Release(&labels);
    if (probabilities.obj) PyBuffer_Release(&probabilities);
    return result;
}

static int view(PyObject *obj, Py_buffer *into, Py_ssize_t itemsize, Py_ssize_t count) {
    if (obj == Py_None) return 0;
    if (PyObject_GetBuffer(obj, into, PyBUF_SIMPLE)) return -1;
    if (count >= 0 && into->len != itemsize * count) {
        PyErr_SetString(PyExc_ValueError, "a model array has the wrong size");
        return -1;
    }
    return 0;
}

/* A matrix from (rows, cols, dense or None, codes, centroids, nsubq, dsub, lastdsub, norm codes, norm centroids). */
static int matrix_from(PyObject *spec, Matrix *m, Py_buffer *views) {
    PyObject *dense, *codes, *centroids, *norm_codes, *norm_centroids;
    if (!PyArg_ParseTuple(spec, "LLOOOiiiOO", &m->rows, &m->cols, &dense, &codes, &centroids, &m->nsubq, &m->dsub, &m->lastdsub,
                          &norm_codes, &norm_centroids))
        return -1;
    int quantized = dense == Py_None;
    if (m->rows < 0 || m->cols < 0 || (quantized && (m->nsubq <= 0 || m->dsub <= 0 || m->lastdsub <= 0 ||
                                                     (int64_t)m->dsub * (m->nsubq - 1) + m->lastdsub != m->cols))) {
        PyErr_SetString(PyExc_ValueError, "a matrix's shape does not add up");
        return -1;
    }
    if (view(dense, &views[0], sizeof(float), m->rows * m->cols) ||
        view(codes, &views[1], 1, quantized ? m->rows * m->nsubq : 0) || view(centroids, &views[2], sizeof(float), quantized ? m->cols * KSUB : 0) ||
        view(norm_codes, &views[3], 1, -1) || view(norm_centroids, &views[4], sizeof(float), -1))
        return -1;
    int qnorm = quantized && views[3].len > 0;
    if (qnorm && (views[3].len != m->rows || views[4].len != (Py_ssize_t)sizeof(float) * KSUB)) {
        PyErr_SetString(PyExc_ValueError, "a matrix's norms do not add up");
        return -1;
    }
    m->dense = quantized ? NULL : views[0].buf, m->codes = views[1].buf, m->centroids = views[2].buf;
    m->norm_codes = qnorm ? views[3].buf : NULL, m->norm_centroids = views[4].buf;
    return 0;
}

static uint32_t table_size(int64_t entries) {
    uint32_t size = 16;
    while (size < 2 * entries) size *= 2;
    return size;
}

/* Model((dim, minn, maxn, bucket, word_ngrams, loss, nwords, prune_size), words, offsets, types, prune_keys,
 * prune_values, input, output, left, right): see fasttext_model.parse. */
static int Model_init(Model *model, PyObject *args, PyObject *kwds) {
    PyObject *words, *offsets, *types, *prune_keys, *prune_values, *input, *output, *left, *right;
    Py_buffer *v = model->views;
    if (!PyArg_ParseTuple(args, "(iiiiiiiL)OOOOOOOOO", &model->dim, &model->minn, &model->maxn, &model->bucket, &model->word_ngrams,
                          &model->loss, &model->nwords, &model->prune_size, &words, &offsets, &types, &prune_keys, &prune_values, &input,
                          &output, &left, &right))
        return -1;
    if (v[TYPES].obj) { PyErr_SetString(PyExc_RuntimeError, "a Model is made once"); return -1; }
    if (view(types, &v[TYPES], 1, -1)) return -1;
    model->size = (int32_t)v[TYPES].len, model->nlabels = model->size - model->nwords;
    int64_t prunes = model->prune_size > 0 ? model->prune_size : 0;
    if (view(words, &v[WORDS], 1, -1) || view(offsets, &v[OFFSETS], sizeof(int64_t), (Py_ssize_t)model->size + 1) ||
        view(prune_keys, &v[PRUNE_KEYS], sizeof(int32_t), prunes) || view(prune_values, &v[PRUNE_VALUES], sizeof(int32_t), prunes) ||
        view(left, &v[LEFT], sizeof(int32_t), model->loss == HS ? 2 * (Py_ssize_t)model->nlabels - 1 : 0) ||
        view(right, &v[RIGHT], sizeof(int32_t), model->loss == HS ? 2 * (Py_ssize_t)model->nlabels - 1 : 0) ||
        matrix_from(input, &model->in, v + INPUT) || matrix_from(output, &model->out, v + OUTPUT))
        return -1;
    model->words = v[WORDS].buf, model->offsets = v[OFFSETS].buf, model->types = v[TYPES].buf;
    model->left = v[LEFT].buf, model->right = v[RIGHT].buf;
    const int32_t *keys = v[PRUNE_KEYS].buf, *values = v[PRUNE_VALUES].buf;
    int64_t most = model->prune_size < 0 ? model->bucket : 0; /* rows past the words that a feature may reach */
    for (int64_t i = 0; i < prunes; i++) most = values[i] < 0 ? INT64_MAX : values[i] + 1 > most ? values[i] + 1 : most;
    if (model->nwords < 0 || model->nlabels <= 0 || model->in.cols != model->dim || model->out.cols != model->dim ||
        model->out.rows != model->nlabels || model->in.rows < model->nwords + most || model->offsets[model->size] != v[WORDS].len ||
        (model->loss != HS && model->loss != SOFTMAX && model->loss != OVA) || (model->bucket <= 0 && (model->maxn > 0 || model->word_ngrams > 1))) {
        PyErr_SetString(PyExc_ValueError, "the model does not add up");
        return -1;
    }
    for (int64_t i = 0; i < v[LEFT].len / 4; i++)
        if (model->left[i] >= 2 * model->nlabels - 1 || model->right[i] >= 2 * model->nlabels - 1) {
            PyErr_SetString(PyExc_ValueError, "the label tree does not add up");
            return -1;
        }
    for (int i = 0; i <= SIGMOID_TABLE; i++) {
        float x = (float)(i * 2 * MAX_SIGMOID) / (float)SIGMOID_TABLE - (float)MAX_SIGMOID;
        model->sigmoid[i] = (float)(1.0 / (1.0 + (double)expf(-x)));
    }
    uint32_t words_size = table_size(model->size), prune_table = table_size(prunes);
    model->word_mask = words_size - 1, model->prune_mask = prune_table - 1;
    model->bucket_inverse = model->bucket > 0 ? UINT64_MAX / (uint32_t)model->bucket + 1 : 0;
    model->word_slots = malloc(sizeof(*model->word_slots) * words_size);
    model->pruned = malloc(sizeof(*model->pruned) * prune_table);
    model->pruned_in = calloc(prunes && model->bucket > 0 ? ((size_t)model->bucket + 63) / 64 : 1, sizeof(uint64_t));
    model->sub_start = malloc(sizeof(int64_t) * (model->size + 1));
    uint8_t *bracketed = NULL;
    Sink sink = {0};
    int failed = -1;
    if (!model->word_slots || !model->pruned || !model->pruned_in || !model->sub_start) goto done;
    memset(model->word_slots, 0xFF, sizeof(*model->word_slots) * words_size), memset(model->pruned, 0xFF, sizeof(*model->pruned) * prune_table);
    for (int64_t i = 0; i < prunes; i++) {
        if (keys[i] < 0 || keys[i] >= model->bucket) continue; /* (no n-gram reaches it) */
        uint32_t slot = prune_slot((uint32_t)keys[i]) & model->prune_mask;
        while (model->pruned[slot][0] >= 0 && model->pruned[slot][0] != keys[i]) slot = (slot + 1) & model->prune_mask;
        model->pruned[slot][0] = keys[i], model->pruned[slot][1] = values[i]; /* a repeated key: the last wins, as in fastText */
        model->pruned_in[keys[i] >> 6] |= 1ull << (keys[i] & 63);
    }
    int64_t longest = 0;
    for (int32_t w = 0; w < model->size; w++) longest = model->offsets[w + 1] - model->offsets[w] > longest ? model->offsets[w + 1] - model->offsets[w] : longest;
    if (!(bracketed = malloc((size_t)longest + 2))) goto done;
    for (int32_t w = 0; w < model->size; w++) {
        const uint8_t *word = model->words + model->offsets[w];
        int64_t length = model->offsets[w + 1] - model->offsets[w];
        uint32_t h = 2166136261u;
        for (int64_t j = 0; j < length; j++) h = fnv(h, word[j]);
        uint32_t slot = h & model->word_mask; /* a repeated word: the last one's id, as in fastText's table */
        for (int32_t id; (id = (int32_t)model->word_slots[slot][1]) >= 0; slot = (slot + 1) & model->word_mask)
            if (model->offsets[id + 1] - model->offsets[id] == length && memcmp(model->words + model->offsets[id], word, (size_t)length) == 0) break;
        model->word_slots[slot][0] = h, model->word_slots[slot][1] = (uint32_t)w;
        model->sub_start[w] = sink.listed;
        if (reserve(&sink, 1)) goto done;
        sink.list[sink.listed++] = w;
        if (!(length == 4 && memcmp(word, "</s>", 4) == 0)) {
            bracketed[0] = '<', memcpy(bracketed + 1, word, (size_t)length), bracketed[length + 1] = '>';
            if (subwords(model, &sink, bracketed, length + 2)) goto done;
        }
    }
    model->sub_start[model->size] = sink.listed;
    model->sub_ids = sink.list, sink.list = NULL;
    failed = 0;
done:
    free(bracketed);
    free(sink.list);
    if (failed) PyErr_NoMemory();
    return failed;
}

static void Model_dealloc(Model *model) {
    free(model->word_slots), free(model->pruned), free(model->pruned_in);
    free(model->sub_start), free(model->sub_ids);
    for (int i = 0; i < VIEWS; i++)
        if (model->views[i].obj) PyBuffer_Release(&model->views[i]);
    Py_TYPE(model)->tp_free((PyObject *)model);
}

static PyMethodDef model_methods[] = {
    {"predict", (PyCFunction)Model_predict, METH_VARARGS,
     "predict(lines, k, threshold, labels, probabilities): fastText's predict of each line + '\\n': its top k labels into "
     "labels (int32, lines x k) and their probabilities into probabilities (float64, lines x k); past the labels found, "
     "both are left as they are."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cleanmix.filters._fasttext.Model",
    .tp_doc = PyDoc_STR("A supervised fastText model's tables and matrices (built by fasttext_model.parse)."),
    .tp_basicsize = sizeof(Model),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = model_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fasttext", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__fasttext(void) {
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddObjectRef(m, "Model", (PyObject *)&ModelType) < 0) Py_CLEAR(m);
    return m;
}
