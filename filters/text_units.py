"""Script-aware text units shared by the quality filters, as Polars regular expressions.

Chinese and Japanese have no spaces between words, so a Han or kana character is one token;
elsewhere a token is a word or one punctuation mark, close to spaCy's English tokenizer (which
the published filters use through datatrove) so English figures match theirs.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from cleanmix.filters._script import cjk_counts
from cleanmix.filters._tokens import token_lists
from cleanmix.pipelines import arrow_buffers
from cleanmix.pipelines.stage import TEXT, SharedColumn

CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\x{30FC}"
"""Characters that are tokens on their own (Han, kana and the long-vowel mark)."""

TOKEN_ABBREVIATIONS = (
    r"(?:[A-Za-z]\.)+"
    r"|(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Inc|Ltd|Co|Corp|vs|Gov|Gen|Rep|Sen|Mt|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\."
)
"""Words the tokenizer keeps whole with their period, as spaCy does: initials (J., U.S., e.g.) and
common abbreviations. Apart from c4_quality's SENTENCE_ABBREVIATION on purpose: each list is tuned
to the figures it reproduces (token counts here, C4's sentence counts there)."""
OPENING = r"(\[{<\"'“”‘’„«»¿¡*#&_§%+=~$£€¥…,:;!?،؛—–"
CLOSING = r")\]}>\"'“”‘’«».,:;!?،؛…%*_—–\-"
TOKEN = (
    rf"[{CJK}]"  # one CJK character
    r"|https?://\S*[^\s.,;:!?)\]\"']"  # a web address
    rf"|(?:{TOKEN_ABBREVIATIONS})"
    r"|['’](?:s|re|ll|ve|m|d)(?-u:\b)|n['’]t(?-u:\b)"  # a contraction's tail (split off in `tokens`)
    r"|\.{2,}|-{2,}|…{2,}|—{2,}"  # an ellipsis, a dash (CJK ones, `……` and `——`, are one mark of two characters)
    rf"|[^\s{OPENING}{CJK}](?:[^\s{CJK}]*[^\s{CLOSING}{CJK}])?"  # a word: what is between spaces, less the punctuation around it
    r"|\S"  # one punctuation mark
)
"""One token: a CJK character or what spaCy's English tokenizer calls a token (text between
spaces less its leading and trailing punctuation marks, each a token)."""
URL = r"https?://\S+"
INFIXES = [
    (rf"({URL})|(\p{{L}})([-–—,]|\.{{2,}}|…)(\p{{L}})", "$1$2 $3 $4"),  # well-known, a,b, wait...what
    (rf"({URL})|(\d)([-+*^])(\d)", "$1$2 $3 $4"),  # 6-4, 2+2
    (rf"({URL})|([\p{{L}}\d])([:<>=/])(\p{{L}})", "$1$2 $3 $4"),  # key=value, and/or
    (rf"({URL})|(\p{{Ll}})(\.)(\p{{Lu}})", "$1$2 $3 $4"),  # end.Next
    (r"(\w)(n['’]t|['’](?:s|re|ll|ve|m|d))(?-u:\b)", "$1 $2"),  # don't → do n't, it's → it 's
]
"""Where spaCy splits inside a word; spaces are put there before matching TOKEN. Web addresses
match first and are left whole (with two spaces after them, which no token holds). Unicode word
boundaries make the regex engine slow on CJK text, hence the ASCII one."""

CJK_CHAR = rf"[{CJK}]"
WIDE = rf"{CJK_CHAR}|[\x{{3000}}-\x{{303F}}\x{{FF01}}-\x{{FF60}}]"
"""Characters two columns wide (CJK, full-width forms): fineweb_quality counts them twice in a line's length."""
CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
"""C0 control characters besides tab, LF and CR, and DEL (a regex class body): binary data read as text."""
CONTROL_CHAR = rf"[{CONTROL}]"
"""One control character: what garbled counts. Zero-width spaces and BOMs are left out, as real text holds them."""
CONTROL_OR_ZERO_WIDTH = rf"[{CONTROL}\u200b\ufeff]"
"""One control character, zero-width space or BOM: what normalize removes (invisible, never wanted in the output)."""
HAS_LETTER = r"\p{L}"
HAS_WORD_CHAR = r"[^\W_]"
"""A token with a letter, digit or mark is a word; the rest are symbols."""

LINE_BREAK = r"\r\n|[\r\v\f\x{1C}-\x{1E}\x{85}\x{2028}\x{2029}]"
"""Line separators besides `\\n` (the ones Python's str.splitlines knows)."""

TERMINAL = r".!?։؝؞؟۔܀܁܂।॥၊။።፧፨។៕‼‽⁇⁈⁉。！？．｡﹒﹖﹗"
"""Sentence-ending marks across scripts."""
CJK_CLOSING = r"”’」』）》"
"""Closing marks that follow a CJK sentence end (`。”`) and keep it a sentence end."""
CLOSING_QUOTES = r"\"'”’»"
"""Quotes that close a sentence after its mark (`said.”`): the sentence still ends there."""
CREDIT = r"（[^（）\n]*）"
"""A bracketed credit after a Chinese sentence (`。（新华社）`, `。（武斌摄）`)."""
CJK_TERMINAL = "。！？"
"""CJK sentence ends that closing marks or a credit may follow."""
LINE_ENDS_SENTENCE = rf"(?:[{TERMINAL}][{CLOSING_QUOTES}]*|[{CJK_TERMINAL}][{CJK_CLOSING}]+|[{CJK_TERMINAL}]{CREDIT})$"
"""A line that ends a sentence: a sentence mark (any script), maybe followed by closing quotes, or a
CJK one followed by closing marks or a bracketed credit."""
INVISIBLE = r"^[\s\p{Cf}]*$"
"""A line or paragraph with nothing visible: spaces and format characters such as U+200B."""

STOP_WORDS_EN = ["the", "be", "to", "of", "and", "that", "have", "with"]
"""Gopher's English stop words (Rae et al. 2021, appendix A)."""
STOP_WORDS_ZH = [
    *["的", "了", "是", "在", "和", "也", "就", "都", "而", "与", "及", "或", "但", "被", "把", "对", "从", "着", "这", "那"],
    *["年", "月", "日", "有", "人", "中", "为", "他", "由", "於", "為", "與", "後"],
]
"""Chinese function characters (nearly every Chinese sentence holds two of them, lists and spam rarely
do), and the rest of FineWeb-2's published `cmn_Hani` stop words (huggingface/fineweb-2,
configs/cmn_Hani.yml) less `·`, a punctuation mark that is also the decimal point of Chinese tables."""


VIEW_LIMIT = 2**31
"""Bytes of text the kernel takes at once: string views point at their bytes by 32-bit offsets."""


def _token_lists(texts: pl.Series) -> pl.Series:
    """TOKEN's matches in each text after INFIXES' rewrites, as Polars' `str.replace_all` then `str.extract_all`
    find them, by the compiled kernel (`_tokens.c`, a third of the regex engine's time); null stays null. The
    lists come as Arrow string views, Polars' own layout, so it takes them without a copy."""
    array = texts.cast(pl.String).to_arrow()  # (one array, whatever the chunks)
    offsets = arrow_buffers.offsets(array)
    if offsets[-1] >= VIEW_LIMIT:  # (a batch of 2 GiB of text is cut in two)
        if len(texts) < 2:
            raise ValueError("a text of 2 GiB or more cannot be tokenized")
        return pl.concat([_token_lists(texts.slice(0, len(texts) // 2)), _token_lists(texts.slice(len(texts) // 2))])
    validity, data = array.buffers()[0] if array.null_count else None, array.buffers()[2]
    data = data if data is not None else pa.py_buffer(b"")
    lists, views, longs, valid = (block and pa.py_buffer(block) for block in token_lists(len(array), offsets, data, validity, array.offset))
    strings = pa.Array.from_buffers(pa.string_view(), views.size // 16, [None, views, longs])
    lists = pa.Array.from_buffers(pa.large_list(pa.string_view()), len(array), [valid, lists], children=[strings])
    return arrow_buffers.series(texts.name, lists)


def tokens(text: pl.Expr) -> pl.Expr:
    """The token list of each document."""
    return text.map_batches(_token_lists, return_dtype=pl.List(pl.String))


def token_count(text: pl.Expr) -> pl.Expr:
    """The number of tokens of each document."""
    return tokens(text).list.len()


TOKEN_LISTS = SharedColumn("_cm_token_lists", tokens)
"""The token lists, computed once per batch for all the quality filters that read them."""


def token_counts(df: pl.DataFrame) -> pl.Series:
    """Tokens per document: the shared lists' lengths where a runner made them, else counted."""
    if TOKEN_LISTS.name in df.columns:
        return TOKEN_LISTS.of(df).list.len()
    return df.select(token_count(pl.col(TEXT))).to_series()


def _cjk_counts(texts: pl.Series) -> pl.Series:
    """`str.count_matches(CJK_CHAR)` by the script kernel (`_script.c`), a fifth of the regex engine's time; null
    stays null."""
    offsets, data, present = arrow_buffers.texts(texts)
    counts = np.empty(len(present), np.int64)
    cjk_counts(offsets, data, present, counts)
    return arrow_buffers.series(texts.name, arrow_buffers.numbers(counts.astype(np.uint32), present))


def cjk_chars(text: pl.Expr) -> pl.Expr:
    """The number of CJK characters of each document."""
    return text.map_batches(_cjk_counts, return_dtype=pl.UInt32)


CJK_CHARS = SharedColumn("_cm_cjk_chars", cjk_chars)
"""The CJK character counts, computed once per batch for the filters that measure CJK shares."""


def cjk_share(df: pl.DataFrame, n_tokens: pl.Series | pl.Expr) -> pl.Expr:
    """The share of a document's tokens (or words) that are CJK characters: documents at 0.5 or
    more are measured by the rules' CJK thresholds; null without any."""
    n = pl.lit(n_tokens) if isinstance(n_tokens, pl.Series) else n_tokens
    return pl.lit(CJK_CHARS.of(df)) / pl.when(n > 0).then(n)


def code_points(texts: pl.Series, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All documents as one array of code points, each followed by `gap` separators that equal no
    character and no other separator (0x110000 and up), and the offset where each document starts.
    Lets NumPy compare neighbouring characters across a whole batch at once."""
    lengths = texts.str.len_chars().fill_null(0).to_numpy().astype(np.int64) + gap
    joined = (texts.fill_null("") + "\x00" * gap).str.join("").item()
    points = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
    separators = np.flatnonzero(points == 0)  # (a NUL inside a text becomes a separator too: fine)
    points[separators] = 0x110000 + np.arange(len(separators), dtype=np.uint32)
    return points, np.cumsum(lengths) - lengths


def cjk_limit(share: str, cjk_share: float, limit: float | None, cjk: float | None) -> pl.Expr:
    """A rule's limit per document: `cjk` where the document's CJK share (column `share`) is at
    least `cjk_share`, else `limit` (none: the rule does not apply)."""
    return pl.when(pl.col(share) >= cjk_share).then(pl.lit(cjk, pl.Float64)).otherwise(pl.lit(limit, pl.Float64))


def lines(text: pl.Expr) -> pl.Expr:
    """The lines of each document, split as Python's str.splitlines (without the trailing empty one)."""
    unified = text.str.replace_all(LINE_BREAK, "\n")
    return pl.when(unified.str.ends_with("\n")).then(unified.str.slice(0, unified.str.len_chars() - 1)).otherwise(unified).str.split("\n")
