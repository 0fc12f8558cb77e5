"""fastText's supervised predict for many lines at once, by the compiled kernel (`_fasttext.c`).

Why: the language stage called fastText's `predict` once per line from Python and built a dict per line; most of
the time went to its `std::unordered_map` of the pruned model's n-grams and to the call itself. The kernel reads the
same model file (this module parses it: args, dictionary with its pruning index, dense or product-quantized
matrices) and returns, for every line, what `fasttext.load_model(path).f.predict(line + "\\n", k, threshold)`
returns: the same labels in the same order and the same probabilities, bit for bit (float32, as fastText computes
them, widened to float64 as its binding does). tests/test_fasttext_kernel.py holds it to that.

A model whose features the kernel does not implement (unsupervised, negative sampling, an old or damaged file) loads
as None: the caller then uses the fastText library.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from cleanmix.filters._fasttext import Model

MAGIC = 793712314
VERSIONS = (11, 12)
"""11: supervised models without character n-grams (fastText sets maxn to 0); 12: the current format."""
SUPERVISED = 3
LOSSES = {"hs": 1, "softmax": 3, "ova": 4}
KSUB = 256
"""Centroids per subquantizer (8-bit codes, all fastText writes)."""


class Reader:
    """Little-endian fields of a model file, read in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def scalars(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: type, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=self.at)
        self.at += values.nbytes
        return values

    def word(self) -> bytes:
        end = self.data.index(b"\0", self.at)
        word, self.at = self.data[self.at : end], end + 1
        return word


def quantizer(reader: Reader) -> tuple[np.ndarray, int, int, int]:
    """A product quantizer: its centroids, subquantizers, subvector size and last subvector's size."""
    dim, nsubq, dsub, lastdsub = reader.scalars("iiii")
    return reader.array(np.float32, dim * KSUB), nsubq, dsub, lastdsub


def matrix(reader: Reader, quantized: bool) -> tuple:
    """The kernel's view of a matrix: (rows, cols, dense rows or None, codes, centroids, nsubq, dsub, lastdsub,
    norm codes, norm centroids), the quantized fields empty for a dense one."""
    none = np.empty(0, np.uint8), np.empty(0, np.float32), 0, 0, 0, np.empty(0, np.uint8), np.empty(0, np.float32)
    if not quantized:
        rows, cols = reader.scalars("qq")
        return rows, cols, reader.array(np.float32, rows * cols), *none
    qnorm, rows, cols, codesize = reader.scalars("?qqi")
    codes = reader.array(np.uint8, codesize)
    centroids, nsubq, dsub, lastdsub = quantizer(reader)
    norm_codes, norm_centroids = none[5], none[6]
    if qnorm:
        norm_codes = reader.array(np.uint8, rows)
        norm_centroids = quantizer(reader)[0]
    return rows, cols, None, codes, centroids, nsubq, dsub, lastdsub, norm_codes, norm_centroids


def huffman_tree(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The hierarchical softmax's tree over the labels (their counts in dictionary order), built as fastText builds
    it: two cursors, leaves from the rarest up and inner nodes in creation order, the smaller count first (a leaf only
    when strictly smaller). Children of each node, -1 for none; node 2n-2 is the root."""
    n = len(counts)
    count = [*counts, *[10**15] * (n - 1)]
    left, right = np.full(max(2 * n - 1, 0), -1, np.int32), np.full(max(2 * n - 1, 0), -1, np.int32)
    leaf, node = n - 1, n
    for i in range(n, 2 * n - 1):
        pair = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(node)
                node += 1
        left[i], right[i] = pair
        count[i] = count[pair[0]] + count[pair[1]]
    return left, right


@dataclass(frozen=True)
class FastTextModel:
    """A supervised model in the kernel, and its labels as fastText's predict names them (`__label__en`)."""

    kernel: Any
    labels: list[str]

    def predict(self, lines: list[str], k: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Per line, the top k labels (indices into `labels`, -1 past the last one found; k = -1: all labels) and their
        probabilities (float64; 0 past the last label): fastText's predict of `line + "\\n"`."""
        width = len(self.labels) if k == -1 else k
        if width <= 0:
            raise ValueError("k needs to be 1 or higher (or -1: all labels)")
        found = np.full((len(lines), width), -1, np.int32)
        probabilities = np.zeros((len(lines), width), np.float64)
        self.kernel.predict(lines, width, float(threshold), found, probabilities)
        return found, probabilities

    def probability(self, found: np.ndarray, probabilities: np.ndarray, label: str) -> np.ndarray:
        """Per line of a `predict`, the probability of `label` (`__label__en`): 0.0 where it is not among the line's
        labels found, or not the model's."""
        wanted = self.labels.index(label) if label in self.labels else -2
        return np.where(found == wanted, probabilities, 0.0).sum(axis=1)


def parse(data: bytes) -> FastTextModel | None:
    """The model in `data` (a .bin or .ftz file's bytes), or None where the kernel does not implement it."""
    reader = Reader(data)
    magic, version = reader.scalars("ii")
    if magic != MAGIC or version not in VERSIONS:
        return None
    dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, model, bucket, minn, maxn, _lr_update, _t = reader.scalars("12id")
    if version == 11 and model == SUPERVISED:
        maxn = 0
    size, nwords, nlabels, _ntokens, prune_size = reader.scalars("iiiqq")
    words, counts, types = [], [], []
    for _ in range(size):
        words.append(reader.word())
        count, kind = reader.scalars("qb")
        counts.append(count)
        types.append(kind)
    pruned = reader.array(np.int32, 2 * max(prune_size, 0)).reshape(-1, 2)
    (quant_input,) = reader.scalars("?")
    input_matrix = matrix(reader, quant_input)
    (qout,) = reader.scalars("?")
    output_matrix = matrix(reader, quant_input and qout)
    unsupported = (
        model != SUPERVISED or loss not in LOSSES.values() or nlabels <= 0 or (prune_size >= 0 and not quant_input)
        or (bucket <= 0 and (maxn > 0 or word_ngrams > 1)) or input_matrix[1] != dim or output_matrix[:2] != (nlabels, dim)
    )
    if unsupported:
        return None
    left, right = huffman_tree(counts[nwords:]) if loss == LOSSES["hs"] else (np.empty(0, np.int32), np.empty(0, np.int32))
    offsets = np.cumsum([0, *map(len, words)], dtype=np.int64)
    kernel = Model(
        (dim, minn, maxn, bucket, word_ngrams, loss, nwords, prune_size), b"".join(words), offsets,
        np.array(types, np.int8), np.ascontiguousarray(pruned[:, 0]), np.ascontiguousarray(pruned[:, 1]),
        input_matrix, output_matrix, left, right,
    )
    return FastTextModel(kernel, [word.decode("utf-8", "replace") for word in words[nwords:]])


@cache
def load(path: str) -> FastTextModel | None:
    """One model per file and process, as `language.load_model` keeps fastText's; None for a model the kernel does not
    implement, or a file it cannot read (fastText then says what is wrong with it)."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return parse(data)
    except (struct.error, ValueError):
        return None
