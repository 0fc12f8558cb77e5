"""C4's page rules (Raffel et al. 2020, section 2.2; the TensorFlow Datasets c4_utils code).

C4 keeps only lines that end a sentence, have 3+ words, and mention no JavaScript or cookie
policy; a page then needs 5 sentences in those lines, and no "lorem ipsum" or "{" in them. This
stage decides pages by those rules and leaves the text as it is. Chinese lines end with `。！？`
(maybe followed by a closing quote) and each Han character is a word.

Pages that are mostly CJK need no sentences by default: FineWeb-2 does not apply C4's rules
outside English, as they lowered the scores of its multilingual ablation models (its README,
"Data Filtering"). In Chinese news they drop poems, name lists and tables of figures (5% of
People's Daily), and what else they catch, other stages catch too.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import CJK, CJK_CHAR, CJK_CHARS, cjk_limit, cjk_share, lines
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "c4_quality_"
CITATION = r"\[\d*]|\[edit]|\[citation needed]"
POLICY = r"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies"
ENDS_LINE = r"(?:[.?!\"'”’]|[。！？][」』）]*|[。！？]（[^（）]*）)$"
"""A sentence end, or a closing quote (typographic ones too: C4's code knew only ASCII quotes);
in CJK text maybe followed by closing brackets or a bracketed credit (`。（新华社）`)."""
SENTENCE_END = r"[.!?]+[\"'”’)\]]*(?:\s|$)|[。！？]+[”’」』）]*"
JOINED = r"\p{Ll}[.!?]\p{Lu}"
"""Sentences run together without a space (`Wednesday.The`)."""
SENTENCE_ABBREVIATION = r"(?:^|\s)(?:[A-Z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|vs|etc|e\.g|i\.e|U\.S|No|Inc|Ltd|Co)\.\s"
"""A period that ends an abbreviation, not a sentence, in C4's sentence count. Apart from
text_units.TOKEN_ABBREVIATIONS (the words the tokenizer keeps whole) on purpose: this one has `etc.`
and `No.` but no months, and changing either list would change the figures it reproduces."""


def sentences(line: pl.Expr) -> pl.Expr:
    """Sentences in a line that ends one: sentence marks followed by a space or the end, at least 1."""
    text = line.str.replace_all(r"\.{2,}", "…")
    ends = text.str.count_matches(SENTENCE_END) + text.str.count_matches(JOINED) - text.str.count_matches(SENTENCE_ABBREVIATION)
    return pl.max_horizontal(ends, pl.lit(1, pl.UInt32))


class C4Quality(Filter):
    type: Literal["c4_quality"] = "c4_quality"
    shared: ClassVar = (CJK_CHARS,)
    min_sentences: int = Field(5, ge=0, description="fewest sentences in the lines C4 keeps")
    min_words_per_line: int = Field(3, ge=0, description="a line with fewer words (CJK characters count) is not kept")
    max_word_length: int = Field(1000, ge=1, description="a line with a longer word is not kept")
    terminal_punctuation: bool = Field(True, description="keep only lines that end a sentence")
    remove_citations: bool = Field(True, description="drop [1], [edit], [citation needed] before checking line ends")
    javascript: bool = Field(True, description="lines mentioning javascript are not kept")
    policy: bool = Field(True, description="lines about cookies, privacy policy or terms of use are not kept")
    lorem_ipsum: bool = Field(True, description="drop pages with 'lorem ipsum' in a kept line")
    curly_bracket: bool = Field(True, description="drop pages with '{' in a kept line (code)")
    cjk_share: float = Field(0.5, ge=0, le=1, description="a page where at least this share of words are CJK characters is a CJK page")
    cjk_min_sentences: int = Field(
        0, ge=0, description="fewest sentences on a CJK page (FineWeb-2 leaves C4's rules out for languages other than English)"
    )

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        """Per line: words and whether C4 could keep it (a candidate); the checks that read the
        lowercased line and the sentence counts run on the candidates only (most lines are not)."""
        line = pl.col("_line").str.strip_chars()
        cited, lower = pl.col("_cited"), pl.col("_lower")  # computed once per line, read by several rules
        candidate = ~pl.col("_long_word") & (pl.col("_words") >= self.min_words_per_line)
        if self.terminal_punctuation:
            candidate = candidate & cited.str.contains(ENDS_LINE) & ~cited.str.ends_with("...")
        javascript = lower.str.contains("javascript", literal=True) if self.javascript else pl.lit(False)
        policy = lower.str.contains(POLICY) if self.policy else pl.lit(False)
        kept = pl.col("_candidate") & ~javascript & ~policy  # (a column: a literal would sum to 1 per document)
        per_line = df.select(lines(pl.col(TEXT)).alias("_line")).with_row_index("_doc").explode("_line")
        per_line = per_line.with_columns(
            self._long_word(per_line["_line"]).alias("_long_word"),
            (line.str.replace_all(CITATION, "") if self.remove_citations else line).alias("_cited"),
            line.str.count_matches(rf"{CJK_CHAR}|[^\s{CJK}]+").alias("_words"),
        ).with_columns(candidate.fill_null(False).alias("_candidate"))
        candidates = (
            per_line.filter("_candidate")
            .with_columns(cited.str.to_lowercase().alias("_lower"))
            .group_by("_doc")
            .agg(
                lower.str.contains("lorem ipsum", literal=True).any().alias(P + "lorem_ipsum"),
                (~javascript & cited.str.contains("{", literal=True)).any().alias(P + "curly_bracket"),
                kept.sum().alias(P + "kept_lines"),
                pl.when(kept).then(sentences(cited)).otherwise(0).sum().alias(P + "sentences"),
            )
        )
        per_doc = (
            per_line.group_by("_doc", maintain_order=True)
            .agg(pl.col("_words").sum())
            .join(candidates, on="_doc", how="left", maintain_order="left")
            .with_columns(
                pl.col(P + "lorem_ipsum", P + "curly_bracket").fill_null(False), pl.col(P + "kept_lines", P + "sentences").fill_null(0)
            )
            .select(P + "lorem_ipsum", P + "curly_bracket", P + "kept_lines", P + "sentences", "_words")
        )
        return (
            pl.concat([df, per_doc], how="horizontal")
            .with_columns(cjk_share(df, pl.col("_words")).alias(P + "cjk_share"))
            .drop("_words")
        )

    def _long_word(self, texts: pl.Series) -> pl.Series:
        """Lines with a word (a run without spaces or CJK) longer than `max_word_length`; only lines
        longer than that are split, as a counted regex repetition is slow."""
        long_lines = texts.str.len_chars() > self.max_word_length
        if not long_lines.any():
            return long_lines
        longest = texts.filter(long_lines).str.extract_all(rf"[^\s{CJK}]+").list.eval(pl.element().str.len_chars()).list.max()
        return long_lines.scatter(long_lines.arg_true(), longest.fill_null(0) > self.max_word_length)

    def rules(self) -> list[Rule]:
        rules = []
        if self.lorem_ipsum:
            rules.append(Rule("lorem_ipsum", pl.col(P + "lorem_ipsum"), P + "lorem_ipsum"))
        if self.curly_bracket:
            rules.append(Rule("curly_bracket", pl.col(P + "curly_bracket"), P + "curly_bracket"))
        fewest = cjk_limit(P + "cjk_share", self.cjk_share, self.min_sentences, self.cjk_min_sentences)
        rules.append(Rule.below("too_few_sentences", P + "sentences", self.min_sentences, fewest))
        return rules
