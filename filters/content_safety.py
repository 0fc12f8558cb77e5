"""`content_safety`: adult, gambling, drug and weapon spam found by word lists, in English and Chinese.

Why word lists: Chinese web spam (sex ads, online casinos, drugs for sale) is a few hundred stock
phrases repeated across millions of pages, and no classifier of the Western tools knows them. The
lists ship in `resources/content_safety/` (sources, licences and how terms were graded there);
users add their own by path.

How text is matched, so that spam cannot hide and innocent words do not fire:
- the text is folded first: NFKC (full-width `ｓｅｘ` is `sex`), lower case, invisible characters
  dropped, letters spaced or dotted one by one joined (`s.e.x`, `p o r n`), digits and signs inside
  words read as letters (`p0rn`, `$ex`), and spaces or dots between Han characters removed (`博 彩`);
- one regular expression holds every term and every allowed word, longest first, and Polars runs it
  over every line of the column (a term never spans a line break; Rust's regex crate compiles a
  literal alternation to an Aho-Corasick automaton: 3× pyahocorasick's scan from Python,
  `benchmarks/content_safety.md`). CJK terms need
  no word boundaries; a Latin term must stand as a word (an `s` plural allowed), so `Scunthorpe`,
  `Essex` and `cocktail` do not hit;
- matches do not overlap and the longest wins where several start at one place, so an allowed
  word that holds a term (`成人教育`, `出口交易`, `军人妻子`) is matched instead of it and not
  counted, and `free porn` counts once, not also as `porn`.

The rule: a document goes when a hit is of the severest level (`severe`), or when it has at least
`min_hits` hits and more than `max_per_1k` hits per 1,000 characters (`rate`), or when one line of
a page of several holds at least `paragraph_min_terms` distinct terms and more than
`paragraph_per_1k` of them per 1,000 of its characters (`paragraph`: spam is injected as a block,
which a long page's rate dilutes, while news that names such words spreads them out), counting
hits of `min_severity` (2) or more: severity 1 marks words news and medicine use too (sex, 毒品,
cocaine), listed but never decisive. The counted hits, the rate, the densest line's rate, the
highest severity, the categories and the terms found are columns (`mode: annotate` keeps every
document).

Beside the lists, a small line-level spam model (`model`, on by default; `filters/spam_model.py`)
scores every line of a page, folded as above: `content_safety_spam_score` is the page's highest line
score, `content_safety_spam_term_score` the highest of a line that holds a listed term of any
severity, and the `model` rule removes a page whose term score reaches `model_threshold` (or, with
`model_needs_term: false`, whose score does). The lists are precise on the wording they hold and
miss the rest; the model finds spam worded otherwise, and the term keeps it off lines whose only
fault is marketing wording (free workshops, share on WeChat). A page that is spam throughout has
several such lines, with or without terms: `content_safety_spam_second_score`, the second highest
score among its distinct lines of 20 words or more, removes it as `model_page` at the same threshold
(one marketing line, or a repeated award title, does not).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cleanmix.filters.classifier import model_labels
from cleanmix.filters.spam_model import CLEAN, LONG_WORDS, MODEL, scored_lines
from cleanmix.pipelines.stage import TEXT, Filter, Rule, file_stamp

P = "content_safety_"
RESOURCES = Path(__file__).parent / "resources" / "content_safety"
LANGUAGES = ("en", "zh")
SEVERITIES = (1, 2, 3)
SPAM_SCORES = ("spam_score", "spam_term_score", "spam_second_score")
MAX_TERMS_SHOWN = 5
"""Distinct terms listed per document in `content_safety_terms`."""

INVISIBLE = "[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]"
MARK = r"[.\-_*·•|/\\~+]"
CHAR = "[a-z0-9@$]"
LEETABLE = "[a-z0134579@$]"
DOTTED_HINT = rf"{CHAR}{MARK}{CHAR}{MARK}{CHAR}"
SPACED_HINT = rf"(?:^|\s){CHAR} {CHAR} {CHAR}(?:\s|$)"
LEET_HINT = rf"(?-u:\b){LEETABLE}*[a-z]{LEETABLE}*[0134579@$]{LEETABLE}*|(?:^|[^a-z0-9@$])[@$][a-z]{LEETABLE}*"
"""Where disguised Latin words may be (Rust regex over the column, no look-around): only those rows,
and for digits only those words, go through Python. Digits and signs count as letters in a word of
letters and 0 1 3 4 5 7 9 @ $ with one after a letter, or starting with @ or $ (`p0rn`, `ca$in0`,
`$ex`), not in ordinals (`1st`) or codes with 2, 6 or 8."""
DOTTED = re.compile(rf"(?<!{CHAR}){CHAR}(?:{MARK}{CHAR}){{2,}}(?!{CHAR})")
"""Three or more single characters joined by one mark each: `s.e.x`, `x-x-x`, `p*o*r*n`."""
SPACED = re.compile(rf"(?<!\S){CHAR}(?: {CHAR}){{2,}}(?!\S)")
"""Three or more single characters between single spaces: `p o r n` (and `f r e e p o r n`, words run together)."""
LEET = str.maketrans("0134579@$", "oieastgas")
HAN_GAP = rf"(\p{{Han}})(?:{MARK}|\s)+(\p{{Han}})"
SPACES = r"[\s\-_]+"


def fold(texts: pl.Series) -> pl.Series:
    """The form terms are looked for in (see the module's docstring); terms are folded the same way."""
    folded = texts.str.normalize("NFKC").str.to_lowercase().str.replace_all(INVISIBLE, "")
    hints = pl.DataFrame({"dotted": folded.str.contains(DOTTED_HINT), "spaced": folded.str.contains(SPACED_HINT),
                          "leet": folded.str.extract_all(LEET_HINT)})
    suspect = (hints["dotted"] | hints["spaced"] | (hints["leet"].list.len() > 0)).fill_null(False)
    if suspect.any():
        rows = suspect.arg_true()
        plain = [_letters(*row) for row in zip(folded.gather(rows).to_list(), *(c.to_list() for c in hints[rows].get_columns()))]
        folded = folded.scatter(rows, plain)
    for _ in range(2):  # non-overlapping matches: the second pass joins the gaps the first left (博 彩 网)
        folded = folded.str.replace_all(HAN_GAP, "${1}${2}")
    return folded.str.replace_all(SPACES, " ")


def _letters(text: str, dotted: bool, spaced: bool, leet: list[str]) -> str:
    """Disguised Latin words made plain: `s.e.x`, `p o r n`, `p0rn`, `$ex` (the words with digits found by `LEET_HINT`)."""
    if dotted:
        text = DOTTED.sub(lambda m: re.sub(MARK, "", m.group()), text)
    if spaced:
        text = SPACED.sub(lambda m: m.group().replace(" ", ""), text)
    if leet:
        words = sorted({word if re.match(LEETABLE, word) else word[1:] for word in leet}, key=len, reverse=True)  # hint's lead dropped
        pattern = "(?<![a-z0-9@$])(?:" + "|".join(map(re.escape, words)) + ")(?![a-z0-9@$])"
        text = re.sub(pattern, lambda m: m.group().translate(LEET), text)
    return text


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


@dataclass(frozen=True)
class Term:
    text: str
    category: str
    severity: int


class WordList(BaseModel):
    """A user's list: a file of `term<TAB>category<TAB>severity` lines (category and severity optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="a UTF-8 text file (or .gz), one term per line: term[<TAB>category[<TAB>severity 1-3]]; # comments")
    category: str = Field("custom", min_length=1, description="category of lines that name none")
    severity: int = Field(2, ge=1, le=3, description="severity of lines that name none")

    @field_validator("path")
    @classmethod
    def _readable(cls, path: str) -> str:
        absolute = Path(path).expanduser().absolute()
        read_terms(absolute, "custom", 2)  # a bad line stops the run before it starts
        return str(absolute)


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise ValueError(f"word list {path} does not exist or is not a file")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"word list {path} is not readable UTF-8 text ({error})") from None
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def read_terms(path: Path, category: str, severity: int) -> list[Term]:
    """The terms of a list file; a malformed line is an error naming the file and the line."""
    terms = []
    lines = _lines(path)
    folded = fold(pl.Series([line.split("\t")[0] for _, line in lines], dtype=pl.String)).str.strip_chars().to_list()
    for (number, line), term in zip(lines, folded):
        fields = line.split("\t")
        level = fields[2].strip() if len(fields) > 2 else str(severity)
        if not term or len(fields) > 4 or level not in {str(s) for s in SEVERITIES}:
            raise ValueError(
                f"word list {path}, line {number}: expected term<TAB>category<TAB>severity (1, 2 or 3), "
                f"category and severity optional; found {line!r}"
            )
        terms.append(Term(term, (fields[1].strip() if len(fields) > 1 else "") or category, int(level)))
    return terms


def read_allowed(path: Path) -> list[str]:
    words = fold(pl.Series([line for _, line in _lines(path)], dtype=pl.String)).str.strip_chars()
    return [word for word in words.to_list() if word]


class Matcher:
    """Every term and allowed word in one pattern, longest first; `lookup` grades what it matches."""

    def __init__(self, terms: list[Term], allowed: list[str]) -> None:
        graded = {term.text: term for term in terms}  # a later list's grade of a term wins
        words = sorted({*graded, *allowed}, key=lambda word: (-len(word), word))
        self.pattern = "|".join(_alternative(word) for word in words) if graded else None
        rows = [(term.text, term.category, term.severity) for term in graded.values()]
        rows += [(term.text + "s", term.category, term.severity) for term in graded.values()
                 if _latin(term.text[-1]) and term.text + "s" not in graded]
        self.lookup = pl.DataFrame(rows, schema={"match": pl.String, "category": pl.String, "severity": pl.UInt8}, orient="row")

    def find(self, lines: pl.DataFrame) -> pl.DataFrame:
        """Every counted hit in `lines` (see `split_lines`): `row`, `paragraph`, `chars`, `paragraphs`,
        `match`, `category`, `severity`, in text order. A term never spans a line break."""
        empty = pl.DataFrame(schema={"row": pl.UInt32, "paragraph": pl.UInt32, "chars": pl.UInt32, "paragraphs": pl.UInt32,
                                     "match": pl.String, "category": pl.String, "severity": pl.UInt8})
        if self.pattern is None or lines.is_empty():
            return empty
        matches = lines.select("row", "paragraph", "chars", "paragraphs", match=pl.col("folded").str.extract_all(self.pattern))
        return matches.explode("match").join(self.lookup, on="match", how="inner", maintain_order="left")


def split_lines(texts: pl.Series) -> pl.DataFrame:
    """Every line of every text: `row` (position in `texts`), `paragraph` (its line), `chars` (the
    line's length), `paragraphs` (the text's line count), `folded` (the line folded); the lists and
    the spam model both read lines."""
    lines = pl.DataFrame({"line": texts.fill_null("").str.split("\n")}).with_row_index("row").explode("line")
    return lines.select(
        "row", paragraph=pl.int_range(pl.len(), dtype=pl.UInt32).over("row"), chars=pl.col("line").str.len_chars(),
        paragraphs=pl.len().over("row").cast(pl.UInt32), folded=fold(lines.get_column("line")),
    )


def _alternative(word: str) -> str:
    """A word as a pattern: a Latin end must be a word's end (an `s` plural allowed)."""
    start = r"(?-u:\b)" if _latin(word[0]) else ""
    end = r"s?(?-u:\b)" if _latin(word[-1]) else ""
    return start + re.escape(word) + end


@cache
def load_matcher(languages: tuple[str, ...], lists: tuple[tuple[WordList, int, int], ...],
                 allow: tuple[tuple[str, int, int], ...]) -> Matcher:
    """One matcher per worker process and configuration (file stamps in the key: an edited list is read again)."""
    terms = [term for language in languages for term in read_terms(RESOURCES / f"{language}.tsv", "custom", 2)]
    terms += [term for word_list, _, _ in lists for term in read_terms(Path(word_list.path), word_list.category, word_list.severity)]
    allowed = [word for language in languages for word in read_allowed(RESOURCES / f"{language}_allow.txt")]
    allowed += [word for path, _, _ in allow for word in read_allowed(Path(path))]
    return Matcher(terms, allowed)


class ContentSafety(Filter):
    """Adult, gambling, drug and weapon spam by word lists (English and Chinese shipped, users' own by path)."""

    type: Literal["content_safety"] = "content_safety"
    languages: tuple[Literal["en", "zh"], ...] = Field(
        LANGUAGES, description="the shipped lists to use (resources/content_safety/<language>.tsv); [] for only your own"
    )
    lists: tuple[WordList, ...] = Field(
        (), description="your own lists: [{path: file, category: custom, severity: 2}], each line term[<TAB>category[<TAB>severity]]"
    )
    allow: tuple[str, ...] = Field(
        (), description="files of innocent words that contain a term (成人教育), one a line: a hit inside one does not count"
    )
    categories: tuple[str, ...] | None = Field(
        None, description="only hits of these categories count (adult, gambling, drugs, violence, profanity, hate, custom…); none: all"
    )
    max_per_1k: float = Field(1.0, ge=0, description="rate rule: more hits than this per 1,000 characters…")
    min_hits: int = Field(3, ge=1, description="…and at least this many hits")
    paragraph_per_1k: float | None = Field(
        2.0, ge=0, description="paragraph rule, for pages of several lines: a line with at least paragraph_min_terms distinct counted "
        "terms and more than this many per 1,000 of its characters (a spam block injected into a long page, which the page's rate "
        "dilutes); none: off"
    )
    paragraph_min_terms: int = Field(2, ge=1, description="…and at least this many distinct terms in that line")
    min_severity: int = Field(
        2, ge=1, le=3, description="hits of lower severity (words news and medicine use too: sex, 毒品) are listed in terms but not counted"
    )
    severe: int | None = Field(3, ge=1, le=3, description="one hit of this severity or higher removes the document; none: rate rule only")
    model: str | None = Field(
        "default", description="the line-level spam model: default (the shipped resources/content_safety/spam_model.ftz), the path of "
        "your own (a fastText model with a `clean` label, lines prepared as filters/spam_model.py says), or none: lists only"
    )
    model_threshold: float = Field(
        0.9, gt=0, le=1, description="model rule: a page goes when one of its lines scores at least this (1 − P(clean))…"
    )
    model_needs_term: bool = Field(
        True, description="…and that line holds a listed term of any severity (sex, casino, 赌博 count here): marketing "
        "wording alone (free workshops, share on WeChat) does not remove a page; false: the score alone decides"
    )

    @field_validator("model")
    @classmethod
    def _model_readable(cls, model: str | None) -> str | None:
        if model is None or model == "default":
            return model
        path = Path(model).expanduser().absolute()
        if not path.is_file():
            raise ValueError(f"{model} does not exist or is not a file: give a fastText spam model, `default` for the shipped one, "
                             "or none for the word lists alone")
        labels = model_labels(path)
        if CLEAN not in labels:
            raise ValueError(f"{model} has no `{CLEAN}` label (its labels: {', '.join(labels) or 'none'}): the score is 1 − P({CLEAN})")
        return str(path)

    def model_path(self) -> str | None:
        return str(MODEL) if self.model == "default" else self.model

    @field_validator("allow")
    @classmethod
    def _allow_readable(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        absolute = tuple(str(Path(path).expanduser().absolute()) for path in paths)
        for path in absolute:
            read_allowed(Path(path))
        return absolute

    def matcher(self) -> Matcher:
        lists = tuple((word_list, *file_stamp(word_list.path)[1:]) for word_list in self.lists)
        return load_matcher(tuple(self.languages), lists, tuple(file_stamp(path) for path in self.allow))  # type: ignore[arg-type]

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        lines = split_lines(df.get_column(TEXT))
        hits = self.matcher().find(lines)
        if self.categories is not None:
            hits = hits.filter(pl.col("category").is_in(self.categories))
        texts = df.get_column(TEXT)
        dense = (hits.filter((pl.col("severity") >= self.min_severity) & (pl.col("paragraphs") > 1))  # one paragraph: rate's alone
                 .group_by("row", "paragraph").agg(pl.col("match").n_unique().alias("terms"), pl.col("chars").first())
                 .filter(pl.col("terms") >= self.paragraph_min_terms)
                 .group_by("row").agg((pl.col("terms").cast(pl.Float64) * 1000 / pl.col("chars").clip(lower_bound=1)).max()
                                      .alias(P + "paragraph_per_1k")))
        per_row = hits.group_by("row", maintain_order=True).agg(
            (pl.col("severity") >= self.min_severity).sum().cast(pl.UInt32).alias(P + "hits"),
            pl.col("severity").max().alias(P + "severity"),
            pl.col("category").unique().sort().str.join(",").alias(P + "categories"),
            pl.col("match").unique(maintain_order=True).head(MAX_TERMS_SHOWN).str.join("|").alias(P + "terms"),
        )
        rows = (pl.DataFrame({"row": pl.arange(0, df.height, dtype=pl.UInt32, eager=True)})
                .join(per_row, on="row", how="left").join(dense, on="row", how="left"))
        if (path := self.model_path()) is not None:
            rows = rows.join(self.spam_scores(lines, hits, path), on="row", how="left")
        chars = texts.str.len_chars().fill_null(0).clip(lower_bound=1)
        return df.with_columns(
            rows.get_column(P + "hits").fill_null(0),
            (rows.get_column(P + "hits").fill_null(0).cast(pl.Float64) * 1000 / chars).alias(P + "per_1k"),
            rows.get_column(P + "paragraph_per_1k").fill_null(0.0),
            rows.get_column(P + "severity").fill_null(0),
            rows.get_column(P + "categories"),
            rows.get_column(P + "terms"),
            *[rows.get_column(P + name).fill_null(0.0) for name in SPAM_SCORES if P + name in rows.columns],
        )

    @staticmethod
    def spam_scores(lines: pl.DataFrame, hits: pl.DataFrame, path: str) -> pl.DataFrame:
        """Per page: the highest line score (`spam_score`), the highest of a line holding a listed term
        of any severity (`spam_term_score`), and the second highest of its distinct long lines
        (`spam_second_score`)."""
        marked = hits.select("row", "paragraph").unique().with_columns(term=pl.lit(True))
        scored = scored_lines(lines, path).join(marked, on=["row", "paragraph"], how="left")
        long_lines = scored.filter(pl.col("words") >= LONG_WORDS).unique(["row", "text"])
        second = long_lines.group_by("row").agg(pl.col("score").sort(descending=True).get(1, null_on_oob=True)
                                                .alias(P + "spam_second_score"))
        return (scored.group_by("row")
                .agg(pl.col("score").max().alias(P + "spam_score"),
                     pl.col("score").filter(pl.col("term").fill_null(False)).max().alias(P + "spam_term_score"))
                .join(second, on="row", how="left"))

    def rules(self) -> list[Rule]:
        rules = []
        if self.severe is not None:
            rules.append(Rule("severe", pl.col(P + "severity") >= self.severe, P + "severity", self.severe))
        rate = (pl.col(P + "hits") >= self.min_hits) & (pl.col(P + "per_1k") > self.max_per_1k)
        rules.append(Rule("rate", rate, P + "per_1k", self.max_per_1k))
        if self.paragraph_per_1k is not None:
            rules.append(Rule("paragraph", pl.col(P + "paragraph_per_1k") > self.paragraph_per_1k, P + "paragraph_per_1k",
                              self.paragraph_per_1k))
        if self.model is not None:
            score = P + ("spam_term_score" if self.model_needs_term else "spam_score")
            rules.append(Rule("model", pl.col(score) >= self.model_threshold, score, self.model_threshold))
            second = P + "spam_second_score"
            rules.append(Rule("model_page", pl.col(second) >= self.model_threshold, second, self.model_threshold))
        return rules
