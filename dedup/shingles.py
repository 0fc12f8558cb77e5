"""Text → stable shingle hashes → MinHash signatures and LSH band keys, columnar (numpy/Polars).

Why columnar: hashing each shingle through Python (datasketch: SHA-1 per shingle) is the
bottleneck of near-dedup. Here a whole batch is one byte buffer: token boundaries, token hashes
(a polynomial over the token's bytes) and shingle hashes (the n token hashes chained) come from
one pass over it in a compiled kernel (`_shingles.c`), and so do the signatures (minima over the
permutations), so a shingle costs nanoseconds and no Python runs per row or per shingle. The
column-wise token helpers (token_spans, range_hashes) remain for the benchmark index.

Why stable: every constant below is fixed arithmetic (no Python `hash()`, no Polars `hash`,
whose values change between versions), so signatures are identical across runs and machines.

CJK: Han, kana, Thai, Lao, Khmer and Myanmar are written without spaces, so each of their
characters is a token; every other script is split at whitespace. This is decided per
character, so mixed documents (Chinese with English terms) are handled in one pass.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pyarrow as pa

from cleanmix.dedup import _shingles
from cleanmix.pipelines import arrow_buffers

UNSPACED = np.array(
    [
        (0x0E00, 0x0EFF),  # Thai, Lao
        (0x1000, 0x109F),  # Myanmar
        (0x1780, 0x17FF),  # Khmer
        (0x2E80, 0x2FDF),  # CJK radicals
        (0x3005, 0x3007),  # 々 〆 〇
        (0x3021, 0x3029),  # Hangzhou numerals
        (0x3040, 0x30FF),  # Hiragana, Katakana
        (0x31F0, 0x31FF),  # Katakana extensions
        (0x3400, 0x4DBF),  # CJK extension A
        (0x4E00, 0x9FFF),  # CJK unified ideographs
        (0xF900, 0xFAFF),  # CJK compatibility ideographs
        (0x20000, 0x3FFFF),  # CJK extensions B–H
    ]
)
"""Code point ranges of scripts written without spaces between words: one character = one token."""
_BMP_UNSPACED = np.zeros(0x10000, bool)
for _lo, _hi in UNSPACED[UNSPACED[:, 0] < 0x10000]:
    _BMP_UNSPACED[_lo : _hi + 1] = True
_UNSPACED_RANGES = np.ascontiguousarray(UNSPACED, np.int64)
_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True

_U64 = np.uint64
_BASE = _U64(0x100000001B3)  # odd, so invertible modulo 2**64
_BASE_INV = _U64(pow(0x100000001B3, -1, 2**64))
_MIX1, _MIX2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_CHUNK_BYTES = 1 << 21  # text bytes hashed at once: bounds the prefix arrays (~8 B/byte each)
_POWER_TABLES: tuple[np.ndarray, np.ndarray] = (np.zeros(0, _U64), np.zeros(0, _U64))


def normalize_expr(
    text: pl.Expr, *, lowercase: bool = True, whitespace: bool = True, punctuation: bool = True, nfkc: bool = True
) -> pl.Expr:
    """Normalise text before hashing: NFKC (full-width → ASCII), case, punctuation, whitespace."""
    expr = text.fill_null("")
    if nfkc:
        expr = expr.str.normalize("NFKC")
    if lowercase:
        expr = expr.str.to_lowercase()
    if punctuation:
        expr = expr.str.replace_all(r"[\p{P}\p{S}]+", " ")
    if whitespace:
        expr = expr.str.replace_all(r"\s+", " ").str.strip_chars(" ")
    return expr


def folded_buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """`normalize_expr(texts, whitespace=False)` as buffers (bytes, offsets): NFKC by Polars, then the lowercase and
    the punctuation runs by `_shingles.fold_texts`, in one pass where Polars took two over the whole batch."""
    array = pl.select(pl.lit(texts, pl.String).fill_null("").str.normalize("NFKC")).to_series().to_arrow()
    data, offsets = arrow_buffers.data(array), arrow_buffers.offsets(array)
    folded, folded_offsets = np.empty(2 * int(offsets[-1] - offsets[0]) + 1, np.uint8), np.empty(len(array) + 1, np.int64)
    size = _shingles.fold_texts(offsets, data, np.ones(len(array), np.uint8), folded_offsets, folded)
    return folded[:size], folded_offsets


def text_buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of all texts as one array, and each text's [start, end) offsets into it."""
    array = texts.cast(pl.String).to_arrow()  # (large_string: one array, whatever the chunks)
    return arrow_buffers.data(array), arrow_buffers.offsets(array)


def splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: spreads every input bit over the output (the polynomial alone does not)."""
    x = x ^ (x >> _U64(30))
    x *= _MIX1
    x ^= x >> _U64(27)
    x *= _MIX2
    return x ^ (x >> _U64(31))


def hash_powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B^i and B^-i (mod 2^64) for i ≤ n, computed once per process and grown on demand."""
    global _POWER_TABLES
    if _POWER_TABLES[0].size <= n:
        size = max(n + 1, _CHUNK_BYTES + 1)
        _POWER_TABLES = (_powers(_BASE, size), _powers(_BASE_INV, size))
    return _POWER_TABLES


def _powers(base: np.uint64, size: int) -> np.ndarray:
    """base^0 … base^(size-1) mod 2^64 as an outer product of two short running products,
    base^(k·block) × base^j (NumPy's cumprod over millions of uint64 takes a quarter second)."""
    block = 2048
    with np.errstate(over="ignore"):
        low = np.cumprod(np.r_[_U64(1), np.full(block - 1, base)])
        high = np.cumprod(np.r_[_U64(1), np.full(-(-size // block) - 1, low[-1] * base)])
        return (high[:, None] * low[None, :]).ravel()[:size]


def range_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each byte range data[start:end], all ranges at once.

    G[k] = Σ_{i<k} (data[i]+1)·B^i (mod 2^64), so range [s, e) hashes to (G[e] − G[s])·B^−s:
    the same value wherever the range sits, from one prefix array.
    """
    powers, inverse = hash_powers(data.size)
    with np.errstate(over="ignore"):
        prefix = np.zeros(data.size + 1, _U64)
        np.cumsum((data.astype(_U64) + _U64(1)) * powers[: data.size], out=prefix[1:])
        lengths = (ends - starts).astype(_U64)
        return splitmix((prefix[ends] - prefix[starts]) * inverse[starts] + lengths)


def unspaced_bytes(data: np.ndarray) -> np.ndarray:
    """True at every byte of a character from an unspaced script (all are 3- or 4-byte UTF-8)."""
    marks = np.zeros(data.size + 4, bool)
    last = data.size - 1
    lead3 = np.flatnonzero((data >= 0xE0) & (data < 0xF0))
    b0, b1, b2 = (data[np.minimum(lead3 + k, last)].astype(np.int32) for k in range(3))
    hit3 = lead3[_BMP_UNSPACED[((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)]]
    lead4 = np.flatnonzero(data >= 0xF0)
    c0, c1, c2, c3 = (data[np.minimum(lead4 + k, last)].astype(np.int32) for k in range(4))
    code4 = ((c0 & 0x07) << 18) | ((c1 & 0x3F) << 12) | ((c2 & 0x3F) << 6) | (c3 & 0x3F)
    hit4 = lead4[(code4 >= 0x20000) & (code4 <= 0x3FFFF)]
    for k in range(3):
        marks[hit3 + k] = True
    for k in range(4):
        marks[hit4 + k] = True
    return marks[: data.size]


def token_spans(data: np.ndarray, doc_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) byte ranges of all tokens: runs of non-space bytes, cut around unspaced characters."""
    is_space = _WHITESPACE[data]
    unspaced = unspaced_bytes(data)
    lead = (data & 0xC0) != 0x80
    doc_start = np.zeros(data.size + 1, bool)
    doc_start[doc_offsets] = True
    prev_space = np.r_[True, is_space[:-1]]
    prev_unspaced = np.r_[False, unspaced[:-1]]
    is_start = ~is_space & lead & (doc_start[:-1] | prev_space | unspaced | prev_unspaced)
    starts = np.flatnonzero(is_start)
    cut = np.flatnonzero(np.r_[is_start | is_space, False] | doc_start)
    ends = cut[np.flatnonzero(np.r_[is_start, False][cut]) + 1]
    return starts, ends


def shingle_hashes(texts: pl.Series, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the `ngram`-token shingles of every (normalised) text, and where each text's run starts.

    Returns (hashes, starts): text d owns hashes[starts[d]:starts[d+1]]. A token is a run of
    non-space characters, or one character of an unspaced script. A shingle hashes its tokens,
    not the bytes between them, so spacing never matters. A text with fewer than `ngram` tokens
    is one shingle (short texts still match); an empty text has none. Computed by `_shingles.c`,
    one pass over each text's bytes (the definitions are in its head).
    """
    return buffer_shingle_hashes(*text_buffers(texts), ngram) if len(texts) else (np.zeros(0, _U64), np.zeros(1, np.int64))


def buffer_shingle_hashes(data: np.ndarray, offsets: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """`shingle_hashes` of texts given as buffers (bytes, int64 offsets)."""
    starts = np.zeros(len(offsets), np.int64)
    hashes = _shingles.shingle_hashes(data, offsets, ngram, _UNSPACED_RANGES, starts)
    return np.frombuffer(hashes, _U64), starts


def byte_chunks(offsets: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive documents of about _CHUNK_BYTES (a longer document is a run alone)."""
    targets = np.arange(_CHUNK_BYTES, int(offsets[-1]) + _CHUNK_BYTES, _CHUNK_BYTES)
    cuts = np.unique(np.r_[0, np.searchsorted(offsets, targets, side="right") - 1, len(offsets) - 1])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of h_i(x) = (a_i·x + b_i mod 2^64) >> 32: multiply-shift, 2-universal on 32-bit x."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**64 - 1, num_perm, dtype=_U64, endpoint=True) | _U64(1)
    b = rng.integers(0, 2**64 - 1, num_perm, dtype=_U64, endpoint=True)
    return a, b


def signatures(hashes: np.ndarray, starts: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signatures (docs × num_perm, uint32) of each text's shingle hashes.

    Signature entry i of a text is min over its shingles h of (a_i·(h >> 32) + b_i mod 2^64) >> 32 (the
    shift is monotonic, so it commutes with the minimum). Texts without shingles get the all-ones
    signature; callers skip them. `_shingles.c` runs it text by text in 32-bit vector lanes (AVX2 or
    AVX-512 where the CPU has them): 2-4x NumPy's speed, which needed three passes over a
    (num_perm × shingles) buffer.
    """
    a, b = permutations(num_perm, seed)
    out = np.empty((len(starts) - 1, num_perm), np.uint32)
    _shingles.signatures(np.ascontiguousarray(hashes, _U64), np.ascontiguousarray(starts, np.int64), a, b, out)
    return out


def band_keys(signature: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """One 64-bit key per (document, band): equal keys ⇔ (almost surely) equal band rows.

    The band index is mixed in, so keys of different bands never meet in one bucket.
    """
    sig = signature[:, : bands * rows].astype(_U64).reshape(len(signature), bands, rows)
    with np.errstate(over="ignore"):
        key = np.broadcast_to(splitmix(np.arange(bands, dtype=_U64) + _U64(seed) * _MIX2), sig.shape[:2]).copy()
        for r in range(rows):
            key = splitmix(key ^ sig[:, :, r])
    return key


def _token_pattern() -> re.Pattern[str]:
    unspaced = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in UNSPACED)
    return re.compile(f"[{unspaced}]|[^\\s{unspaced}]+")


def shingle_set(text: str, ngram: int) -> set[str]:
    """The shingles of one normalised text, per document in Python: the reference for the columnar path.

    Used to label exact Jaccard similarity and to feed datasketch in tests and benchmarks.
    """
    tokens = _TOKEN.findall(text)
    if len(tokens) <= ngram:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)}


_TOKEN = _token_pattern()


def shingle_sets(hashes: np.ndarray, starts: np.ndarray) -> pl.Series:
    """Each text's set of shingles, its distinct 32-bit hashes (hash >> 32) in ascending order, as the bytes
    of a uint32 array (for exact verification). Bytes, not a list column: Parquet writes and reads a
    binary value as one piece, a list value by one repetition level per element (scan files: 7×
    faster to write). `_shingles.c` sorts each text's values alone, in a buffer its size: no batch-wide
    temporaries (text ids, keys, masks) as the column-wise sort needed."""
    starts = np.ascontiguousarray(starts, np.int64)
    values = np.empty(int(starts[-1] - starts[0]), "<u4")  # at most one value per hash; the unused tail is never touched
    offsets = np.empty(starts.size, np.int64)
    _shingles.shingle_sets(np.ascontiguousarray(hashes, _U64), starts, values, offsets)
    used = pa.py_buffer(values[: offsets[-1] // 4])
    return arrow_buffers.series("", pa.Array.from_buffers(pa.large_binary(), starts.size - 1, [None, pa.py_buffer(offsets), used]))


def set_values(sets: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of `shingle_sets`' values, all rows' one after the other, and each row's count (null: 0)."""
    array = sets.cast(pl.Binary).to_arrow()  # (large_binary: one array, whatever the chunks)
    offsets = arrow_buffers.offsets(array)
    values = arrow_buffers.data(array)[offsets[0] : offsets[-1]].view("<u4")
    return values, np.diff(offsets) // 4
