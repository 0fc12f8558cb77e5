"""Whole spam pages built from real page templates, for the content-safety benchmark and tests: a
spam page is mostly spam in a real page's frame, not one paragraph in a real article.

English: a page of web_en_article_pages with its article lines (those of the human `article_body`,
from the first to the last) replaced by 3-8 spam paragraphs of one category; the page's boilerplate
(menus, footers, related links) is kept. Chinese: 3-8 spam paragraphs with 1-2 real People's Daily
paragraphs interleaved, as SEO spam pads its pages with news text.
"""

from __future__ import annotations

import random

import polars as pl


def en_template_pages(articles: pl.DataFrame, pool: list[str], name: str, count: int | None = None) -> pl.DataFrame:
    """`articles` (text, article_body) with the article lines replaced by 3-8 paragraphs drawn from
    `pool`; pages whose text holds no line of their article_body are skipped; at most `count` pages."""
    rng = random.Random(f"en:{name}")
    texts = []
    for text, body in articles.select("text", "article_body").rows():
        wanted = {line.strip() for line in body.split("\n") if line.strip()}
        lines = text.split("\n")
        at = [i for i, line in enumerate(lines) if line.strip() in wanted]
        if at:
            texts.append("\n".join([*lines[:at[0]], *_draw(pool, rng), *lines[at[-1] + 1:]]))
    return _frame(texts[:count], f"{name}-en")


def zh_template_pages(news: list[str], pool: list[str], name: str, count: int) -> pl.DataFrame:
    """`count` pages of 3-8 paragraphs drawn from `pool` with 1-2 paragraphs of `news` put among them."""
    rng = random.Random(f"zh:{name}")
    texts = []
    for _ in range(count):
        paragraphs = _draw(pool, rng)
        for _ in range(rng.randint(1, 2)):
            paragraphs.insert(rng.randint(0, len(paragraphs)), rng.choice(news))
        texts.append("\n".join(paragraphs))
    return _frame(texts, f"{name}-zh")


def _draw(pool: list[str], rng: random.Random) -> list[str]:
    return rng.sample(pool, min(len(pool), rng.randint(3, 8)))


def _frame(texts: list[str], prefix: str) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"{prefix}-{i}" for i in range(len(texts))], "text": texts})
