"""The compiled shingle kernel (dedup/_shingles.c) against the definitions of shingles.py written plainly in Python,
its shingle sets against the column-wise code they replaced, and its text folding against Polars' lowercase and
punctuation steps of normalize_expr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanmix.dedup import _shingles
from cleanmix.dedup.minhash_dedup import MinhashDedup
from cleanmix.dedup.shingles import UNSPACED, folded_buffers, normalize_expr, permutations, shingle_hashes, shingle_sets, signatures
from cleanmix.filters import token_tables
from cleanmix.pipelines import arrow_buffers
from conftest import shared_text_columns

MASK = 2**64 - 1
BASE = 0x100000001B3
SPACES = "\t\n\x0b\x0c\r "


def splitmix(x: int) -> int:
    x ^= x >> 30
    x = x * 0xBF58476D1CE4E5B9 & MASK
    x ^= x >> 27
    x = x * 0x94D049BB133111EB & MASK
    return x ^ (x >> 31)


def tokens(text: str) -> list[bytes]:
    """Runs of characters other than the six ASCII spaces; a character of an unspaced script is a token alone."""
    found: list[str] = []
    run = ""
    for char in text + " ":
        alone = any(lo <= ord(char) <= hi for lo, hi in UNSPACED)
        if char in SPACES or alone:
            found += [run] if run else []
            run = ""
        if alone:
            found.append(char)
        elif char not in SPACES:
            run += char
    return [token.encode() for token in found]


def token_hash(token: bytes) -> int:
    return splitmix((sum((byte + 1) * BASE**i for i, byte in enumerate(token)) + len(token)) & MASK)


def shingles(text: str | None, ngram: int) -> list[int]:
    """Each run of `ngram` tokens chained (h ← splitmix(t_0), then splitmix(h·B + t_j)); a shorter text: all its tokens, once."""
    hashed = [token_hash(token) for token in tokens(text or "")]
    found = []
    for start in range(max(len(hashed) - ngram + 1, 1) if hashed else 0):
        window = hashed[start : start + ngram]
        h = splitmix(window[0])
        for t in window[1:]:
            h = splitmix((h * BASE + t) & MASK)
        found.append(h)
    return found


def signature(hashes: list[int], a: np.ndarray, b: np.ndarray) -> list[int]:
    return [min((((int(ai) * (h >> 32) + int(bi)) & MASK) >> 32 for h in hashes), default=2**32 - 1) for ai, bi in zip(a, b)]


# Spaces of every kind, control characters, ASCII runs shorter and longer than a word of 8, 2-, 3- and 4-byte
# characters, and the edges of the unspaced ranges (in and out).
CHARS = st.sampled_from(
    [*SPACES, "\x00", "\x01", "\x1f", "\x7f", "a", "b", "xyz", "abcdefgh", "é", "ß", "\u00a0", "\u3000", "中", "文", "ไ", "😀", "𠀀",
     "\u0dff", "\u0e00", "\u0eff", "\u0f00", "\u3004", "\u3005", "\u9fff", "\ua000", "\uf900", "\ufaff", "\ufb00", "\U0001ffff",
     "\U00020000", "\U0003ffff", "\U00040000"]
)
TEXTS = st.lists(st.one_of(st.none(), st.lists(CHARS, max_size=40).map("".join)), max_size=10)


@settings(max_examples=400, deadline=None)
@given(TEXTS, st.integers(1, 6), st.integers(0, 2))
def test_kernel_is_the_plain_definition(texts: list[str | None], ngram: int, offset: int) -> None:
    """Hashes and starts as the definition gives them, also on a slice (a non-zero Arrow offset)."""
    series = pl.Series(["lead in", "x", *texts], dtype=pl.String).slice(offset)
    expected = [shingles(text, ngram) for text in series.to_list()]
    hashes, starts = shingle_hashes(series, ngram)
    assert hashes.dtype == np.uint64 and starts.dtype == np.int64
    assert starts.tolist() == np.cumsum([0] + [len(e) for e in expected]).tolist()
    assert hashes.tolist() == [h for e in expected for h in e]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, MASK), max_size=6), max_size=6), st.sampled_from([8, 13, 64]), st.integers(0, 99))
def test_signatures_are_the_plain_minima(docs: list[list[int]], num_perm: int, seed: int) -> None:
    hashes = np.array([h for doc in docs for h in doc], np.uint64)
    starts = np.cumsum([0] + [len(doc) for doc in docs])
    a, b = permutations(num_perm, seed)
    found = signatures(hashes, starts, num_perm, seed)
    assert found.dtype == np.uint32 and found.shape == (len(docs), num_perm)
    assert found.tolist() == [signature(doc, a, b) for doc in docs]


def test_known_texts_and_a_long_one() -> None:
    texts = ["", None, "   ", "one", "two words", "中文 mixed中文text 😀𠀀", "a b c d e f g"]
    unit = "alpha 中 beta 😀 𠀀x gamma "  # 7 tokens: 𠀀 (CJK extension B) is one alone, 😀 is not
    long = unit * 100_000  # > 2 MB, one text
    hashes, starts = shingle_hashes(pl.Series([*texts, long]), 5)
    expected = [shingles(text, 5) for text in texts]
    assert np.diff(starts).tolist() == [0, 0, 0, 1, 1, len(expected[5]), 3, 7 * 100_000 - 4]
    assert hashes[: starts[-2]].tolist() == [h for e in expected for h in e]
    run = hashes[starts[-2] : starts[-2] + 7 * 99_999].reshape(-1, 7)  # the shingles repeat with the unit
    assert run[0].tolist() == shingles(unit * 2, 5)[:7] and (run == run[0]).all()


def column_shingle_sets(hashes: np.ndarray, starts: np.ndarray) -> pl.Series:
    """The column-wise shingle sets the kernel replaced: (text << 32 | hash >> 32) sorted over the batch, repeats dropped."""
    u64 = np.uint64
    n_docs = len(starts) - 1
    doc = np.repeat(np.arange(n_docs, dtype=u64), np.diff(starts))
    keyed = pl.Series((doc << u64(32)) | (hashes >> u64(32))).sort().to_numpy()
    keyed = keyed[np.r_[True, keyed[1:] != keyed[:-1]][: keyed.size]]
    values = (keyed & u64(0xFFFFFFFF)).astype("<u4")
    counts = np.bincount((keyed >> u64(32)).astype(np.int64), minlength=n_docs)
    offsets = np.r_[0, np.cumsum(counts) * 4].astype(np.int64)
    return pl.Series(pa.Array.from_buffers(pa.large_binary(), n_docs, [None, pa.py_buffer(offsets), pa.py_buffer(values)]))


def assert_same_sets(hashes: np.ndarray, starts: np.ndarray) -> None:
    """The kernel's sets equal the column-wise ones: type, every value's bytes, and the Arrow offsets and data."""
    found, expected = shingle_sets(hashes, starts), column_shingle_sets(hashes, starts)
    assert found.dtype == expected.dtype == pl.Binary and found.null_count() == expected.null_count() == 0
    assert found.to_list() == expected.to_list()
    found_array, expected_array = found.to_arrow(), expected.to_arrow()
    assert arrow_buffers.offsets(found_array).tolist() == arrow_buffers.offsets(expected_array).tolist()
    assert arrow_buffers.data(found_array).tobytes() == arrow_buffers.data(expected_array).tobytes()


@st.composite
def hash_batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Texts' hashes: empty texts, repeats, few distinct high halves under different low ones (equal keys, and bytes
    every key shares: the radix passes skipped), runs on both sides of the short-run sort, and sometimes one huge text."""
    highs = draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
    docs = draw(st.lists(st.lists(st.tuples(st.sampled_from(highs), st.integers(0, 2**32 - 1)), max_size=80), max_size=8))
    values = [[high << 32 | low for high, low in doc] for doc in docs]
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        size, spread = draw(st.integers(1, 300_000)), draw(st.sampled_from([2**8, 2**16, 2**24, 2**32]))
        huge = rng.integers(0, spread, size, dtype=np.uint64) << np.uint64(32) | rng.integers(0, 2**32, size, dtype=np.uint64)
        values.insert(draw(st.integers(0, len(values))), huge.tolist())
    hashes = np.array([h for doc in values for h in doc], np.uint64)
    return hashes, np.cumsum([0] + [len(doc) for doc in values]).astype(np.int64)


