"""Benchmark text as an n-gram index, and the items of it a batch of documents holds.

Why hashes: an n-gram is a 64-bit hash of its tokens, so the index of a benchmark is one sorted
`uint64` array (GSM8K's 1,319 items are ~180,000 n-grams, 1.4 MB) and a batch is checked with one
`np.searchsorted`: no Python runs per document or per n-gram. The n-gram hash is a polynomial over
token hashes taken from prefix sums, so a window costs the same few array operations whatever n.

Why this normalisation: a benchmark leaks reformatted as often as verbatim. Text is NFKC'd
(full-width ＡＢＣ１２３，→ ABC123,), lowercased, and every punctuation mark or symbol is a space;
tokens are then what `dedup.shingles` hashes: runs of non-space characters, and each Han, kana
(or other unspaced-script) character on its own. So spacing, line breaks, punctuation,
full-width/half-width forms and case never change a token, and Chinese needs no segmenter.

Why two n: an item whose tokens are mostly CJK characters is indexed with `cjk_ngram`-character
windows, any other with `ngram`-word windows (a Chinese word is ~1.5 characters, so a window of
words is the wrong length for Chinese). A document is checked with both sizes, so mixed text is
handled in one pass. An item shorter than its window gets no n-gram and is counted as too short,
never matched.

Why CJK windows skip the one-character tokens of other scripts (A, 1, x; CJK characters and
longer words such as 2018 or BERT stay): those are what a leak of a Chinese item rewrites, its
choice labels (A. / (A) / A、/ ①) and numbering. So a question joined with its choices
(`fields: [[question, A, B, C, D]]`) yields windows across the field boundaries that a page
listing the choices under any labels still holds: a question of five characters, too short
alone, is found with its choices. (Skipping every non-CJK token instead made BERT and RoBERTa,
or 2017 and 2018, the same question.)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from cleanmix.dedup.shingles import byte_chunks, hash_powers, range_hashes, splitmix, text_buffers, token_spans, unspaced_bytes

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".ndjson": "json", ".csv": "csv"}
"""Benchmark files by extension: Parquet, JSON Lines, CSV."""
_U64 = np.uint64


def normalized(texts: pl.Series) -> pl.Series:
    """The text the tokens are read from: NFKC, lowercase, punctuation, symbols and any whitespace as
    one space (one regex pass: the tokens need no tidier spacing)."""
    text = pl.col("text").str.normalize("NFKC").str.to_lowercase().str.replace_all(r"[\p{P}\p{S}\s]+", " ")
    return texts.to_frame("text").select(text).to_series()


def benchmark_files(path: Path) -> list[Path]:
    """The benchmark's files: the file itself, or every Parquet/JSONL/CSV file under a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)


def _scan(path: Path) -> pl.LazyFrame:
    kind = FORMATS.get(path.suffix.lower())
    if kind == "parquet":
        return pl.scan_parquet(path)
    if kind == "json":
        return pl.scan_ndjson(path, infer_schema_length=None)
    if kind == "csv":
        return pl.scan_csv(path, infer_schema_length=0)  # every column as text: ids stay as written
    raise ValueError(f"{path} is not a Parquet, JSON Lines or CSV file (by its extension: {', '.join(FORMATS)})")


FieldSpec = str | tuple[str, ...]
"""A field indexed on its own, or several fields joined (by line breaks) into one text."""


def field_names(fields: Sequence[FieldSpec]) -> list[str]:
    """Every field named, once, in order."""
    return list(dict.fromkeys(name for f in fields for name in ((f,) if isinstance(f, str) else f)))


def check_benchmark(path: Path, fields: Sequence[FieldSpec], id_field: str | None) -> None:
    """Raise ValueError saying what is wrong if the benchmark cannot be read as configured."""
    if not path.exists():
        raise ValueError(f"benchmark path '{path}' does not exist (relative paths are read from {Path.cwd()})")
    files = benchmark_files(path)
    if not files:
        raise ValueError(f"benchmark folder '{path}' holds no Parquet, JSON Lines or CSV file ({', '.join(FORMATS)})")
    wanted = [*field_names(fields), *([id_field] if id_field else [])]
    for file in files:
        try:
            columns = _scan(file).collect_schema().names()
        except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
            raise ValueError(f"benchmark file '{file}' cannot be read: {' '.join(str(error).split())[:300]}") from None
        if missing := [f for f in wanted if f not in columns]:
            raise ValueError(
                f"benchmark file '{file}' has no field {', '.join(repr(m) for m in missing)} "
                f"(its fields: {', '.join(columns)})"
            )


