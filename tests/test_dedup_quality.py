"""Near-dedup quality: Jaccard estimates agree with datasketch; planted and labelled near-duplicates are found."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
from datasketch import MinHash

from cleanmix.dedup.minhash_dedup import MinhashDedup
from cleanmix.dedup.shingles import normalize_expr, shingle_set


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    sa, sb = shingle_set(a, ngram), shingle_set(b, ngram)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def normalised(texts: list[str]) -> list[str]:
    return pl.select(normalize_expr(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()


def edit(text: str, rate: float, rng: random.Random) -> str:
    """A near-copy: a fraction of tokens replaced, or (CJK) characters, plus a header/footer sometimes."""
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in text) > len(text) / 3
    units = list(text) if cjk else text.split()
    for i in rng.sample(range(len(units)), max(1, int(rate * len(units)))):
        units[i] = rng.choice("的一是在不了有和人这中大为上个国") if cjk else rng.choice(["foo", "bar", "baz", "qux"])
    out = ("" if cjk else " ").join(units)
    if rng.random() < 0.3:
        out = ("转载请注明出处。" if cjk else "Share this article.") + out
    return out


def test_jaccard_estimates_agree_with_datasketch(shared_data: Path) -> None:
    texts = pl.read_parquet(shared_data / "web_en_cc_wet.parquet")["text"].head(60).to_list()
    rng = random.Random(0)
    pairs = [(t, edit(t, rng.choice([0.01, 0.03, 0.08, 0.2]), rng)) for t in texts if len(t.split()) > 40]
    flat = normalised([x for pair in pairs for x in pair])
    stage = MinhashDedup(num_perm=256)
    sig, _ = stage.signatures(pl.Series(flat))
    ours, theirs, exact = [], [], []
    for k in range(0, len(flat), 2):
        a, b = flat[k], flat[k + 1]
        exact.append(jaccard(a, b))
        ours.append(float((sig[k] == sig[k + 1]).mean()))
        m = [MinHash(num_perm=256, seed=1) for _ in range(2)]
        for h, text in zip(m, (a, b)):
            h.update_batch([s.encode() for s in shingle_set(text, 5)])
        theirs.append(m[0].jaccard(m[1]))
    ours_err, theirs_err = np.abs(np.subtract(ours, exact)), np.abs(np.subtract(theirs, exact))
    sigma = np.sqrt(np.maximum(np.multiply(exact, np.subtract(1, exact)), 0.01) / 256)
    assert (ours_err <= 4 * sigma).all()
    assert ours_err.mean() <= 1.5 * theirs_err.mean() + 0.005
    assert abs(np.mean(np.subtract(ours, exact))) < 0.01  # unbiased


def planted_f1(texts: list[str], rng: random.Random) -> tuple[float, float]:
    """F1 and precision of pairs (original, copy) labelled duplicate when exact Jaccard ≥ 0.8."""
    originals = [t for t in texts if len(t) > 200]
    copies = [edit(t, rng.choice([0.005, 0.01, 0.02, 0.05, 0.1, 0.2]), rng) for t in originals]
    n = len(originals)
    df = pl.DataFrame({"id": [f"o{i}" for i in range(n)] + [f"c{i}" for i in range(n)], "text": originals + copies})
    out = MinhashDedup().annotate(df)
    cluster = dict(zip(out["id"], out["dup_cluster_id"]))
    norm = normalised(originals + copies)
    truth = np.array([jaccard(norm[i], norm[n + i]) >= 0.8 for i in range(n)])
    found = np.array([cluster[f"o{i}"] == cluster[f"c{i}"] for i in range(n)])
    tp, fp, fn = (truth & found).sum(), (~truth & found).sum(), (truth & ~found).sum()
    return 2 * tp / (2 * tp + fp + fn), tp / max(1, tp + fp)


def test_planted_near_duplicates_english_web(shared_data: Path) -> None:
    texts = pl.read_parquet(shared_data / "web_en_cc_wet.parquet")["text"].to_list()
    f1, precision = planted_f1(texts, random.Random(1))
    assert f1 >= 0.97 and precision >= 0.99


def test_planted_near_duplicates_chinese_news(shared_data: Path) -> None:
    paragraphs = pl.read_parquet(shared_data / "web_zh_peoples_daily_1998.parquet")["text"].to_list()
    articles = ["".join(paragraphs[i : i + 8]) for i in range(0, 4800, 8)]
    f1, precision = planted_f1(articles, random.Random(2))
    assert f1 >= 0.97 and precision >= 0.99


def test_sohu_pairs_with_high_jaccard_are_found(shared_data: Path) -> None:
    """Label 5 there mostly means 'same story' (a headline vs its article); Jaccard ≥ 0.8 pairs must all be found."""
    pairs = pl.read_parquet(shared_data / "neardup_sohu_zh_pairs.parquet")
    df = pl.concat([pairs.select(pl.col("id") + "/a", text="text_a"), pairs.select(pl.col("id") + "/b", text="text_b")])
    out = MinhashDedup().annotate(df)
    cluster = dict(zip(out["id"], out["dup_cluster_id"]))
    found = np.array([cluster[f"{i}/a"] == cluster[f"{i}/b"] for i in pairs["id"]])
    a, b = normalised(pairs["text_a"].to_list()), normalised(pairs["text_b"].to_list())
    similarity = np.array([jaccard(x, y) for x, y in zip(a, b)])
    high = similarity >= 0.8
    assert high.sum() >= 40
    assert found[high].mean() >= 0.97
    assert not found[similarity < 0.75].any()
