"""HTML pages to their main text (trafilatura); pages without main content are removed.

trafilatura because it measured best of what we tried on real pages (`benchmarks/extract.md`):
scrapinghub's article-extraction benchmark F1 0.964 with `favor: precision` (resiliparse 0.898:
an order of magnitude faster, far more boilerplate kept), and it keeps Chinese pages whole, where
jusText-style extractors drop pages without Chinese stop words. `favor: precision` is the default, as in
FineWeb: boilerplate left in costs a pretraining corpus more than a sentence cut.

Two things are done around it. Layout tables (a table holding tables, or too few rows or columns
to be data, after Mozilla Readability's test) become plain blocks first: trafilatura otherwise
renders an old site's whole layout table, menus included, as one table (the Chinese pages of the
benchmark: F1 0.957 → 0.989). And bytes are decoded as browsers do: a BOM, else valid UTF-8,
else the charset the page declares in a `<meta>` tag (GBK and GB2312 read as GB18030, their
superset; Latin-1 as cp1252), else trafilatura's own detection (charset_normalizer).
"""

from __future__ import annotations

import codecs
import importlib.util
import re
from functools import cache
from typing import TYPE_CHECKING, ClassVar, Literal

import polars as pl
from pydantic import Field, model_validator

from cleanmix.pipelines.stage import REASON, TEXT, Frame, Mapper, StageResult, to_polars

if TYPE_CHECKING:
    from lxml.html import HtmlElement
    from trafilatura.settings import Extractor

TITLE = "page_title"
LANG = "page_lang"
INSTALL = "the extract stage needs trafilatura: pip install 'cleanmix[html]'"
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
DECLARED = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
PRESCAN = 8192
"""Bytes searched for a declared charset (a `<head>` with long scripts declares it late)."""
BROWSER_CODECS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030", "big5": "big5hkscs",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "euc-kr": "cp949",
}
"""Labels whose bytes browsers decode with a superset codec (WHATWG Encoding Standard)."""
LANG_CODE = re.compile(r"[a-z]{2,3}")
CONTENT_LANGUAGE = "//meta[translate(@http-equiv, 'CONTENTLAGU', 'contentlagu')='content-language']/@content"


@cache
def extractor_options(favor: str, fast: bool, tables: bool, comments: bool) -> Extractor:
    """trafilatura's options, built once per worker and setting."""
    from trafilatura.settings import Extractor

    return Extractor(fast=fast, precision=favor == "precision", recall=favor == "recall", tables=tables, comments=comments)