def read_items(path: Path, fields: Sequence[FieldSpec], id_field: str | None) -> pl.DataFrame:
    """One row per benchmark item: `id` (the id field, else `id` if the file has one, else
    `<file>:<row>`), then each field as text (`_field0`, ...; a list field's values, or the fields
    of a joined entry, joined by newlines; a missing value is left out of a join)."""
    frames = []
    for file in benchmark_files(path):
        lazy = _scan(file)
        names = lazy.collect_schema()
        key = id_field or ("id" if "id" in names else None)
        ident = pl.col(key).cast(pl.String) if key else pl.format("{}:{}", pl.lit(file.name), pl.int_range(pl.len()))
        texts = [(_as_text(pl.col(f), names[f]) if isinstance(f, str)
                  else pl.concat_str([_as_text(pl.col(g), names[g]) for g in f], separator="\n", ignore_nulls=True)).alias(f"_field{i}")
                 for i, f in enumerate(fields)]
        frames.append(lazy.select(ident.alias("id"), *texts).collect())
    return pl.concat(frames)


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return column.cast(pl.List(pl.String)).list.join("\n") if isinstance(dtype, pl.List) else column.cast(pl.String)


@dataclass
class Tokens:
    """Every token of some normalised texts, in order: its hash, the text it is in, whether it is an
    unspaced-script character, and its byte range in `data` (the texts' UTF-8, concatenated)."""

    hashes: np.ndarray
    doc: np.ndarray
    unspaced: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    first: np.ndarray
    """Text d owns tokens first[d]:first[d+1]."""
    data: np.ndarray


def tokenize(texts: pl.Series) -> Tokens:
    """The tokens of already normalised texts, hashed in chunks of ~2 MB (bounded prefix arrays)."""
    data, offsets = text_buffers(texts)
    parts: list[tuple[np.ndarray, ...]] = []
    for first, last in byte_chunks(offsets):
        lo, hi = int(offsets[first]), int(offsets[last])
        chunk, doc_offsets = data[lo:hi], offsets[first : last + 1] - lo
        starts, ends = token_spans(chunk, doc_offsets)
        doc = np.searchsorted(doc_offsets, starts, side="right") - 1 + first
        parts.append((range_hashes(chunk, starts, ends), doc, unspaced_bytes(chunk)[starts], starts + lo, ends + lo))
    hashes, doc, unspaced, starts, ends = (np.concatenate(p) for p in zip(*parts)) if parts else (np.zeros(0, _U64),) * 5
    counts = np.bincount(doc.astype(np.int64), minlength=len(offsets) - 1)
    return Tokens(hashes, doc.astype(np.int64), unspaced.astype(bool), starts.astype(np.int64), ends.astype(np.int64),
                  np.r_[0, np.cumsum(counts)], data)


