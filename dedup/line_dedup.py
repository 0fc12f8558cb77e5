"""`line_dedup`: remove lines (or paragraphs) repeated across the whole corpus.

Why: web pages are mostly repeated lines — menus, cookie banners, "all rights reserved",
版权所有, 上一篇 下一篇 — that document dedup cannot touch, because each page differs elsewhere.

scan: every line (or paragraph: lines between blank lines) is normalised — lowercased, digits
masked as 0, whitespace dropped, so spacing never matters and CJK lines need none — and hashed
(xxh3-64: ~3 colliding pairs among 10^10 distinct lines); one small row per unit: order, unit
number, hash, bytes.
decide: the rows are hash-partitioned to disk and each partition is counted alone (as
`exact_dedup` does), so memory is bounded by a partition, not by the corpus; the units to remove
are written per input unit, with where the most repeated lines first occur.
apply: drops those units (a removed unit takes the blank lines just before it along, and a
changed document loses its leading blank lines); a document left with too little text is removed,
any other changed one is counted in `modified`.

Defaults, from published practice and benchmarks/line_dedup.md:
- `unit: line`, `keep: none`, `min_docs: 2`, `digits: true`: CCNet (Wenzek et al. 2020,
  cc_net/dedup.py) splits on newlines, lowercases, replaces digits by 0 and removes every
  occurrence of a line seen twice. On the article pages 2 documents keep 99.4% of the human
  article text and remove 4× the boilerplate 3 documents do.
- `keep: first` (then `min_docs: 1`): Dolma's paragraph dedup (a Bloom filter: the first
  occurrence stays) and C4's "one of each repeated span" — exact line dedup.
- `min_chars: 5`: short lines ("By", "1." once digits are masked, "Yes.") recur in unrelated
  documents by chance; lines under 5 cost 0.16% of article text and carry little boilerplate.
  The floor stays far below FineWeb's 30 characters, under which its quality rule counts a
  line as short, i.e. a boilerplate suspect.
- `min_remaining_chars: 50`: only stubs go ("Page not found"). CCNet's 300-character floor
  removed 14% of the WET pages here and 0.6 points of the Chinese article text (short pages of
  captions and verse); length is the job of the length and quality filters (Gopher's 50
  words), which see every document, not only the ones this stage changed.
Run it after document dedup (exact/minhash): copies of one page would otherwise count as
boilerplate and lose their text in every copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import xxhash
from pydantic import Field, model_validator

from cleanmix.dedup.partitions import count_rows, fresh_dir, partition_count, partition_files, partition_of, split_to_disk
from cleanmix.dedup.shingles import text_buffers
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.order import UnitDecisions
from cleanmix.pipelines.shards import remove_in_background
from cleanmix.pipelines.stage import ORDER, REASON, TEXT, Context, GlobalStage, StageResult, with_reason

LINE, UNIT, BLANK = "_cm_line", "_cm_unit_no", "_cm_blank"  # not "_cm_unit": UnitDecisions uses it
KEY, HASH, BYTES = "_cm_key", "_cm_hash", "_cm_bytes"
NEW, SHORT = "_cm_new", "_cm_short"
DROP, TOP = "_cm_drop", "_cm_top"
TOP_LINES = 20
"""Most repeated units named in the stats and the report."""
SHOWN_CHARS = 200
"""Characters of a repeated unit shown in the report."""
DEFAULT_MIN_DOCS = 2
"""With keep: none, a unit in this many documents is boilerplate."""
_BYTES_PER_UNIT = 64  # order, unit, hash and bytes in memory, with the sort and window columns


def bare(texts: pl.Series, *, lowercase: bool = False, digits: bool = False) -> pl.Series:
    """`texts` without whitespace (ASCII, no-break U+00A0, ideographic U+3000); with `lowercase`,
    lowercased; with `digits`, every digit (ASCII, full-width) as 0. Byte masks in numpy, no
    regular expression pass; Unicode case mapping only where a cased non-ASCII letter may be."""
    if lowercase:
        texts = _unicode_lowercase(texts)
    data, offsets = text_buffers(texts)
    if lowercase:
        data = np.where((data >= 0x41) & (data <= 0x5A), data | np.uint8(0x20), data)
    drop = (data == 0x20) | ((data >= 0x09) & (data <= 0x0D))
    head, tail = data[:-2], data[2:]
    nbsp = np.flatnonzero((data[:-1] == 0xC2) & (data[1:] == 0xA0))
    ideographic = np.flatnonzero((head == 0xE3) & (data[1:-1] == 0x80) & (tail == 0x80))
    for starts, size in ((nbsp, 2), (ideographic, 3)):
        for k in range(size):
            drop[starts + k] = True
    if digits:
        wide = np.flatnonzero((head == 0xEF) & (data[1:-1] == 0xBC) & (tail >= 0x90) & (tail <= 0x99)) + 2  # ０-９
        data = np.where((data >= 0x30) & (data <= 0x39), np.uint8(0x30), data)
        data[wide] = 0x90
    gone = np.flatnonzero(drop)
    kept = offsets - np.searchsorted(gone, offsets)
    array = pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(kept), pa.py_buffer(np.delete(data, gone)))
    return arrow_buffers.series(texts.name, array)


_E2_CASED = np.zeros(256, bool)
_E2_CASED[[0x84, 0x85, 0x92, 0x93, 0xB0, 0xB1, 0xB2, 0xB3]] = True
"""Second bytes of U+2100-217F (letterlike, Roman numerals), U+2480-24FF (Ⓐ), U+2C00-2CFF (Glagolitic, Coptic)."""


def _unicode_lowercase(texts: pl.Series) -> pl.Series:
    """Texts with Polars' Unicode lowercase where a byte may start a cased non-ASCII letter (Latin-1
    to Armenian, Georgian, Latin and Greek extended, letterlike and enclosed letters, Glagolitic,
    Coptic, Cyrillic extended, full-width Ａ-Ｚ, supplementary planes); the rest, CJK included (no
    case, and the slowest to map), is left to the ASCII pass."""
    data, offsets = text_buffers(texts)
    cased = ((data >= 0xC3) & (data <= 0xD5)) | (data == 0xE1) | (data == 0xEA) | (data == 0xF0)
    e2 = np.flatnonzero(data[:-1] == 0xE2)
    cased[e2[_E2_CASED[data[e2 + 1]]]] = True
    cased[:-2] |= (data[:-2] == 0xEF) & (data[1:-1] == 0xBC) & (data[2:] >= 0xA1) & (data[2:] <= 0xBA)
    rows = np.flatnonzero(np.diff(np.searchsorted(np.flatnonzero(cased), offsets)))
    return texts.clone().scatter(rows, texts.gather(rows).str.to_lowercase()) if rows.size else texts


def weight(bare: pl.Expr) -> pl.Expr:
    """The length of a whitespace-free text: (characters + UTF-8 bytes) / 2, so an ASCII letter
    counts 1, a Cyrillic, Greek or Arabic one 1.5, a CJK character 2 — a Han character carries
    about what two Latin letters do (版权所有 weighs like "Copyright"). Costs no pass over the text."""
    return (bare.str.len_chars() + bare.str.len_bytes()) / 2


class LineDedup(GlobalStage):
    """Remove lines repeated across documents (boilerplate), or every copy of a line but the first.

    Run it after document dedup: copies of one page would otherwise count as boilerplate."""

    type: Literal["line_dedup"] = "line_dedup"
    unit: Literal["line", "paragraph"] = Field("line", description="what is compared: a line, or a paragraph (lines between blank lines)")
    keep: Literal["none", "first"] = Field(
        "none",
        description="none: a repeated unit goes from every document (boilerplate); first: its first occurrence in "
        "input order stays, every other goes (exact line dedup)",
    )
    min_docs: int | None = Field(
        None, ge=1, description="a unit found in at least this many documents is repeated; default 2 with keep: none, 1 with keep: first"
    )
    min_chars: int = Field(
        5, ge=1, description="units shorter than this are never removed (whitespace not counted; a CJK character counts 2, see `weight`)"
    )
    digits: bool = Field(True, description="mask digits before comparing (dates, counters and years in footers match)")
    min_remaining_chars: int = Field(
        50, ge=1, description="a changed document left shorter than this (measured as min_chars) is removed: too_little_text"
    )
    partition_mb: float = Field(256, gt=0, description="memory for one on-disk partition of unit hashes in decide")

    @model_validator(mode="after")
    def _threshold_removes_something_sensible(self) -> LineDedup:
        if self.keep == "none" and self.min_docs == 1:
            raise ValueError("keep: none with min_docs: 1 would remove every line; use min_docs ≥ 2, or keep: first")
        return self

    @property
    def threshold(self) -> int:
        return self.min_docs if self.min_docs is not None else (DEFAULT_MIN_DOCS if self.keep == "none" else 1)

    # scan -----------------------------------------------------------------------------------

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        """(ORDER, UNIT, HASH, BYTES) of every unit long enough to compare; BYTES counts a line's newline.

        xxh3 per key in a loop, not Polars' column-wide `Series.hash`: that one is 20× quicker on the
        hashing (7% of the stage, benchmarks/line_dedup.md) but may change between Polars versions,
        and a resumed run counts hashes scanned before an upgrade with hashes scanned after it."""
        units = self.units(df)
        keys = units[KEY].cast(pl.Binary).to_list()
        hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, keys), np.uint64, len(keys))
        return units.select(ORDER, UNIT, pl.Series(HASH, hashes), BYTES)

    def units(self, df: pl.DataFrame) -> pl.DataFrame:
        """(ORDER, UNIT, KEY, BYTES) of every unit long enough to compare: KEY is what is hashed."""
        lines = split_lines(df, self.unit).filter(~pl.col(BLANK))
        key = bare(lines[LINE], lowercase=True, digits=self.digits)
        units = lines.select(ORDER, UNIT, pl.lit(key).alias(KEY), (pl.col(LINE).str.len_bytes() + 1).cast(pl.UInt32).alias(BYTES))
        if self.unit == "paragraph":
            units = units.group_by(ORDER, UNIT, maintain_order=True).agg(pl.col(KEY).str.join("\n"), pl.col(BYTES).sum())
        return units.filter(weight(pl.col(KEY)) >= self.min_chars)

    # decide ---------------------------------------------------------------------------------

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        details: dict[str, Any] = {"unit": self.unit, "min_docs": self.threshold}
        if not scans:
            return {**details, "units": 0, f"{self.unit}s_removed": 0, "bytes_removed": 0, "top_lines": []}
        work = fresh_dir(ctx.workdir / "work")
        rows = count_rows(scans)
        partitions = partition_count(rows * _BYTES_PER_UNIT, self.partition_mb)
        ctx.map(_split, [(path, f"s{i:06d}", partitions, work) for i, path in enumerate(scans)])
        counted = ctx.map(_count, [(self.threshold, self.keep, p, work, ctx.decisions) for p in range(partitions)])
        remove_in_background(work)
        top = (
            pl.concat([c[1] for c in counted])
            .sort(["docs", "occurrences", HASH], descending=[True, True, False])
            .head(TOP_LINES)
            .with_row_index(TOP, offset=1)
        )
        ctx.decisions.write(
            top.select(ORDER, UNIT, pl.lit(False).alias(DROP), pl.col(TOP).cast(pl.Int32)), "top", sort_by=(ORDER, UNIT)
        )
        return {
            **details,
            "units": rows,
            "partitions": partitions,
            "repeated": sum(c[0]["repeated"] for c in counted),
            f"{self.unit}s_removed": sum(c[0]["removed"] for c in counted),
            "bytes_removed": sum(c[0]["bytes"] for c in counted),
            "top_lines": top.select(pl.col(TOP).alias("rank"), "docs", "occurrences").to_dicts(),
        }

    # apply ----------------------------------------------------------------------------------

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        decisions = ctx.decisions.load(df[ORDER])
        if decisions is None:
            return StageResult(df, with_reason(df.clear(), None))
        drops = decisions.filter(pl.col(DROP)).select(ORDER, UNIT, DROP)
        order_type = df.schema[ORDER]
        rows = df.with_columns(pl.col(ORDER).cast(pl.UInt64))
        examples = _examples(rows, decisions.filter(pl.col(TOP).is_not_null()), self.unit)
        changed = _without(rows.filter(pl.col(ORDER).is_in(drops[ORDER].unique().implode())), drops, self.unit)
        left = weight(pl.lit(bare(changed[NEW])))
        rows = rows.join(changed.with_columns((left < self.min_remaining_chars).alias(SHORT)), on=ORDER, how="left", maintain_order="left")
        too_short = pl.col(SHORT).fill_null(False)
        kept = rows.filter(~too_short).with_columns(pl.coalesce(NEW, TEXT).alias(TEXT))
        modified = int(kept[NEW].is_not_null().sum())
        rejected = with_reason(rows.filter(too_short), f"{self.label}:too_little_text")
        back = [pl.col(c).cast(order_type) if c == ORDER else pl.col(c) for c in df.columns]
        return StageResult(
            kept.select(back),
            rejected.select(*back, REASON),
            modified={f"{self.label}:{self.unit}s_removed": modified} if modified else {},
            examples=examples,
        )

    # report ---------------------------------------------------------------------------------

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """The counts, then the most repeated units, escaped and cut to SHOWN_CHARS."""
        from cleanmix.pipelines import charts

        details = dict(stats.get("details") or {})
        top = details.pop("top_lines", None) or []
        if not details:
            return []
        examples = stats.get("examples") or {}
        rows = []
        for entry in top:
            shown = (examples.get(f"top:{entry['rank']:03d}") or [{}])[0]
            text = shown.get("text", "") + ("…" if shown.get("truncated") else "")
            rows.append([text, charts.n(entry["docs"]), charts.n(entry["occurrences"])])
        table = charts.table([f"most repeated {self.unit}s", "documents", "occurrences"], rows)
        return [("global", charts.details(self.label, details, lead=table if rows else ""))]


def split_lines(df: pl.DataFrame, unit: str) -> pl.DataFrame:
    """One row per line of every text (ORDER, LINE, UNIT, BLANK), documents in their order.

    UNIT numbers the line in its document, or its paragraph: the blank (whitespace-only) lines
    before it, so the lines of one paragraph share a number and blank lines separate paragraphs."""
    lines = (
        df.select(pl.col(ORDER).cast(pl.UInt64), pl.col(TEXT).str.split("\n").alias(LINE))
        .explode(LINE)
        .filter(pl.col(LINE).is_not_null())
    )
    blank = ~lines[LINE].str.contains(r"\S").to_numpy()
    order = lines[ORDER].to_numpy()
    index = np.arange(order.size)
    first = np.maximum.accumulate(np.where(np.r_[True, order[1:] != order[:-1]], index, 0)) if order.size else index
    if unit == "line":
        number = index - first
    else:
        before = np.cumsum(blank) - blank
        number = before - before[first]
    return lines.with_columns(pl.Series(UNIT, number, pl.UInt32), pl.Series(BLANK, blank, pl.Boolean))


def _without(docs: pl.DataFrame, drops: pl.DataFrame, unit: str) -> pl.DataFrame:
    """ORDER and the new text (NEW) of documents that lose units.

    A removed unit takes the blank lines just before it; a leading blank line goes too."""
    lines = split_lines(docs, unit).join(drops, on=[ORDER, UNIT], how="left", maintain_order="left")
    dropped = pl.col(DROP).fill_null(False) & ~pl.col(BLANK)
    next_dropped = pl.when(~pl.col(BLANK)).then(dropped).backward_fill().over(ORDER).fill_null(False)
    text_before = (~pl.col(BLANK) & ~dropped).cum_sum().over(ORDER) > 0
    keep = pl.when(pl.col(BLANK)).then(~next_dropped & text_before).otherwise(~dropped)
    new = lines.filter(keep).group_by(ORDER, maintain_order=True).agg(pl.col(LINE).str.join("\n").alias(NEW))
    return docs.select(ORDER).join(new, on=ORDER, how="left", maintain_order="left").with_columns(pl.col(NEW).fill_null(""))


def _examples(rows: pl.DataFrame, top: pl.DataFrame, unit: str) -> dict[str, list[dict[str, Any]]]:
    """The text of the most repeated units where they first occur, for the report."""
    if not top.height:
        return {}
    lines = split_lines(rows.filter(pl.col(ORDER).is_in(top[ORDER].unique().implode())), unit).filter(~pl.col(BLANK))
    found = top.join(lines, on=[ORDER, UNIT]).group_by(TOP, maintain_order=True).agg(pl.col(LINE).str.join("\n"))
    return {
        f"top:{rank:03d}": [{"text": text[:SHOWN_CHARS], "truncated": len(text) > SHOWN_CHARS}]
        for rank, text in found.sort(TOP).iter_rows()
    }


def _split(job: tuple[Path, str, int, Path]) -> None:
    path, name, partitions, work = job
    df = pl.read_parquet(path)
    split_to_disk(df, partition_of(df[HASH].to_numpy(), partitions), partitions, work / "hashes", name)


def _count(job: tuple[int, str, int, Path, UnitDecisions]) -> tuple[dict[str, int], pl.DataFrame]:
    """Count one partition: which units go (written as decisions), totals, and its most repeated units."""
    threshold, keep, partition, work, decided = job
    files = partition_files(work / "hashes", partition)
    empty = pl.DataFrame(schema={HASH: pl.UInt64, "docs": pl.UInt32, "occurrences": pl.UInt32, ORDER: pl.UInt64, UNIT: pl.UInt32})
    if not files:
        return {"repeated": 0, "removed": 0, "bytes": 0}, empty
    df = pl.read_parquet(files).sort(HASH, ORDER, UNIT).with_columns(
        pl.col(ORDER).n_unique().over(HASH).cast(pl.UInt32).alias("docs"),
        pl.len().over(HASH).cast(pl.UInt32).alias("occurrences"),
    )
    repeated = (pl.col("docs") >= threshold) & (pl.col("occurrences") > 1)
    firsts = df.filter(repeated & pl.col(HASH).is_first_distinct())
    drop = repeated & ~pl.col(HASH).is_first_distinct() if keep == "first" else repeated
    removed = df.filter(drop)
    decided.write(removed.select(ORDER, UNIT, pl.lit(True).alias(DROP), pl.lit(None, pl.Int32).alias(TOP)), f"p{partition:05d}",
                  sort_by=(ORDER, UNIT))
    top = firsts.sort(["docs", "occurrences", HASH], descending=[True, True, False]).head(TOP_LINES).select(empty.columns)
    return {"repeated": firsts.height, "removed": removed.height, "bytes": int(removed[BYTES].sum())}, top