def decode(data: bytes) -> tuple[str, str]:
    """The page as text, and the codec that read it: BOM, UTF-8, the declared charset, detection."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace"), codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if declared := _declared_codec(data[:PRESCAN]):
        return data.decode(declared, "replace"), declared
    from trafilatura.utils import detect_encoding

    for guess in detect_encoding(data):
        try:
            return data.decode(guess), codecs.lookup(guess).name
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", "replace"), "utf-8"


def _declared_codec(head: bytes) -> str | None:
    """The codec of the first `<meta charset>` or `http-equiv` charset Python knows, if any."""
    for match in DECLARED.finditer(head):
        label = match.group(1).decode("ascii").lower()
        try:
            return codecs.lookup(BROWSER_CODECS.get(label, label)).name
        except LookupError:
            continue
    return None


def unwrap_layout_tables(tree: HtmlElement) -> HtmlElement:
    """Turn layout tables into plain blocks (cells become `div`s), innermost first; data tables stay."""
    for table in reversed(tree.xpath("//table")):
        if _is_layout(table):
            for element in table.iter("table", "tbody", "thead", "tfoot", "tr", "td", "th"):
                element.tag = "div"
    return tree


def _is_layout(table: HtmlElement) -> bool:
    """Readability's test: marked presentational, or nested tables, or too small to be data;
    captions, headers, column groups or a summary make data."""
    if table.get("role") == "presentation" or table.get("datatable") == "0":
        return True
    if table.get("summary") or table.xpath(".//caption|.//th|.//thead|.//tfoot|.//colgroup"):
        return False
    if table.xpath(".//table"):
        return True
    rows = table.xpath(".//tr")
    columns = max((len(row.xpath("./td|./th")) for row in rows), default=0)
    if len(rows) == 1 or columns == 1:
        return True
    return len(rows) < 10 and columns <= 4 and len(rows) * columns <= 10


def page_lang(tree: HtmlElement) -> str | None:
    """The language the page declares (`<html lang>`, else Content-Language), as its primary subtag."""
    declared = tree.get("lang") or tree.get("xml:lang") or next(iter(tree.xpath(CONTENT_LANGUAGE)), None)
    if not declared:
        return None
    primary = re.split(r"[-_,;\s]", declared.strip().lower(), maxsplit=1)[0]
    return primary if LANG_CODE.fullmatch(primary) else None


class Extract(Mapper):
    """The main text of each page in `html_column` becomes `text`; pages without one are removed
    (`extract:no_content`; `extract:failed` if the extractor raised). A row without a page keeps
    the text it has (a WET record's, which the crawler extracted), or is removed if it has none.
    Adds `page_title` and `page_lang` (the language the page declares: a hint, not a measurement)."""

    type: Literal["extract"] = "extract"
    makes_text: ClassVar[bool] = True
    html_column: str = Field(
        "html", min_length=1, description="column holding the pages: strings, or bytes as served (the encoding is detected)"
    )
    favor: Literal["precision", "balanced", "recall"] = Field(
        "precision", description="precision: leave out doubtful blocks (boilerplate costs more than a lost line); recall: keep them"
    )
    fast: bool = Field(False, description="skip trafilatura's fallback extractors (readability, jusText): faster, a little less accurate")
    include_tables: bool = Field(True, description="keep the text of data tables (layout tables are always unwrapped)")
    include_comments: bool = Field(False, description="keep readers' comments below the article")
    min_chars: int = Field(
        20, ge=1, description="main text shorter than this many characters is no main content (a lone heading or label)"
    )

    @model_validator(mode="after")
    def _installed(self) -> Extract:
        """Say how to install trafilatura when the pipeline is checked, before anything runs."""
        if importlib.util.find_spec("trafilatura") is None:
            raise ValueError(INSTALL)
        return self

    def input_columns(self) -> tuple[str, ...]:
        return (self.html_column,)

    def output_columns(self) -> tuple[str, ...]:
        return (TITLE, LANG)

    def filter(self, data: Frame) -> Frame:
        """The kept pages, their text extracted; a frame without a `text` column is fine."""
        return super().filter(_with_text(data))

    def annotate(self, data: Frame) -> Frame:
        return super().annotate(_with_text(data))

    def process(self, df: pl.DataFrame) -> StageResult:
        options = extractor_options(self.favor, self.fast, self.include_tables, self.include_comments)
        columns: dict[str, list[str | None]] = {TEXT: [], TITLE: [], LANG: [], REASON: []}
        encodings: dict[str, int] = {}
        extracted_pages = 0
        given = df.get_column(TEXT).to_list() if TEXT in df.columns else [None] * df.height
        for page, text in zip(self._pages(df).to_list(), given):
            title = lang = reason = None
            if page:
                markup, encoding = decode(page) if isinstance(page, bytes) else (page, "str")
                encodings[encoding] = encodings.get(encoding, 0) + 1
                try:
                    text, title, lang = extract(markup, options)
                except Exception:  # noqa: BLE001 - one malformed page of millions must not stop a run: it is counted
                    reason = f"{self.label}:failed"
            if reason is None and (text is None or len(text) < self.min_chars):
                reason, text = f"{self.label}:no_content", None
            extracted_pages += bool(page) and reason is None
            for column, value in zip(columns, (text, title, lang, reason)):
                columns[column].append(value)
        extracted = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))
        removed = extracted.get_column(REASON).is_not_null()
        kept = df.with_columns(extracted.drop(REASON)).filter(~removed)
        rejected = df.with_columns(extracted.drop(TEXT)).filter(removed)
        modified = {f"{self.label}:extracted": extracted_pages} if extracted_pages else {}
        return StageResult(kept, rejected, modified, tallies={"encodings": encodings})

    def _pages(self, df: pl.DataFrame) -> pl.Series:
        if self.html_column not in df.columns:
            raise ValueError(f"the frame has no '{self.html_column}' column (columns: {', '.join(df.columns)}): set html_column")
        pages = df.get_column(self.html_column)
        if pages.dtype not in (pl.Binary, pl.String, pl.Null):
            raise TypeError(f"the '{self.html_column}' column holds {pages.dtype}, expected pages as strings or bytes")
        return pages


def extract(markup: str, options: Extractor) -> tuple[str | None, str | None, str | None]:
    """The main text, the title and the declared language of one page (parsed once)."""
    import trafilatura
    from trafilatura.metadata import extract_title
    from trafilatura.utils import load_html

    tree = load_html(markup)
    if tree is None:
        return None, None, None
    title, lang = extract_title(tree), page_lang(tree)
    return trafilatura.extract(unwrap_layout_tables(tree), options=options), title, lang


def _with_text(data: Frame) -> Frame:
    """`data` with an empty `text` column if it has none: the stage writes it."""
    df = to_polars(data)
    if TEXT in df.columns:
        return data
    df = df.with_columns(pl.lit(None, pl.String).alias(TEXT))
    return df if isinstance(data, pl.DataFrame) else df.to_arrow()
