"""`mix`: combine sources to target shares by tokens, documents or bytes, interleaved in every shard.

Shares are the hard constraint. Every selected document of a source appears `base` or `base + 1`
times (never more than `max_repeats`): `base = floor(target / available)`, and the remainder is a
seeded random subset — the documents whose hash `h = mix64(ORDER ^ seed)` is below a threshold,
chosen so the source's total lands within half a document of its target.

Nothing per document is held for the whole corpus:
  scan     per document: ORDER, source, bytes, tokens
  decide   1. survey (parallel): per source totals and a size-weighted histogram of h (2^14 bins)
           2. plan: shares, total (shrunk when infeasible), base and remainder per source
           3. threshold: the documents of the one histogram bin where the remainder is reached
           4. place (parallel, per unit): each copy's position in the output → decisions/
  apply    join the batch with its unit's decisions: drop, keep or copy; ORDER := position.

Positions: a source's output is its epochs one after the other (epoch e holds the documents with
more than e copies: repeats come after every original, not next to them). Inside an epoch each
unit's copies, in a seeded random order, are spread over the whole epoch by cumulative size
(stratified, phase-rotated by a golden-ratio sequence over units), and every source is scaled to
[0, 1). The engine sorts all rows by that position, so any run of consecutive rows — every output
shard — holds each source in its share, to within a few documents of that source (measured: at
most 2.4 of its largest documents per shard in tests/test_mix.py). The new ORDER packs the position
(40 bits) over 24 bits of the copy's hash; two copies tie only with odds of about n²/2^65, and a tie
is harmless: the engine's sort is stable, so the output stays deterministic.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from cleanmix.mix.tokens import count_tokens, estimate_tokens, load_tokenizer
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.order import UnitDecisions
from cleanmix.pipelines.shards import write_json
from cleanmix.pipelines.stage import ORDER, SOURCE, TEXT, Context, GlobalStage, StageResult, with_reason

REPEAT = "repeat"
"""Output column: 0 for a document's first appearance, k for its k-th extra copy."""
BYTES, TOKENS, DOCS = "_cm_bytes", "_cm_token_count", "_cm_docs"
MEASURES = ("docs", "bytes", "tokens")
"""What a source's size is counted in (`by` picks one), in the order details list them."""
NEW_ORDER = "_cm_new_order"
DECISIONS = {ORDER: pl.UInt64, REPEAT: pl.UInt16, NEW_ORDER: pl.UInt64}
"""Per copy of a kept document: its input ORDER, its repeat number, its ORDER in the output."""
HIST_BITS = 14
POSITION_BITS = 40
"""ORDER after mix: the position in [0, 1) in the high 40 bits, 24 bits of the copy's hash below."""
SOURCES_FILE = "sources.json"
"""The sources the plan lists, for `apply` to tell not_in_weights from not_selected."""
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_PHI = (math.sqrt(5) - 1) / 2
log = logging.getLogger("cleanmix.mix")


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64, so distinct inputs keep distinct hashes."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def seed_word(seed: int) -> np.uint64:
    return mix64(np.array([seed % 2**64], dtype=np.uint64) + _GOLDEN)[0]


def doc_hash(order: np.ndarray, seed: int) -> np.ndarray:
    """The seeded hash that picks the down-sampled subset: unique per document (a bijection of ORDER)."""
    return mix64(order.astype(np.uint64) ^ seed_word(seed))


