"""CJK punctuation and full-width/half-width junk, which word-based rules do not see.

- Spaces between Han characters (`中 国 人 民`, `首页 新闻 联系我们`): Chinese prose has none,
  while OCR output, text pulled from PDFs, menus and keyword lists are full of them.
- Full-width Latin letters in text that is not CJK (`ｗｗｗ．ｘｘｘ．ｃｏｍ`): spam that dodges
  keyword filters. People's Daily sets Latin and digits full-width inside Chinese, so the rule
  looks only at text with few CJK characters.
- Half-width katakana (`ｶﾀｶﾅ`): legacy-encoding and spam text.
- Punctuation runs (`！！！！！！`, `。。。。。。`) and text that is mostly punctuation or symbols
  (keyword lists separated by `|` or `、`, emoticon spam).
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import CJK_CHAR
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "cjk_junk_"
PUNCT = r"[\p{P}\p{S}]"
PUNCT_RUN = (
    r"(?:！{6,}|？{6,}|。{6,}|，{6,}|、{6,}|…{8,}|!{6,}|\?{6,}|,{6,}|~{6,}|～{6,}|★{6,}|☆{6,}|\*{6,}"
    r"|={8,}|-{8,}|_{8,}|\.{8,}|·{6,})"
)
"""Six or more of one mark (eight of those that draw lines, and of `…`: `……` is the normal two)."""


class CjkJunk(Filter):
    type: Literal["cjk_junk"] = "cjk_junk"
    max_spaced_han: float = Field(
        0.3, ge=0, le=1,
        description="largest share of Han characters next to a space between Han characters (中 国 人, menus: 首页 新闻 关于我们)",
    )
    max_fullwidth_latin: float = Field(
        0.2, ge=0, le=1, description="largest share of full-width Latin letters (ｗｗｗ), in text that is not CJK"
    )
    max_cjk_share_for_fullwidth: float = Field(
        0.2, ge=0, le=1, description="the full-width rule applies to text with at most this share of CJK characters"
    )
    max_halfwidth_katakana: float = Field(0.2, ge=0, le=1, description="largest share of half-width katakana (ｶﾀｶﾅ)")
    max_punct_runs: float = Field(0.1, ge=0, le=1, description="largest share of characters in runs of one punctuation mark")
    max_punct: float = Field(0.5, ge=0, le=1, description="largest share of punctuation and symbols among non-space characters")
    min_chars: int = Field(20, ge=0, description="the rules apply from this many non-space characters (Han ones for spaced_han)")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        visible = text.str.len_chars() - text.str.count_matches(" ", literal=True) - text.str.count_matches("\n", literal=True)
        share = pl.max_horizontal(visible, 1)
        han = text.str.count_matches(r"\p{Han}")
        enough = visible >= self.min_chars
        spaced = text.str.extract_all(r"\p{Han}(?: \p{Han})+").list.eval((pl.element().str.len_chars() + 1) // 2).list.sum()
        runs = text.str.extract_all(PUNCT_RUN).list.eval(pl.element().str.len_chars()).list.sum()
        return df.with_columns(
            pl.when(han >= self.min_chars).then(spaced / han).alias(P + "spaced_han"),
            pl.when(enough & (text.str.count_matches(CJK_CHAR) <= self.max_cjk_share_for_fullwidth * visible))
            .then(text.str.count_matches(r"[\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}]") / share)
            .alias(P + "fullwidth_latin"),
            pl.when(enough).then(text.str.count_matches(r"[\x{FF66}-\x{FF9D}]") / share).alias(P + "halfwidth_katakana"),
            pl.when(enough).then(runs / share).alias(P + "punct_runs"),
            pl.when(enough).then(text.str.count_matches(PUNCT) / share).alias(P + "punct"),
        )

    def rules(self) -> list[Rule]:
        return [
            Rule.above(name, P + name, limit)
            for name, limit in (
                ("spaced_han", self.max_spaced_han),
                ("fullwidth_latin", self.max_fullwidth_latin),
                ("halfwidth_katakana", self.max_halfwidth_katakana),
                ("punct_runs", self.max_punct_runs),
                ("punct", self.max_punct),
            )
        ]