def windows(tokens: Tokens, n: int, docs: np.ndarray | None = None, cjk: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hash of every window of `n` consecutive tokens of a text, and the window's first and
    past-the-last token. `cjk`: windows of `n` tokens with the one-character tokens of other
    scripts skipped (choice labels, single digits). `docs`: only the windows of these texts (a boolean mask).

    Σ_j h[p+j]·B^j (mod 2^64) from one prefix array, then mixed with n and the kind, so windows of
    different sizes or kinds never share a hash."""
    if cjk:
        lead = tokens.data[tokens.starts]
        one_char = tokens.ends - tokens.starts == np.select([lead < 0xC0, lead < 0xE0, lead < 0xF0], [1, 2, 3], 4)
        keep = np.flatnonzero(tokens.unspaced | ~one_char)
        counts = np.bincount(tokens.doc[keep], minlength=tokens.first.size - 1)
        grams, begin, end = _windows(tokens.hashes[keep], tokens.doc[keep], np.r_[0, np.cumsum(counts)], n, docs, 1 << 32)
        return grams, keep[begin], keep[end - 1] + 1
    return _windows(tokens.hashes, tokens.doc, tokens.first, n, docs, 0)


def _windows(hashes: np.ndarray, doc: np.ndarray, first: np.ndarray, n: int, docs: np.ndarray | None,
             kind: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = hashes.size
    last = first[1:][doc] - n  # the last start whose window stays in its text
    begin = np.flatnonzero(np.arange(size) <= last) if size else np.zeros(0, np.int64)
    if docs is not None:
        begin = begin[docs[doc[begin]]]
    powers, inverse = hash_powers(size + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(size + 1, _U64)
        np.cumsum(hashes * powers[:size], out=prefix[1:])
        sums = (prefix[begin + n] - prefix[begin]) * inverse[begin]
        return splitmix(sums ^ splitmix(np.full(1, n | kind, _U64))), begin, begin + n


@dataclass
class Index:
    """The sorted n-gram hashes of every indexed text (one per item and field), each with its text."""

    hashes: np.ndarray
    owner: np.ndarray
    """Per hash, the text it comes from (a hash shared by several texts is there once for each)."""
    text_item: np.ndarray
    """Per text, its item."""
    text_windows: np.ndarray
    """Per text, its distinct n-grams: what a document's overlap with the text is a share of."""
    ngram: int | None
    cjk_ngram: int | None
    """The window sizes of the texts indexed (None: no text of that kind)."""
    item_benchmark: np.ndarray
    """Per item, its benchmark's position in `names`."""
    names: list[str]
    item_ids: list[str]
    too_short: dict[str, int]
    """Per benchmark, the items without an n-gram in the index (every field shorter than its window,
    or only common n-grams): never matched."""
    bitmap: np.ndarray
    """One bit per value of a hash's top `bits` bits, set where some indexed hash has it: most
    windows of a document are in no benchmark, and one look-up here rules them out (~1% of the
    bits are set) before any binary search."""
    bits: int

    def sizes(self, tokens: Tokens) -> list[tuple[int, bool, np.ndarray | None]]:
        """The windows to check texts with: size, whether they are CJK windows, and the texts they
        are needed for (None: all): CJK windows only where a text holds a CJK character."""
        has_cjk = np.bincount(tokens.doc[tokens.unspaced], minlength=tokens.first.size - 1) > 0
        return [*([(self.ngram, False, None)] if self.ngram else []), *([(self.cjk_ngram, True, has_cjk)] if self.cjk_ngram else [])]

    def lookup(self, tokens: Tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (document, index entry) match of the texts' windows: document, entry, and the
        window's first and past-the-last token. One binary search per window; a hash held by k
        indexed texts yields k matches."""
        found: list[tuple[np.ndarray, ...]] = []
        for n, cjk, needed in self.sizes(tokens):
            grams, begin, end = windows(tokens, n, needed, cjk)
            top = grams >> _U64(64 - self.bits)
            maybe = np.flatnonzero(self.bitmap[top >> _U64(3)] >> (top & _U64(7)).astype(np.uint8) & 1)
            grams, begin, end = grams[maybe], begin[maybe], end[maybe]
            lo = np.searchsorted(self.hashes, grams)
            hit = np.flatnonzero(self.hashes[np.minimum(lo, self.hashes.size - 1)] == grams) if self.hashes.size else lo[:0]
            count = np.searchsorted(self.hashes, grams[hit], side="right") - lo[hit]
            entry = np.repeat(lo[hit] - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            begin, end = np.repeat(begin[hit], count), np.repeat(end[hit], count)
            found.append((tokens.doc[begin], entry, begin, end))
        if not found:
            return (np.zeros(0, np.int64),) * 4
        return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def build_index(items: dict[str, pl.DataFrame], ngram: int, cjk_ngram: int, common: int | None) -> Index:
    """The index of every item's fields (each column but `id` a text): `cjk_ngram`-character
    windows where at least half the text's tokens are CJK characters, else `ngram`-token ones. An
    n-gram of `common` items or more is template wording ("下列说法正确的是"), not evidence: left
    out (items, not texts: a question indexed alone and joined with its choices is one item)."""
    names = list(items)
    ids = [i for df in items.values() for i in df.get_column("id").to_list()]
    heights = [df.height for df in items.values()]
    item_benchmark = np.repeat(np.arange(len(names)), heights)
    texts = pl.concat(
        [df.drop("id").with_row_index("_item", int(offset)).unpivot(index="_item", value_name="text").select("_item", "text")
         for df, offset in zip(items.values(), np.cumsum([0, *heights]))]
        or [pl.DataFrame(schema={"_item": pl.UInt32, "text": pl.String})]
    )
    text_item = texts.get_column("_item").to_numpy().astype(np.int64)
    tokens = tokenize(normalized(texts.get_column("text")))
    counts = np.diff(tokens.first)
    cjk = np.bincount(tokens.doc[tokens.unspaced], minlength=counts.size) * 2 >= np.maximum(counts, 1)
    parts = [windows(tokens, ngram, ~cjk), windows(tokens, cjk_ngram, cjk, cjk=True)]
    hashes = np.concatenate([grams for grams, _, _ in parts])
    owner = tokens.doc[np.concatenate([begin for _, begin, _ in parts])]
    order = np.lexsort((owner, text_item[owner], hashes))  # by hash, then item: an item's texts side by side
    hashes, owner = hashes[order], owner[order]
    distinct = np.r_[True, (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])] if hashes.size else np.zeros(0, bool)
    hashes, owner = hashes[distinct], owner[distinct]
    if common is not None and hashes.size:
        new_hash = np.r_[True, hashes[1:] != hashes[:-1]]
        item = text_item[owner]
        new_item = new_hash | np.r_[True, item[1:] != item[:-1]]
        group = np.cumsum(new_hash) - 1
        rare = np.bincount(group, weights=new_item)[group] < common
        hashes, owner = hashes[rare], owner[rare]
    indexed = np.bincount(text_item[owner], minlength=len(ids)) > 0
    bits = int(np.clip(np.ceil(np.log2(max(hashes.size, 1) * 64)), 16, 30))
    top = hashes >> _U64(64 - bits)
    bitmap = np.zeros(1 << (bits - 3), np.uint8)
    np.bitwise_or.at(bitmap, top >> _U64(3), np.left_shift(1, top & _U64(7)).astype(np.uint8))
    return Index(
        hashes, owner, text_item, np.bincount(owner, minlength=counts.size),
        ngram if parts[0][0].size else None, cjk_ngram if parts[1][0].size else None,
        item_benchmark, names, ids, {name: int((~indexed & (item_benchmark == i)).sum()) for i, name in enumerate(names)},
        bitmap, bits,
    )


@dataclass
class Hits:
    """Per document of a batch: the item whose text it overlaps most (-1: none), and the share of
    that text's n-grams it holds."""

    item: np.ndarray
    overlap: np.ndarray


def find(index: Index, texts: pl.Series, min_overlap: float, min_ngrams: int) -> Hits:
    """The benchmark item each text holds: of the indexed texts (an item's fields) of which it holds
    at least `min_ngrams` n-grams and a share of at least `min_overlap`, the one with the largest share."""
    hits = Hits(np.full(len(texts), -1, np.int64), np.zeros(len(texts)))
    norm = normalized(texts)
    offsets = np.r_[0, np.cumsum(norm.str.len_bytes().fill_null(0).to_numpy())]
    docs, entries = [], []
    for first, last in byte_chunks(offsets):  # ~2 MB of text at a time: bounded token arrays
        doc, entry, _, _ = index.lookup(tokenize(norm.slice(first, last - first)))
        docs.append(doc + first)
        entries.append(entry)
    doc = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    entry = np.concatenate(entries) if entries else np.zeros(0, np.int64)
    if not doc.size:
        return hits
    distinct = np.unique(doc << 32 | entry)  # an n-gram the document repeats counts once
    pairs, shared = np.unique(distinct >> 32 << 32 | index.owner[distinct & 0xFFFFFFFF], return_counts=True)
    pair_doc, pair_text = pairs >> 32, pairs & 0xFFFFFFFF
    overlap = shared / index.text_windows[pair_text]
    order = np.flatnonzero((overlap >= min_overlap) & (shared >= min_ngrams))
    order = order[np.lexsort((pair_text[order], -shared[order], -overlap[order], pair_doc[order]))]
    best = order[np.r_[True, pair_doc[order][1:] != pair_doc[order][:-1]]] if order.size else order
    hits.item[pair_doc[best]] = index.text_item[pair_text[best]]
    hits.overlap[pair_doc[best]] = overlap[best]
    return hits


def char_map_normalized(text: str) -> tuple[str, list[int]]:
    """`normalized` of one text built character by character, with the original position of every
    output character: how a matched window is traced back to the original text."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).lower():
            out.append(" " if c.isspace() or unicodedata.category(c)[0] in "PS" else c)
            origin.append(i)
    return "".join(out), origin


def matched_spans(index: Index, text: str, item: int, gap: int) -> list[tuple[int, int]]:
    """Character ranges of `text` covered by windows of `item`'s texts, runs less than `gap` tokens apart joined."""
    norm, origin = char_map_normalized(text)
    tokens = tokenize(pl.Series([norm], dtype=pl.String))
    _, entry, begin, end = index.lookup(tokens)
    mine = index.text_item[index.owner[entry]] == item
    covered = np.zeros(tokens.hashes.size + 1, np.int64)
    np.add.at(covered, begin[mine], 1)
    np.add.at(covered, end[mine], -1)
    inside = np.cumsum(covered[:-1]) > 0
    if not inside.any():
        return []
    runs = np.flatnonzero(np.diff(np.r_[0, inside.astype(np.int8), 0]))
    first, last = runs[0::2], runs[1::2] - 1
    new_run = np.r_[True, first[1:] - last[:-1] > gap]
    first, last = first[new_run], last[np.r_[new_run[1:], True]]
    byte_to_char = np.cumsum(np.r_[0, (tokens.data & 0xC0) != 0x80])  # characters before each byte
    spans = [(origin[byte_to_char[tokens.starts[a]]], origin[byte_to_char[tokens.ends[b]] - 1] + 1) for a, b in zip(first, last)]
    return [_with_marks(text, start, end) for start, end in spans]


def _with_marks(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened over the punctuation touching it (`“…？”`), which belongs to the item too."""
    while start > 0 and unicodedata.category(text[start - 1])[0] in "PS":
        start -= 1
    while end < len(text) and unicodedata.category(text[end])[0] in "PS":
        end += 1
    return start, end
