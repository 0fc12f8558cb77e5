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

import numpy as np
import polars as pl
from pydantic import Field

from cleanmix.filters._tokens import c4_lines
from cleanmix.filters.text_units import CJK_CHARS, cjk_limit, cjk_share
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "c4_quality_"
# The line rules, as Polars regexes: the kernel (`_tokens.c` `c4_lines`) matches each as Polars' regex engine does.
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
        """Per document, from its lines (by the compiled kernel `_tokens.c` `c4_lines`, one pass per document where
        Polars split, stripped, matched and lowercased every line): 'lorem ipsum' or '{' in a line C4 could keep,
        the lines it keeps, their sentences, and the words of all lines (for the CJK share)."""
        array = df[TEXT].cast(pl.String).to_arrow()  # (one array, whatever the chunks)
        validity = array.buffers()[0] if array.null_count else None
        out = np.empty((5, len(array)), np.uint32)
        c4_lines(
            len(array),
            arrow_buffers.offsets(array).astype(np.int64, copy=False),
            arrow_buffers.data(array),
            validity,
            array.offset,
            self.min_words_per_line,
            self.max_word_length,
            self.terminal_punctuation,
            self.remove_citations,
            self.javascript,
            self.policy,
            out,
        )
        return df.with_columns(
            pl.Series(P + "lorem_ipsum", out[0] != 0),
            pl.Series(P + "curly_bracket", out[1] != 0),
            pl.Series(P + "kept_lines", out[2]),
            pl.Series(P + "sentences", out[3]),
            cjk_share(df, pl.Series(out[4])).alias(P + "cjk_share"),
        )

    def rules(self) -> list[Rule]:
        rules = []
        if self.lorem_ipsum:
            rules.append(Rule("lorem_ipsum", pl.col(P + "lorem_ipsum"), P + "lorem_ipsum"))
        if self.curly_bracket:
            rules.append(Rule("curly_bracket", pl.col(P + "curly_bracket"), P + "curly_bracket"))
        fewest = cjk_limit(P + "cjk_share", self.cjk_share, self.min_sentences, self.cjk_min_sentences)
        rules.append(Rule.below("too_few_sentences", P + "sentences", self.min_sentences, fewest))
        return rules
