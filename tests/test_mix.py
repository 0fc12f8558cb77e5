"""The `mix` stage end to end on real Parquet files: exact shares, every shard mixed, caps, seeds, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cleanmix.mix.mix import Mix
from cleanmix.mix.tokens import estimate_tokens
from cleanmix.pipelines.config import validate_pipeline
from cleanmix.pipelines.errors import UserError
from cleanmix.pipelines.local import run_local
from cleanmix.pipelines.progress import Reporter
from conftest import crash_on_call

WORDS = "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they".split()
SIZES = {"web": (10_000, 60, 4), "books": (1_000, 300, 1), "code": (2_000, 20, 2)}
"""Skewed sources: documents, mean words per document, files."""
WEIGHTS = {"web": 0.5, "books": 0.3, "code": 0.2}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(7)
    for name, (docs, mean, files) in SIZES.items():
        (root / name).mkdir()
        for f in range(files):
            lengths = rng.integers(1, 2 * mean, docs // files)
            texts = [" ".join(rng.choice(WORDS, n)) for n in lengths]
            ids = [f"{name}-{f}-{i}" for i in range(len(texts))]
            pl.DataFrame({"id": ids, "text": texts}).write_parquet(root / name / f"part-{f}.parquet")
    return {name: str(root / name) for name in SIZES}


def run_mix(sources: dict[str, str], out: Path, shard_rows: int = 100_000, workers: int = 1, seed: int = 0, **mix) -> dict:
    config = {
        "input": {"sources": sources}, "output": {"path": str(out), "shard_rows": shard_rows},
        "workers": workers, "seed": seed, "stages": [{"type": "mix", **mix}],
    }
    summary = run_local(validate_pipeline(config), "p.yaml", Reporter(quiet=True))
    stage = summary["stages"][0]
    assert stage["docs_in"] == stage["docs_out"] + sum(stage["removed"].values()) - stage.get("added", 0)
    return json.loads((out / "stats" / "mix.json").read_text())["details"]


def measured(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col("text").str.len_bytes().alias("bytes"), pl.lit(1).alias("docs"))


def shares(df: pl.DataFrame, by: str) -> dict[str, float]:
    sums = measured(df).group_by("source").agg(pl.col(by).sum())
    total = sums.get_column(by).sum()
    return {s: v / total for s, v in sums.iter_rows()}


def output(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data")


@pytest.mark.parametrize("by, total", [("docs", None), ("bytes", 400_000)])
def test_shares_are_exact_and_every_shard_holds_the_mix(sources, tmp_path, by, total):
    details = run_mix(sources, tmp_path / "out", shard_rows=500, by=by, weights=WEIGHTS, total=total)
    data = output(tmp_path / "out")
    assert details["feasible"] and details["warnings"] == []
    if total:
        assert details["total"]["achieved"] == pytest.approx(total, rel=0.005)
    achieved = shares(data, by)
    for source, weight in WEIGHTS.items():
        assert abs(achieved[source] - weight) / weight < 0.01
        assert details["sources"][source]["achieved_share"][by] == pytest.approx(achieved[source], abs=1e-6)
        assert details["sources"][source]["target_share"] == pytest.approx(weight)
    assert data.get_column("id").n_unique() == data.height  # max_repeats 1: no document twice
    # Every full shard: each source within 3 of its largest documents of its share (docs: exact).
    largest = measured(data).group_by("source").agg(pl.col(by).max()).rows_by_key("source")
    parts = sorted((tmp_path / "out" / "data").glob("part-*.parquet"))
    assert len(parts) >= 5
    for part in parts[:-1]:
        shard = measured(pl.read_parquet(part))
        total = shard.get_column(by).sum()
        for source, mass in shard.group_by("source").agg(pl.col(by).sum()).iter_rows():
            assert abs(mass - WEIGHTS[source] * total) <= 3 * largest[source][0][0], (part.name, source)
        if by == "docs":
            assert shares(shard, by) == pytest.approx(WEIGHTS, abs=1.5 / 500)  # within one document


def test_up_sampling_respects_max_repeats_and_marks_copies(sources, tmp_path):
    weights = {"web": 0.2, "books": 0.5, "code": 0.3}
    details = run_mix(sources, tmp_path / "out", by="docs", weights=weights, max_repeats={"books": 3, "code": 2})
    data = output(tmp_path / "out")
    copies = data.group_by("id").agg(pl.len().alias("n"), pl.col("repeat").sort().alias("r"), pl.first("source"))
    limit = {"web": 1, "books": 3, "code": 2}
    assert all(n <= limit[s] and r == list(range(n)) for n, r, s in copies.select("n", "r", "source").iter_rows())
    summary = json.loads((tmp_path / "out" / "stats" / "summary.json").read_text())["stages"][0]
    assert summary["added"] == int((data.get_column("repeat") > 0).sum()) > 0
    books = details["sources"]["books"]
    assert books["epochs"] == 3 and books["repeats"] == 2 * books["selected"]["docs"]  # books binds: all 3x
    assert shares(data, "docs") == pytest.approx(weights, rel=0.01)
    # repeats come after every original of their source
    books_rows = data.filter(pl.col("source") == "books").get_column("repeat").to_list()
    assert books_rows == sorted(books_rows)


def test_infeasible_total_shrinks_and_says_so(sources, tmp_path, caplog):
    details = run_mix(sources, tmp_path / "out", by="docs", total=20_000, weights=WEIGHTS, max_repeats=2)
    # books: 1000 docs × 2 repeats / 0.3 share → at most 6,666 documents in the mix
    assert details["feasible"] is False
    assert details["total"]["supported"] == pytest.approx(2000 / 0.3)
    assert details["total"]["achieved"] == pytest.approx(2000 / 0.3, abs=2)
    assert details["total"]["shortfall"] == pytest.approx(20_000 - 2000 / 0.3, abs=0.01)
    assert details["sources"]["books"]["shortfall"] == pytest.approx(0.3 * 20_000 - 2000)
    assert any("infeasible" in w and "'books'" in w for w in details["warnings"])
    assert any("infeasible" in record.getMessage() for record in caplog.records)
    assert shares(output(tmp_path / "out"), "docs") == pytest.approx(WEIGHTS, rel=0.01)


def test_seed_decides_the_mix_and_workers_and_crashes_do_not(sources, tmp_path, monkeypatch):
    import cleanmix.mix.mix as module

    def files(out: Path) -> list[bytes]:
        return [p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))]

    common = {"by": "tokens", "weights": WEIGHTS, "max_repeats": 2, "shard_rows": 1000}
    run_mix(sources, tmp_path / "a", seed=1, **common)
    run_mix(sources, tmp_path / "b", seed=1, workers=2, **common)
    run_mix(sources, tmp_path / "c", seed=2, **common)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    a, c = output(tmp_path / "a"), output(tmp_path / "c")
    assert set(a.get_column("id")) != set(c.get_column("id"))
    assert a.get_column("id").head(50).to_list() != c.get_column("id").head(50).to_list()

    # A crash halfway through decide's per-unit pass, then a re-run: the same output.
    place = module._place
    monkeypatch.setattr(module, "_place", crash_on_call(place, 3))
    with pytest.raises(KeyboardInterrupt):
        run_mix(sources, tmp_path / "d", seed=1, **common)
    monkeypatch.setattr(module, "_place", place)
    run_mix(sources, tmp_path / "d", seed=1, **common)
    assert files(tmp_path / "d") == files(tmp_path / "a")


def test_temperature_follows_its_formula_and_caps(sources, tmp_path):
    tokens = {"web": 400_000.0, "books": 250_000.0, "code": 30_000.0}
    for alpha in (0.0, 0.3, 1.0):
        got = Mix(temperature=alpha).shares(tokens)
        norm = sum(v**alpha for v in tokens.values())
        assert got == pytest.approx({s: v**alpha / norm for s, v in tokens.items()})
    capped = Mix(temperature=1.0, caps={"web": 0.4}).shares(tokens)
    assert capped["web"] == pytest.approx(0.4)
    assert capped["books"] / capped["code"] == pytest.approx(250 / 30)
    assert Mix().shares(tokens) == pytest.approx(Mix(temperature=1).shares(tokens))

    details = run_mix(sources, tmp_path / "out", by="bytes", temperature=0.5)
    available = {s: v["available"]["bytes"] for s, v in details["sources"].items()}
    norm = sum(math.sqrt(v) for v in available.values())
    for source, info in details["sources"].items():
        assert info["target_share"] == pytest.approx(math.sqrt(available[source]) / norm, abs=1e-6)
        assert info["achieved_share"]["bytes"] == pytest.approx(info["target_share"], rel=0.01)


def test_tokenizer_json_counts_real_tokens(sources, tmp_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        [" ".join(WORDS)] * 10, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    )
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    details = run_mix(sources, tmp_path / "out", by="tokens", weights=WEIGHTS, tokenizer=str(path))
    data = output(tmp_path / "out")
    real = sum(len(e.ids) for e in tokenizer.encode_batch(data.get_column("text").to_list(), add_special_tokens=False))
    assert details["total"]["achieved"] == real
    assert details["tokenizer"] == str(path)


def test_mistakes_are_clear(tmp_path, sources):
    def invalid(**mix) -> str:
        config = {"input": {"sources": sources}, "output": {"path": str(tmp_path / "x")}, "stages": [{"type": "mix", **mix}]}
        with pytest.raises(UserError) as error:
            validate_pipeline(config)
        return str(error.value)

    assert "tokenizer file" in invalid(tokenizer=str(tmp_path / "missing.json")) and "does not exist" in invalid(tokenizer="nope.json")
    assert "weights or temperature" in invalid(weights={"web": 1}, temperature=0.5)
    assert "caps" in invalid(weights={"web": 1, "books": 1}, caps={"web": 0.3, "books": 0.3})
    assert "max_repeats" in invalid(max_repeats=0)
    with pytest.raises(UserError, match="code have a weight but no documents"):
        run_mix({"web": sources["web"]}, tmp_path / "missing", weights={"web": 0.9, "code": 0.1})
    config = {"input": {"path": sources["books"]}, "output": {"path": str(tmp_path / "nosource")}, "stages": [{"type": "mix"}]}
    with pytest.raises(UserError, match="needs each document's source"):
        validate_pipeline(config)


def test_token_estimate_is_calibrated_per_script():
    texts = pl.Series(
        ["The quick brown fox jumps over the lazy dog. " * 20, "我爱北京天安门，今天天气很好。" * 20, None, "Привет, мир! " * 20]
    )
    tokens = estimate_tokens(texts).to_list()
    assert tokens[2] == 0
    assert 0.2 < tokens[0] / len(texts[0]) < 0.3  # English: ~4 characters a token
    assert 0.6 < tokens[1] / len(texts[1]) < 0.9  # Chinese: most characters a token
    assert 0.3 < tokens[3] / len(texts[3]) < 0.5  # Cyrillic: between the two
    assert estimate_tokens(texts.slice(1, 3)).to_list() == tokens[1:]


def test_python_api_interleaves_in_memory():
    df = pl.DataFrame({
        "id": range(300), "text": ["a b c"] * 300, "source": ["x"] * 200 + ["y"] * 100,
    })
    mixed = Mix(by="docs", weights={"x": 0.5, "y": 0.5}, max_repeats=2).filter(df)
    assert mixed.height == 400 and mixed.get_column("repeat").max() == 1
    first = mixed.head(40).get_column("source").value_counts().rows_by_key("source")
    assert first["x"][0][0] == first["y"][0][0] == 20  # interleaved, not one source after the other
    annotated = Mix(by="docs", weights={"x": 1.0}).annotate(df)
    assert annotated.filter(pl.col("source") == "y").get_column("reason").unique().to_list() == ["mix:not_in_weights"]
