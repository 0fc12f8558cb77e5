"""Garbled text: mojibake, replacement characters, control characters (binary read as text).

None of the published filters looks for text decoded with the wrong encoding, yet crawls hold a
lot of it, and it passes word-based rules. Three signatures, all counted with Polars regexes:

- UTF-8 read as Latin-1/cp1252 leaves sequences such as `Ã©`, `â€™`: a lead byte's character
  followed by as many characters as cp1252 maps from continuation bytes (0x80-0xBF) as the lead
  announces (Czech `áš` is one short of a three-byte sequence, so it is not counted).
- UTF-8 Chinese read as GBK turns into rare Han characters (`杩堝悜鍏呮弧`): a UTF-8 lead byte
  (E4-E9) is never the first byte of a common GB2312 character. So the share of Han characters
  outside the common sets (GB2312 level 1 and Big5 level 1, ~6,800 characters, read from
  Python's codecs) exposes it: 0.1% in People's Daily, 9% in Japanese, 67% in such mojibake.
- Bytes that were never text: U+FFFD replacement characters and C0/C1 control characters.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import polars as pl
from pydantic import Field

from cleanmix.filters.text_units import CONTROL_CHAR
from cleanmix.pipelines.stage import TEXT, Filter, Rule

P = "garbled_"
CONTINUATION = (
    "\x80-\xbf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
"""What bytes 0x80-0xBF (UTF-8 continuation bytes) become when read as Latin-1 or cp1252."""
SECOND = CONTINUATION.replace("\x80-\xbf", "\x80-\x9f\xa1-\xac\xae-\xbf")
"""The same less no-break space and soft hyphen, which follow accented letters in real text."""
MOJIBAKE = {
    2: f"Â[{CONTINUATION}]|[ÃÄÅÐÑ][{SECOND}]",  # Latin-1, Latin Extended-A, Cyrillic
    3: f"[\u00e0-\u00ef][{SECOND}][{CONTINUATION}]",  # punctuation (â€™), CJK (è¿›)
    4: f"[\u00f0-\u00f4][{SECOND}][{CONTINUATION}]{{2}}",  # emoji
}
"""UTF-8 sequences read as Latin-1/cp1252, by length: the lead byte's character, then the
continuation bytes' characters (Ã©, â€™)."""


def _codec_chars(codec: str, leads: range, trails: list[int]) -> set[str]:
    chars = set()
    for lead in leads:
        for trail in trails:
            try:
                chars.add(bytes([lead, trail]).decode(codec))
            except UnicodeDecodeError:
                continue
    return chars


@cache
def rare_han() -> str:
    """A regex class: Han characters outside GB2312 level 1 and Big5 level 1 (the common ones)."""
    common = _codec_chars("gb2312", range(0xB0, 0xD8), list(range(0xA1, 0xFF)))
    common |= _codec_chars("big5", range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)])
    return r"[\p{Han}&&[^" + "".join(sorted(common)) + "]]"


class Garbled(Filter):
    type: Literal["garbled"] = "garbled"
    max_mojibake: float = Field(0.001, ge=0, le=1, description="largest share of characters in Latin-1/cp1252 mojibake pairs (Ã©, â€™)")
    max_rare_han: float = Field(0.3, ge=0, le=1, description="largest share of Han characters outside the common sets (GBK mojibake)")
    min_han_for_rare: int = Field(20, ge=1, description="the rare-Han rule applies from this many Han characters")
    max_replacement: float = Field(0.01, ge=0, le=1, description="largest share of U+FFFD replacement characters")
    max_control: float = Field(0.01, ge=0, le=1, description="largest share of control characters (besides tab and newlines)")

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        text = pl.col(TEXT)
        size = pl.max_horizontal(text.str.len_chars(), 1)
        han = text.str.count_matches(r"\p{Han}")
        return df.with_columns(
            (pl.sum_horizontal(n * text.str.count_matches(pattern) for n, pattern in MOJIBAKE.items()) / size).alias(P + "mojibake"),
            pl.when(han >= self.min_han_for_rare).then(text.str.count_matches(rare_han()) / han).alias(P + "rare_han"),
            (text.str.count_matches("\ufffd", literal=True) / size).alias(P + "replacement"),
            (text.str.count_matches(CONTROL_CHAR) / size).alias(P + "control"),
        )

    def rules(self) -> list[Rule]:
        return [
            Rule.above(name, P + name, limit)
            for name, limit in (
                ("replacement", self.max_replacement),
                ("control", self.max_control),
                ("mojibake", self.max_mojibake),
                ("rare_han", self.max_rare_han),
            )
        ]
