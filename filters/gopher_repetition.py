"""Gopher's repetition rules (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

Spam and boilerplate repeat; prose does not. The n-grams are over script-aware tokens (a Han
character is a token), so the rules see repetition in Chinese too. Fractions are of the
document's characters, as published. A character n-gram is shorter than a word n-gram, so
documents that are mostly CJK have their own n-gram limits: the published ones, raised to the
99.5th percentile of edited Chinese news (People's Daily 1998, 12-paragraph documents). A whole batch
is measured at once: tokens are hashed by Polars and n-grams are rolling hashes in NumPy, so no
per-document Python runs.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import CJK_CHARS, INVISIBLE, TOKEN_LISTS, cjk_limit, cjk_share
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "gopher_repetition_"
MIX = np.uint64(0x9E3779B97F4A7C15)
MIX_DOC = np.uint64(0xC2B2AE3D27D4EB4F)
CHUNK_TOKENS = 200_000
"""Documents are measured in runs of about this many tokens: hash tables that fit in the CPU cache
make that twice as fast as one run over a whole batch."""
POSITIONS = 1 << 40
"""More token positions than a batch holds."""
ZERO_WIDTH = r"^[\s\p{Cf}]*\p{Cf}[\s\p{Cf}]*$"
"""A line of zero-width characters (maybe among spaces). Lines of spaces alone stay lines, as in
the reference code, which splits on line breaks only."""


def _duplicates(df: pl.DataFrame, parts: pl.Expr, name: str, blank: str) -> pl.DataFrame:
    """Per document: the share of parts that repeat an earlier part, and of characters in them.
    Parts matching `blank` are not parts: pages put zero-width spaces between paragraphs, and the
    reference code, which does not see them as space, counts each as a repeat."""
    exploded = df.select(parts.alias("_part")).with_row_index("_doc").explode("_part")
    shown = ~pl.col("_part").str.contains(blank).fill_null(True)
    repeat = shown & ~pl.struct("_doc", "_part").is_first_distinct()
    return exploded.group_by("_doc", maintain_order=True).agg(
        (repeat.sum() / pl.max_horizontal(shown.sum(), 1)).alias(f"{P}dup_{name}_frac"),
        pl.when(repeat).then(pl.col("_part").str.len_chars()).otherwise(0).sum().alias(f"_dup_{name}_chars"),
    )


def _top_chars(key: np.ndarray, at: np.ndarray, doc: np.ndarray, cum: np.ndarray, n: int, firsts: np.ndarray) -> np.ndarray:
    """Per document: characters of its most frequent n-gram (joined with spaces) times its count,
    the earliest among equally frequent ones. `key`/`at` are the n-grams that occur twice; a
    document with none gets its first n-gram (`firsts`: its position, -1 without one)."""
    top = (
        pl.DataFrame({"key": key, "at": at, "doc": doc[at]})
        .group_by("key")
        .agg(pl.len().alias("count"), pl.col("at").min(), pl.col("doc").first())
        .group_by("doc")  # the most frequent, then the earliest: one max over count·2^40 − position (no sort)
        .agg((pl.col("count").cast(pl.Int64) * POSITIONS - pl.col("at")).max().alias("score"))
    )
    score, docs_with = top["score"].to_numpy(), top["doc"].to_numpy()
    count = np.where(firsts >= 0, 1, 0)
    count[docs_with] = (score + POSITIONS - 1) // POSITIONS
    first = firsts.copy()
    first[docs_with] = count[docs_with] * POSITIONS - score
    first = np.maximum(first, 0)
    end = np.minimum(first + n, len(cum) - 1)  # (documents without an n-gram have count 0)
    return (cum[end] - cum[first] + n - 1) * count


def _repeats(key: np.ndarray, at: np.ndarray, n: int) -> list[int]:
    """Where Gopher's scan finds an n-gram it has seen (then it jumps n tokens ahead, and the
    n-grams it jumps over count as unseen). `key`/`at` are the n-grams that occur twice: the
    others can never repeat, so only these positions are visited."""
    seen: set[int] = set()
    picked: list[int] = []
    next_free = -1
    for start, gram in zip(at.tolist(), key.tolist()):
        if start < next_free:
            continue
        if gram in seen:
            picked.append(start)
            next_free = start + n
        else:
            seen.add(gram)
    return picked


def _ngram_fractions(toks: pl.Series, top_ns: list[int], dup_ns: list[int]) -> dict[str, np.ndarray]:
    """`_chunk_fractions` over runs of whole documents of about CHUNK_TOKENS tokens each."""
    counts = toks.list.len().fill_null(0).to_numpy()
    run = (np.cumsum(counts) - counts) // CHUNK_TOKENS
    cuts = [0, *(np.flatnonzero(np.diff(run)) + 1).tolist(), len(toks)]
    parts = [_chunk_fractions(toks.slice(a, b - a), top_ns, dup_ns) for a, b in zip(cuts, cuts[1:])]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}  # (cuts make at least one part)


def _chunk_fractions(toks: pl.Series, top_ns: list[int], dup_ns: list[int]) -> dict[str, np.ndarray]:
    """Characters of each document's most frequent n-gram (times its count, joined with spaces)
    and characters covered by n-grams seen earlier in the document (scanning left to right and
    jumping past each repeat, as Gopher's reference code does).

    An n-gram can occur twice only where its (n-1)-gram prefix does, so each n looks only at the
    positions where the (n-1)-gram repeats: after n=2, few positions are left in normal text.
    """
    docs = len(toks)
    counts = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = toks.explode().drop_nulls()  # (an empty or null list explodes to one null)
    doc = np.repeat(np.arange(docs), counts)
    starts = np.cumsum(counts) - counts
    hashes = flat.hash(seed=7).to_numpy()
    cum = np.concatenate([[0], np.cumsum(flat.str.len_chars().to_numpy().astype(np.int64))])
    size = len(hashes)
    out: dict[str, np.ndarray] = {}
    candidates = np.flatnonzero(doc[1:] == doc[:-1])  # the 2-grams within one document, extended at every position by slices
    gram = hashes.copy()
    gram[:-1] = hashes[:-1] * MIX + hashes[1:]
    for n in range(2, max([*top_ns, *dup_ns], default=1) + 1):
        at = candidates
        if n > 2:
            at = candidates[candidates < size - n + 1]
            at = at[doc[at] == doc[at + n - 1]]  # n-grams within one document
            gram[at] = gram[at] * MIX + hashes[at + n - 1]  # only candidates are extended: the others are done
        key = gram[at] + doc[at].astype(np.uint64) * MIX_DOC
        twice = pl.Series(key).is_duplicated().to_numpy()
        candidates, key = at[twice], key[twice]
        if n in top_ns:
            firsts = np.where(counts >= n, starts, -1)
            out[f"top_{n}"] = _top_chars(key, candidates, doc, cum, n, firsts)
        if n in dup_ns:
            picked = np.asarray(_repeats(key, candidates, n), dtype=np.int64)
            out[f"dup_{n}"] = np.bincount(doc[picked], weights=cum[picked + n] - cum[picked], minlength=docs)
    return out


TopN = Annotated[int, Field(ge=2, le=4)]
DupN = Annotated[int, Field(ge=5, le=10)]
"""n-gram sizes as plain ints, so they survive the round trip through the resolved pipeline.yaml."""


class GopherRepetition(Filter):
    type: Literal["gopher_repetition"] = "gopher_repetition"
    shared: ClassVar = (TOKEN_LISTS, CJK_CHARS)
    max_dup_para_frac: float = Field(0.3, ge=0, le=1, description="largest share of paragraphs that repeat an earlier one")
    max_dup_para_char_frac: float = Field(0.2, ge=0, le=1, description="largest share of characters in repeated paragraphs")
    max_dup_line_frac: float = Field(0.3, ge=0, le=1, description="largest share of lines that repeat an earlier one")
    max_dup_line_char_frac: float = Field(0.2, ge=0, le=1, description="largest share of characters in repeated lines")
    max_top_ngram_frac: dict[TopN, float] = Field(
        {2: 0.20, 3: 0.18, 4: 0.16},
        description="n (2..4) → largest character share of the most frequent n-gram; omit n to skip it",
    )
    max_dup_ngram_frac: dict[DupN, float] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n (5..10) → largest character share covered by repeated n-grams; omit n to skip it",
    )

    cjk_share: float = Field(
        0.5, ge=0, le=1, description="a document with at least this share of CJK-character tokens is measured by the cjk_ limits"
    )
    cjk_max_top_ngram_frac: dict[TopN, float] = Field(
        {2: 0.20, 3: 0.22, 4: 0.20}, description="the top n-gram limits for CJK documents (n-grams of characters)"
    )
    cjk_max_dup_ngram_frac: dict[DupN, float] = Field(
        {5: 0.30, 6: 0.25, 7: 0.22, 8: 0.20, 9: 0.18, 10: 0.16},
        description="the repeated n-gram limits for CJK documents (n-grams of characters)",
    )

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        size = text.str.len_chars().cast(pl.Float64)
        paragraphs = text.str.strip_chars().str.replace_all(r"\n{2,}", "\x00").str.split("\x00")
        paras = _duplicates(df, paragraphs, "para", INVISIBLE)
        lines = _duplicates(df, text.str.replace_all(r"\n+", "\n").str.split("\n"), "line", ZERO_WIDTH)
        toks = TOKEN_LISTS.of(df)
        top_ns = sorted({*self.max_top_ngram_frac, *self.cjk_max_top_ngram_frac})
        dup_ns = sorted({*self.max_dup_ngram_frac, *self.cjk_max_dup_ngram_frac})
        grams = _ngram_fractions(toks, top_ns, dup_ns)
        parts = [df, paras.drop("_doc"), lines.drop("_doc")] + ([pl.DataFrame(grams)] if grams else [])
        measured = pl.concat(parts, how="horizontal")
        return measured.with_columns(
            (pl.col("_dup_para_chars") / size).alias(P + "dup_para_char_frac"),
            (pl.col("_dup_line_chars") / size).alias(P + "dup_line_char_frac"),
            *((pl.col(f"top_{n}") / size).alias(f"{P}top_{n}_gram") for n in top_ns),
            *((pl.col(f"dup_{n}") / size).alias(f"{P}dup_{n}_gram") for n in dup_ns),
            cjk_share(df, toks.list.len()).alias(P + "cjk_share"),
        ).drop("_dup_para_chars", "_dup_line_chars", *grams)

    def rules(self) -> list[Rule]:
        rules = [Rule("empty", pl.col(TEXT).str.contains(r"^\s*$"))]
        rules += [
            Rule.above(name, P + name, limit)
            for name, limit in (
                ("dup_para_frac", self.max_dup_para_frac),
                ("dup_para_char_frac", self.max_dup_para_char_frac),
                ("dup_line_frac", self.max_dup_line_frac),
                ("dup_line_char_frac", self.max_dup_line_char_frac),
            )
        ]
        for kind, limits, cjk_limits in (
            ("top", self.max_top_ngram_frac, self.cjk_max_top_ngram_frac),
            ("dup", self.max_dup_ngram_frac, self.cjk_max_dup_ngram_frac),
        ):
            for n in sorted({*limits, *cjk_limits}):
                name, limit = f"{kind}_{n}_gram", limits.get(n)
                rules.append(Rule.above(name, P + name, limit, cjk_limit(P + "cjk_share", self.cjk_share, limit, cjk_limits.get(n))))
        return rules