@settings(max_examples=300, deadline=None)
@given(hash_batches())
def test_sets_are_the_column_wise_ones(batch: tuple[np.ndarray, np.ndarray]) -> None:
    assert_same_sets(*batch)


def test_sets_of_the_real_texts_are_the_column_wise_ones(shared_data: Path) -> None:
    """Every text column of ../shared/data in batches, shingled as the MinHash scan does, each after a null and an empty text."""
    stage, texts = MinhashDedup(), 0
    for column in shared_text_columns(shared_data):
        for start in range(0, len(column), 4096):
            batch = pl.concat([pl.Series([None, ""], dtype=pl.String), column.slice(start, 4096)])
            assert_same_sets(*stage.shingles(batch))
            texts += len(batch) - 2
    assert texts > 500_000


def test_kernel_rejects_what_does_not_fit() -> None:
    data, offsets = np.frombuffer(b"ab", np.uint8), np.array([0, 2], np.int64)
    ranges = np.zeros((0, 2), np.int64)
    with pytest.raises(ValueError, match="ngram"):
        _shingles.shingle_hashes(data, offsets, 0, ranges, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="do not match"):
        _shingles.shingle_hashes(data, np.array([0, 3], np.int64), 2, ranges, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="do not match"):
        _shingles.signatures(np.zeros(1, np.uint64), np.array([0, 2], np.int64), *permutations(8, 0), np.zeros((1, 8), np.uint32))
    starts = np.array([0, 2], np.int64)
    with pytest.raises(ValueError, match="do not match"):  # values too short for the hashes
        _shingles.shingle_sets(np.zeros(2, np.uint64), starts, np.zeros(1, np.uint32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="do not match"):  # starts past the hashes
        _shingles.shingle_sets(np.zeros(1, np.uint64), starts, np.zeros(2, np.uint32), np.zeros(2, np.int64))


def polars_folded(texts: pl.Series) -> list[str]:
    """MinHash's normalisation as Polars does it (normalize_expr without the whitespace step)."""
    return pl.select(normalize_expr(pl.lit(texts, pl.String), whitespace=False)).to_series().to_list()


def assert_folded_as_polars(texts: pl.Series) -> int:
    data, offsets = folded_buffers(texts)
    folded = [bytes(data[offsets[i] : offsets[i + 1]]).decode() for i in range(len(texts))]
    for text, got, expected in zip(texts.to_list(), folded, polars_folded(texts)):
        assert got == expected, (text[:300] if text else text, got[:300], expected[:300])
    return len(texts)


def test_fold_tables_are_the_installed_polars() -> None:
    """A Polars upgrade with another Unicode version (or casing) fails here: rerun `python -m cleanmix.filters.token_tables`."""
    assert token_tables.FOLD_HEADER.read_text() == token_tables.fold_header()


SIGMA_PIECES = ["Σ", "Α", "α", "a", "Z", "1", " ", "'", ".", "\u0301", "\u00ad", "\u0345", "·", "-", "İ", "K", "Ⓐ", "ǅ", "ß", "ﬁ",
                "ＡＢ", "!!", "…", "$", "中", "\U0001d400", "\u2126", "\u1e9e", "\U00010400", "\U0001e900", "\u023a"]
"""Σ among cased, case-ignorable and other characters (Final_Sigma's contexts); characters whose lowercase is two
(İ), or takes other bytes (K, Ⱥ) or four (Deseret, Adlam), or is a symbol (Ⓐ); punctuation and symbols to run together."""


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(SIGMA_PIECES), max_size=14).map("".join)), min_size=1, max_size=10),
       st.integers(0, 40))
def test_fold_is_the_polars_code(texts: list[str | None], ascii_prefix: int) -> None:
    """Also behind a run of ASCII (Polars lowercases a leading ASCII run apart, in 16-byte chunks)."""
    assert_folded_as_polars(pl.Series([t if t is None else "x" * ascii_prefix + t for t in texts], dtype=pl.String))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.characters(codec="utf-8"), max_size=30).map("".join))
def test_fold_is_the_polars_code_on_any_characters(text: str) -> None:
    assert_folded_as_polars(pl.Series([text, text.upper(), "Σ" + text + "Σ", "A" + text + "Σ" + text]))


def test_fold_of_every_shared_text(shared_data: Path) -> None:
    assert sum(assert_folded_as_polars(column) for column in shared_text_columns(shared_data)) >= 150_000