def copy_key(h: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    """The seeded hash that orders one epoch's copies (a different shuffle per epoch)."""
    return mix64(h + (epoch.astype(np.uint64) + np.uint64(1)) * _GOLDEN)


class Mix(GlobalStage):
    """Combine sources to target shares by tokens, documents or bytes; seeded, capped up-sampling;
    output interleaved so every shard holds the mix; repeats marked in a `repeat` column."""

    type: Literal["mix"] = "mix"
    reorders: ClassVar[bool] = True

    by: Literal["tokens", "docs", "bytes"] = Field("tokens", description="what the shares and `total` measure")
    total: float | None = Field(
        None, gt=0, description="target size of the mix in the unit of `by`; none: the largest mix the data supports"
    )
    weights: dict[str, float] | None = Field(
        None, description="share per source (normalised); sources not listed are removed (mix:not_in_weights)"
    )
    temperature: float | None = Field(
        None, ge=0, le=10,
        description="instead of weights: share ∝ size^temperature (1 natural, 0 uniform); default 1 when no weights",
    )
    caps: dict[str, float] = Field(
        {}, description="most share a source may have {name: 0..1}; the excess goes to the others"
    )
    max_repeats: int | dict[str, int] = Field(
        1, description="most times one document may appear (1: no up-sampling); an int, or {source: n} (unlisted: 1)"
    )
    tokenizer: str | None = Field(
        None, description="path to a local tokenizer.json counted with `tokenizers`; none: the calibrated estimate"
    )

    def input_columns(self) -> tuple[str, ...]:
        return (SOURCE,)

    def output_columns(self) -> tuple[str, ...]:
        return (REPEAT,)

    @model_validator(mode="after")
    def _consistent(self) -> Mix:
        if self.weights is not None and self.temperature is not None:
            raise ValueError("give weights or temperature, not both")
        if self.weights is not None:
            if any(w < 0 or not math.isfinite(w) for w in self.weights.values()) or not any(self.weights.values()):
                raise ValueError(f"weights must be finite, ≥ 0 and not all 0; found {self.weights}")
            unknown = sorted(set(self.caps) - set(self.weights))
            if unknown:
                raise ValueError(f"caps name sources that have no weight: {', '.join(unknown)}")
            listed = {s for s, w in self.weights.items() if w > 0}
            if listed <= set(self.caps) and sum(self.caps[s] for s in listed) < 1 - 1e-9:
                raise ValueError(f"caps cover every weighted source but sum to {sum(self.caps[s] for s in listed):g} < 1")
        if any(not 0 < c <= 1 for c in self.caps.values()):
            raise ValueError(f"caps are shares in (0, 1]; found {self.caps}")
        repeats = self.max_repeats.values() if isinstance(self.max_repeats, dict) else [self.max_repeats]
        if any(not 1 <= r <= 1000 for r in repeats):
            raise ValueError(f"max_repeats must be 1..1000; found {self.max_repeats}")
        if self.tokenizer is not None:
            load_tokenizer(self.tokenizer)
        return self

    def repeats_for(self, source: str) -> int:
        return self.max_repeats.get(source, 1) if isinstance(self.max_repeats, dict) else self.max_repeats

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Target vs achieved share per source and the plan's totals, from `details` (mix/report.py)."""
        from cleanmix.mix.report import sections

        return sections(self.label, stats.get("details") or {})

    # scan -----------------------------------------------------------------------------------

    def scan(self, df: pl.DataFrame) -> pl.DataFrame:
        source = pl.col(SOURCE).cast(pl.String) if SOURCE in df.columns else pl.lit(None, pl.String)
        texts = df.get_column(TEXT)
        tokens = count_tokens(texts, self.tokenizer) if self.tokenizer else estimate_tokens(texts)
        return df.select(
            pl.col(ORDER).cast(pl.UInt64), source.alias(SOURCE),
            pl.col(TEXT).str.len_bytes().fill_null(0).cast(pl.UInt32).alias(BYTES), pl.lit(tokens).alias(TOKENS),
        )

    # decide ---------------------------------------------------------------------------------

    def decide(self, scans: list[Path], ctx: Context) -> dict[str, Any]:
        """Plan the mix from per-source counts, then write per-unit decisions (`ctx.decisions`)."""
        spread = min(len(scans), 2 * max(1, ctx.workers))
        chunks = [scans[i::spread] for i in range(spread)]
        survey = _merge_surveys(ctx.map(_survey, [(self, chunk, ctx.seed) for chunk in chunks]))
        if not survey["sources"]:
            details: dict[str, Any] = {"by": self.by, "sources": {}, "warnings": ["no documents reached the mix"]}
        else:
            plan = self.plan({s: v["available"][self.by] for s, v in survey["sources"].items()})
            for message in plan["warnings"]:
                log.warning("%s: %s", self.label, message)
            _thresholds(self, plan, survey, chunks, ctx)
            units = _unit_ranks(survey["presence"], plan["names"], scans)
            placed = ctx.map(_place, [(self, plan, path, units[i], ctx.seed, ctx.decisions) for i, path in enumerate(scans)])
            details = self._manifest(plan, survey, placed, len(scans))
        write_json(ctx.workdir / SOURCES_FILE, list(details["sources"]))
        return details

    def shares(self, available: dict[str, float]) -> dict[str, float]:
        """Target share per source: normalised weights, or size^temperature; then caps (water-filling)."""
        if self.weights is not None:
            raw = {s: w for s, w in self.weights.items() if w > 0}
        else:
            alpha = 1.0 if self.temperature is None else self.temperature
            raw = {s: float(a) ** alpha for s, a in available.items() if a > 0}
        if not raw:
            return {}
        fixed: dict[str, float] = {}
        while True:
            free = {s: w for s, w in raw.items() if s not in fixed}
            room = 1.0 - sum(fixed.values())
            norm = sum(free.values())
            scaled = {s: w * room / norm for s, w in free.items()}
            over = {s for s, v in scaled.items() if s in self.caps and v > self.caps[s]}
            if not over:
                return {**fixed, **scaled}
            fixed.update({s: self.caps[s] for s in over})
            if not set(free) - over:
                raise UserError(
                    f"{self.label}: the caps ({self.caps}) leave {1 - sum(fixed.values()):.3g} of the mix to no source: "
                    "every source present is capped. Raise a cap or drop one."
                )

    def plan(self, available: dict[str | None, float]) -> dict[str, Any]:
        """The mix in numbers: per listed source its share, target, base copies and remainder target."""
        named = {s: a for s, a in available.items() if s is not None}
        if not named:
            raise UserError(
                f"{self.label}: no document has a source. Set input.source_column (a column naming each "
                "document's source) or input.sources ({name: path}) so the mix has sources to combine."
            )
        shares = self.shares(named)
        missing = sorted(s for s in shares if named.get(s, 0) <= 0)
        if missing:
            raise UserError(
                f"{self.label}: source(s) {', '.join(missing)} have a weight but no documents reached the mix "
                f"(sources present: {', '.join(sorted(named))}). Fix the weights or the input."
            )
        names = sorted(shares)
        limits = {s: self.repeats_for(s) * named[s] / shares[s] for s in names}
        supported = min(limits.values())
        planned = supported if self.total is None else min(self.total, supported)
        feasible = self.total is None or self.total <= supported * (1 + 1e-9)
        warnings = []
        if not feasible:
            binding = min(limits, key=limits.get)  # type: ignore[arg-type]
            warnings.append(
                f"total {self.total:,.0f} {self.by} is infeasible: '{binding}' has {named[binding]:,.0f} {self.by} and "
                f"may appear at most {self.repeats_for(binding)}× for its share {shares[binding]:.4g}, so the mix "
                f"shrinks to {supported:,.0f} {self.by} ({self.total - supported:,.0f} short) to keep the shares."
            )
        unlisted = sorted(s for s in named if s not in shares)
        if unlisted:
            warnings.append(f"source(s) {', '.join(unlisted)} have no weight: their documents are removed (mix:not_in_weights)")
        sources = {}
        for s in names:
            target = shares[s] * planned
            ratio = min(target / named[s], float(self.repeats_for(s)))
            if abs(ratio - round(ratio)) < 1e-9:
                ratio = float(round(ratio))
            base = int(ratio)
            sources[s] = {
                "share": shares[s], "target": target, "base": base,
                "remainder": (ratio - base) * named[s], "available": named[s],
            }
        return {"names": names, "sources": sources, "supported": supported, "planned": planned, "feasible": feasible, "warnings": warnings}

    def _manifest(self, plan: dict[str, Any], survey: dict[str, Any], placed: list[dict[str, Any]], units: int) -> dict[str, Any]:
        """The details for stats/<stage>.json: per source what was available, selected and output."""
        kinds = MEASURES
        output = {s: {"selected": dict.fromkeys(kinds, 0), "output": dict.fromkeys(kinds, 0)} for s in plan["names"]}
        for result in placed:
            for s, counts in result.items():
                for part in ("selected", "output"):
                    for kind in kinds:
                        output[s][part][kind] += counts[part][kind]
        totals = {kind: sum(o["output"][kind] for o in output.values()) for kind in kinds}
        shrunk = self.total - plan["planned"] if self.total is not None else 0.0
        achieved = totals[self.by]
        sources: dict[str, Any] = {}
        for s in plan["names"]:
            info, out = plan["sources"][s], output[s]
            sources[s] = {
                "target_share": round(info["share"], 6),
                "achieved_share": {k: round(out["output"][k] / totals[k], 6) if totals[k] else 0.0 for k in kinds},
                "max_repeats": self.repeats_for(s),
                "available": survey["sources"][s]["available"],
                "selected": out["selected"],
                "output": out["output"],
                "repeats": out["output"]["docs"] - out["selected"]["docs"],
                "epochs": round(out["output"][self.by] / info["available"], 6),
                "target": round(info["target"], 3),
                "shortfall": round(info["share"] * shrunk, 3),
            }
        removed = {s: v["available"]["docs"] for s, v in survey["sources"].items() if s not in plan["sources"]}
        return {
            "by": self.by,
            "tokenizer": self.tokenizer,
            "total": {
                "requested": self.total,
                "supported": round(plan["supported"], 3),
                "planned": round(plan["planned"], 3),
                "achieved": achieved,
                "shortfall": round(shrunk, 3),
            },
            "feasible": plan["feasible"],
            "sources": sources,
            "not_mixed": {("(no source)" if s is None else s): docs for s, docs in sorted(removed.items(), key=str)},
            "units": units,
            "warnings": plan["warnings"],
        }

    # apply ----------------------------------------------------------------------------------

    def apply(self, df: pl.DataFrame, ctx: Context) -> StageResult:
        cache: dict[str, Any] = ctx.cache.setdefault(f"mix:{ctx.workdir}", {})
        if "listed" not in cache:
            cache["listed"] = json.loads((ctx.workdir / SOURCES_FILE).read_text())
        orders = df.get_column(ORDER).cast(pl.UInt64)
        decisions = ctx.decisions.load(orders)
        decisions = pl.DataFrame(schema=DECISIONS) if decisions is None else decisions
        incoming = df.drop(REPEAT, strict=False).with_columns(orders)
        kept = incoming.join(decisions, on=ORDER, how="inner", maintain_order="left_right")
        kept = kept.with_columns(pl.col(NEW_ORDER).alias(ORDER)).drop(NEW_ORDER)
        source = pl.col(SOURCE) if SOURCE in df.columns else pl.lit(None, pl.String)
        reason = (
            pl.when(source.is_null()).then(pl.lit(f"{self.label}:no_source"))
            .when(~source.is_in(cache["listed"])).then(pl.lit(f"{self.label}:not_in_weights"))
            .otherwise(pl.lit(f"{self.label}:not_selected"))
        )
        dropped = df.with_columns(orders).join(decisions.select(ORDER).unique(), on=ORDER, how="anti", maintain_order="left")
        rejected = with_reason(dropped, reason)
        added = int((kept.get_column(REPEAT) > 0).sum())
        return StageResult(kept.with_columns(pl.col(ORDER).cast(df.schema[ORDER])), rejected, added=added)


# decide's passes: top-level functions so the worker pool can pickle them ---------------------


def _by_size(df: pl.DataFrame, by: str) -> np.ndarray:
    if by == "docs":
        return np.ones(df.height, dtype=np.float64)
    return df.get_column(BYTES if by == "bytes" else TOKENS).to_numpy().astype(np.float64)


def _source_index(df: pl.DataFrame, names: list[str]) -> np.ndarray:
    """Each row's source as an index into `names`; -1 for a source not in it (or none)."""
    mapping = {s: i for i, s in enumerate(names)}
    return df.get_column(SOURCE).replace_strict(mapping, default=-1, return_dtype=pl.Int64).to_numpy()


def _survey(job: tuple[Mix, list[Path], int]) -> dict[str, Any]:
    """Per source: docs, bytes, tokens and a histogram of h weighted by size; which units hold it."""
    stage, paths, seed = job
    sources: dict[str | None, dict[str, Any]] = {}
    presence: dict[str, list[str]] = {}
    for path in paths:
        df = pl.read_parquet(path)
        groups = df.group_by(SOURCE).agg(pl.len().alias(DOCS), pl.col(BYTES).sum(), pl.col(TOKENS).sum()).sort(SOURCE)
        names = [s for s in groups.get_column(SOURCE).to_list() if s is not None]
        presence[str(path)] = names
        index = _source_index(df, names)
        top = (doc_hash(df.get_column(ORDER).to_numpy(), seed) >> np.uint64(64 - HIST_BITS)).astype(np.int64)
        size = _by_size(df, stage.by)
        named = index >= 0
        hists = np.bincount(
            (index[named] << HIST_BITS) + top[named], weights=size[named], minlength=len(names) << HIST_BITS
        ).reshape(len(names), 1 << HIST_BITS)  # one pass: a histogram per source
        for s, docs, nbytes, tokens in groups.iter_rows():
            entry = sources.setdefault(s, _survey_entry())
            for kind, value in (("docs", docs), ("bytes", nbytes), ("tokens", tokens)):
                entry["available"][kind] += int(value or 0)
            if s is not None:
                hist = hists[names.index(s)]
                entry["hist"] = hist if entry["hist"] is None else entry["hist"] + hist
    return {"sources": sources, "presence": presence}


def _survey_entry() -> dict[str, Any]:
    return {"available": dict.fromkeys(MEASURES, 0), "hist": None}


def _merge_surveys(parts: list[dict[str, Any]]) -> dict[str, Any]:
    sources: dict[str | None, dict[str, Any]] = {}
    presence: dict[str, list[str]] = {}
    for part in parts:
        presence.update(part["presence"])
        for s, entry in part["sources"].items():
            into = sources.setdefault(s, _survey_entry())
            for kind, value in entry["available"].items():
                into["available"][kind] += value
            if entry["hist"] is not None:
                into["hist"] = entry["hist"] if into["hist"] is None else into["hist"] + entry["hist"]
    return {"sources": sources, "presence": presence}


def _thresholds(stage: Mix, plan: dict[str, Any], survey: dict[str, Any], chunks: list[list[Path]], ctx: Context) -> None:
    """Per source, the hash bound below which a document gets its `base + 1`-th copy.

    The histogram finds the bin where the remainder target is crossed; the documents of that bin
    alone are read back and the prefix (in h order) closest to the target is taken."""
    crossing: dict[str, tuple[int, float]] = {}
    for s in plan["names"]:
        info = plan["sources"][s]
        info["threshold"] = 0
        info["remainder_mass"] = 0.0
        if info["remainder"] <= 0:
            continue
        cumulative = np.cumsum(survey["sources"][s]["hist"])
        b = min(int(np.searchsorted(cumulative, info["remainder"])), len(cumulative) - 1)
        before = float(cumulative[b - 1]) if b else 0.0
        crossing[s] = (b, info["remainder"] - before)
        info["remainder_mass"] = before
    if not crossing:
        return
    found = ctx.map(_bin_rows, [(stage, chunk, ctx.seed, {s: b for s, (b, _) in crossing.items()}) for chunk in chunks])
    for s, (b, need) in crossing.items():
        info = plan["sources"][s]
        h = np.concatenate([part[s][0] for part in found if s in part] or [np.empty(0, np.uint64)])
        size = np.concatenate([part[s][1] for part in found if s in part] or [np.empty(0)])
        order = np.argsort(h, kind="stable")
        h, size = h[order], size[order]
        cumulative = np.concatenate([[0.0], np.cumsum(size)])
        k = int(np.argmin(np.abs(cumulative - need)))
        info["remainder_mass"] += float(cumulative[k])
        if k < len(h):
            info["threshold"] = int(h[k])
        elif b + 1 < 1 << HIST_BITS:
            info["threshold"] = (b + 1) << (64 - HIST_BITS)
        else:  # every document gets the extra copy
            info["base"] += 1
            info["remainder_mass"] = 0.0


def _bin_rows(job: tuple[Mix, list[Path], int, dict[str, int]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    stage, paths, seed, bins = job
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in paths:
        df = pl.read_parquet(path).filter(pl.col(SOURCE).is_in(list(bins)))
        h = doc_hash(df.get_column(ORDER).to_numpy(), seed)
        size = _by_size(df, stage.by)
        source = df.get_column(SOURCE).to_numpy()
        top = (h >> np.uint64(64 - HIST_BITS)).astype(np.int64)
        for s, b in bins.items():
            mask = (source == s) & (top == b)
            found.setdefault(s, []).append((h[mask], size[mask]))
    return {s: (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])) for s, parts in found.items()}


def _unit_ranks(presence: dict[str, list[str]], names: list[str], scans: list[Path]) -> list[dict[str, int]]:
    """For each unit, its rank among the units that hold each source (drives the phase rotation)."""
    seen = dict.fromkeys(names, 0)
    ranks = []
    for path in scans:
        here = {}
        for s in presence.get(str(path), []):
            if s in seen:
                here[s] = seen[s]
                seen[s] += 1
        ranks.append(here)
    return ranks


def _place(job: tuple[Mix, dict[str, Any], Path, dict[str, int], int, UnitDecisions]) -> dict[str, Any]:
    """One unit: each document's copies and each copy's position; writes the unit's decisions."""
    stage, plan, path, ranks, seed, decided = job
    names, info = plan["names"], [plan["sources"][s] for s in plan["names"]]
    df = pl.read_parquet(path)
    index = _source_index(df, names)
    order = df.get_column(ORDER).to_numpy()
    h = doc_hash(order, seed)
    base = np.array([i["base"] for i in info] + [0], dtype=np.int64)
    threshold = np.array([i["threshold"] for i in info] + [0], dtype=np.uint64)
    copies = base[index] + (h < threshold[index])
    if not copies.any():
        return {}

    # One row per copy; epoch e of a source holds the documents with more than e copies.
    rows = np.repeat(np.arange(df.height), copies)
    epoch = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
    source = index[rows]
    key = copy_key(h[rows], epoch)
    arrange = np.lexsort((key, epoch, source))
    rows, epoch, source, key = rows[arrange], epoch[arrange], source[arrange], key[arrange]
    size = _by_size(df, stage.by)[rows]

    # Where each copy falls inside its (source, epoch) group of this unit, as a fraction by size.
    starts = np.flatnonzero(np.concatenate([[True], (source[1:] != source[:-1]) | (epoch[1:] != epoch[:-1])]))
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    running = np.cumsum(size)
    before = running - size - np.concatenate([[0.0], running[starts[1:] - 1]])[group]
    mass = np.add.reduceat(size, starts)[group]
    count = np.diff(np.append(starts, len(rows)))[group]
    rank = np.arange(len(rows)) - starts[group]
    within = np.where(mass > 0, (before + size / 2) / np.maximum(mass, 1e-300), (rank + 0.5) / count)

    # Spread over the whole epoch (rotated by this unit's phase), epochs in turn, scaled to [0, 1).
    full = np.array([i["available"] for i in info], dtype=np.float64)[source]
    part = np.array([i["remainder_mass"] for i in info], dtype=np.float64)[source]
    cycles = base[source].astype(np.float64)
    epoch_mass = np.where(epoch < cycles, full, part)
    phase0 = (mix64(np.arange(len(names), dtype=np.uint64) * _GOLDEN ^ seed_word(seed)) >> np.uint64(11)) / 2.0**53
    unit_rank = np.array([ranks.get(s, 0) for s in names], dtype=np.float64)
    phase = phase0[source] + unit_rank[source] * _PHI + epoch * _PHI**2
    position = (epoch * full + ((within + phase) % 1.0) * epoch_mass) / np.maximum(cycles * full + part, 1e-300)
    high = np.minimum(np.floor(position * 2.0**POSITION_BITS), 2.0**POSITION_BITS - 1).astype(np.uint64)
    new_order = (high << np.uint64(64 - POSITION_BITS)) | (key & np.uint64((1 << (64 - POSITION_BITS)) - 1))

    decisions = pl.DataFrame({ORDER: order[rows].astype(np.uint64), REPEAT: epoch.astype(np.uint16), NEW_ORDER: new_order})
    decided.write(decisions, Path(path).stem, sort_by=(ORDER, REPEAT))

    counts: dict[str, Any] = {}
    nbytes, tokens = df.get_column(BYTES).to_numpy().astype(np.int64), df.get_column(TOKENS).to_numpy().astype(np.int64)
    for i, s in enumerate(names):
        mine = (index == i) & (copies > 0)
        if mine.any():
            c = copies[mine]
            counts[s] = {
                "selected": {"docs": int(mine.sum()), "bytes": int(nbytes[mine].sum()), "tokens": int(tokens[mine].sum())},
                "output": {"docs": int(c.sum()), "bytes": int((nbytes[mine] * c).sum()), "tokens": int((tokens[mine] * c).sum())},
            }
    return counts
