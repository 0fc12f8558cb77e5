"""Generates `_token_tables.h`: the character classes of the tokenizer kernel (`_tokens.c`), as ranges of code points,
and the code points that Polars' `str.to_lowercase` changes (its token measures lowercase stop-word candidates).

The kernel must see each class exactly as Polars' regex engine (the Rust `regex` crate) does, whose Unicode
version is not Python's `unicodedata`'s, so every code point is put to the installed Polars, class by class.
tests/test_token_kernel.py regenerates the header and compares it with the committed one (a Polars upgrade
that changes Unicode fails there): rerun `python -m cleanmix.filters.token_tables` then, and rebuild.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from cleanmix.filters.c4_quality import POLICY, SENTENCE_ABBREVIATION
from cleanmix.filters.text_units import CJK, CLOSING, OPENING, TOKEN_ABBREVIATIONS

HEADER = Path(__file__).with_name("_token_tables.h")
CLASSES = {
    "SPACE": r"\s",
    "CJK": rf"[{CJK}]",
    "OPENING": rf"[{OPENING}]",
    "CLOSING": rf"[{CLOSING}]",
    "LETTER": r"\p{L}",
    "LOWER": r"\p{Ll}",
    "UPPER": r"\p{Lu}",
    "DIGIT": r"\d",
    "WORD": r"\w",
}
"""Flag name → the class as text_units' patterns write it."""


def class_ranges() -> dict[str, list[tuple[int, int]]]:
    """Each class's members as inclusive ranges of code points, as the installed Polars matches them."""
    points = np.array([c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])  # (surrogates are no characters)
    chars = pl.Series([chr(c) for c in points], dtype=pl.String)
    ranges = {}
    for name, pattern in CLASSES.items():
        members = points[chars.str.contains(rf"^{pattern}$").to_numpy()]
        starts = np.flatnonzero(np.diff(members, prepend=-2) != 1)
        ends = np.append(starts[1:], len(members)) - 1
        ranges[name] = [(int(members[s]), int(members[e])) for s, e in zip(starts, ends)]
    return ranges


def lowercase_changes() -> list[tuple[int, int]]:
    """The code points that the installed Polars' `str.to_lowercase` changes, alone, as inclusive ranges: the kernel
    lowercases a token in C only where it has none of them besides A-Z (Rust's only context rule, the final sigma, is
    Σ's, which is one of them)."""
    points = np.array([c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    chars = pl.Series([chr(c) for c in points], dtype=pl.String)
    members = points[(chars.str.to_lowercase() != chars).to_numpy()]
    starts = np.flatnonzero(np.diff(members, prepend=-2) != 1)
    ends = np.append(starts[1:], len(members)) - 1
    return [(int(members[s]), int(members[e])) for s, e in zip(starts, ends)]


def c_ranges(name: str, ranges: list[tuple[int, int]]) -> list[str]:
    return [
        f"static const uint32_t RANGES_{name}[][2] = {{",
        *("    " + " ".join(f"{{0x{a:X}, 0x{b:X}}}," for a, b in ranges[i : i + 6]) for i in range(0, len(ranges), 6)),
        "};",
    ]


def c4_section() -> list[str]:
    """What c4_quality's line kernel (`c4_lines` in `_tokens.c`) takes from Polars and c4_quality besides the classes:
    the non-ASCII code points whose lowercase holds ASCII (it looks for ASCII phrases in lowercased lines), POLICY's
    phrases and SENTENCE_ABBREVIATION's words. It strips lines by SPACE: checked to be what `str.strip_chars()` strips."""
    points = np.array([c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    chars = pl.Series([chr(c) for c in points], dtype=pl.String)
    stripped = points[(chars.str.strip_chars() == "").to_numpy()]
    if stripped.tolist() != points[chars.str.contains(r"^\s$").to_numpy()].tolist():
        raise ValueError("str.strip_chars() no longer strips exactly \\s: teach _tokens.c's c4_lines to strip apart")
    lowered = chars.str.to_lowercase().to_list()
    if lowered[:128] != [chr(c).lower() for c in range(128)]:
        raise ValueError("str.to_lowercase() changed ASCII: teach _tokens.c's c4_lines")
    to_ascii = [(int(c), low) for c, low in zip(points[128:], lowered[128:]) if any(ch < "\x80" for ch in low)]
    phrases = POLICY.split("|")
    if not all(re.fullmatch("[a-z ]+", phrase) for phrase in phrases):
        raise ValueError("POLICY is no longer plain lowercase phrases: teach _tokens.c's c4_lines the new pattern")
    words = re.fullmatch(r"\(\?:\^\|\\s\)\(\?:\[A-Z\]\|([A-Za-z|\\.]+)\)\\\.\\s", SENTENCE_ABBREVIATION)
    if not words:
        raise ValueError("SENTENCE_ABBREVIATION is no longer (?:^|\\s)(?:[A-Z]|words)\\.\\s: teach _tokens.c's c4_lines the new pattern")

    def octal(text: str) -> str:  # (non-ASCII characters as byte 0x80: no ASCII phrase holds one)
        return "".join(ch if " " <= ch < "\x7f" and ch not in '"\\?' else "\\200" if ch >= "\x80" else f"\\{ord(ch):03o}" for ch in text)

    return [
        "/* c4_lines: non-ASCII code points whose lowercase (Polars' str.to_lowercase) holds ASCII, and that lowercase with",
        " * each non-ASCII character as byte 0x80. */",
        "#define LOWERCASE_TO_ASCII(X) " + " ".join(f'X(0x{c:X}, "{octal(low)}")' for c, low in to_ascii),
        "/* c4_quality.POLICY's phrases, and SENTENCE_ABBREVIATION's words after [A-Z], in their order. */",
        "#define POLICY_PHRASES " + ", ".join(f'"{phrase}"' for phrase in phrases),
        "#define SENTENCE_ABBREVIATION_WORDS " + ", ".join(f'"{word.replace(chr(92), "")}"' for word in words.group(1).split("|")),
    ]


def header() -> str:
    lines = [
        "/* Generated by filters/token_tables.py from the installed Polars' regex classes: do not edit. */",
        "/* Each class: inclusive ranges of code points. */",
    ]
    names = []
    for name, ranges in class_ranges().items():
        names.append(name)
        lines += c_ranges(name, ranges)
    lines.append("#define TOKEN_CLASSES(X) " + " ".join(f"X({name})" for name in names))
    lines.append("/* The code points that Polars' str.to_lowercase changes (each alone). */")
    lines += c_ranges("LOWERCASE_CHANGES", lowercase_changes())
    words = re.fullmatch(r"\(\?:\[A-Za-z\]\\\.\)\+\|\(\?:([A-Za-z|]+)\)\\\.", TOKEN_ABBREVIATIONS)
    if not words:
        raise ValueError("TOKEN_ABBREVIATIONS is no longer initials | (?:words)\\.: teach _tokens.c the new pattern")
    lines.append("/* TOKEN_ABBREVIATIONS' words, in their order (the first that matches wins). */")
    lines.append("#define TOKEN_ABBREVIATION_WORDS " + ", ".join(f'"{word}"' for word in words.group(1).split("|")))
    lines += c4_section()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    HEADER.write_text(header())
