"""Generates `_token_tables.h`: the character classes of the tokenizer kernel (`_tokens.c`), as ranges of code points,
and the code points that Polars' `str.to_lowercase` changes (its token measures lowercase stop-word candidates); and
`_line_tables.h` and `_script_tables.h`: the classes of the line kernel (`_lines.c`) and of language ID's script
counts (`_script.c`), and what Polars' `str.strip_chars` strips; and dedup's `_fold_tables.h`: what MinHash's
normalisation (`str.to_lowercase`, then runs of punctuation and symbols to a space) does to each code point, for `_shingles.c`.

The kernels must see each class exactly as Polars' regex engine (the Rust `regex` crate) does, whose Unicode
version is not Python's `unicodedata`'s, so every code point is put to the installed Polars, class by class.
tests/test_token_kernel.py, tests/test_line_kernel.py and tests/test_script_kernel.py regenerate the headers and
compare them with the committed ones (a Polars upgrade that changes Unicode fails there): rerun
`python -m cleanmix.filters.token_tables` then, and rebuild.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from cleanmix.filters.c4_quality import POLICY, SENTENCE_ABBREVIATION
from cleanmix.filters.text_units import (
    CJK,
    CJK_CLOSING,
    CJK_TERMINAL,
    CLOSING,
    CLOSING_QUOTES,
    OPENING,
    TERMINAL,
    TOKEN_ABBREVIATIONS,
    WIDE,
)

HEADER = Path(__file__).with_name("_token_tables.h")
LINE_HEADER = Path(__file__).with_name("_line_tables.h")
SCRIPT_HEADER = Path(__file__).with_name("_script_tables.h")
FOLD_HEADER = Path(__file__).parents[1] / "dedup" / "_fold_tables.h"
SIGMA = 0x3A3
"""Σ: the one code point whose lowercase depends on its neighbours (Rust's Final_Sigma rule)."""
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
LINE_CLASSES = {
    "SPACE": r"\s",
    "FORMAT": r"\p{Cf}",
    "WIDE": WIDE,
    "TERMINAL": rf"[{TERMINAL}]",
    "CLOSING_QUOTE": rf"[{CLOSING_QUOTES}]",
    "CJK_TERMINAL": rf"[{CJK_TERMINAL}]",
    "CJK_CLOSING": rf"[{CJK_CLOSING}]",
}
"""The line kernel's classes: INVISIBLE's and gopher_repetition.ZERO_WIDTH's, fineweb_quality's WIDE, SENTENCE_END's."""
SCRIPT_CLASSES = {
    "SPACE": r"\s",
    "HAN": r"\p{Han}",
    "LETTER": r"\p{L}",
    "KANA": r"[\p{Hiragana}\p{Katakana}]",
}
"""language's classes: the Han and letter counts and the kana test of its script rule, the spaces its model input folds."""


def _code_points() -> tuple[np.ndarray, pl.Series]:
    points = np.array([c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])  # (surrogates are no characters)
    return points, pl.Series([chr(c) for c in points], dtype=pl.String)


def _ranges(members: np.ndarray) -> list[tuple[int, int]]:
    """Sorted code points as inclusive ranges."""
    starts = np.flatnonzero(np.diff(members, prepend=-2) != 1)
    ends = np.append(starts[1:], len(members)) - 1
    return [(int(members[s]), int(members[e])) for s, e in zip(starts, ends)]


def class_ranges(classes: dict[str, str] = CLASSES) -> dict[str, list[tuple[int, int]]]:
    """Each class's members as inclusive ranges of code points, as the installed Polars matches them."""
    points, chars = _code_points()
    return {name: _ranges(points[chars.str.contains(rf"^(?:{pattern})$").to_numpy()]) for name, pattern in classes.items()}


def lowercase_changes() -> list[tuple[int, int]]:
    """The code points that the installed Polars' `str.to_lowercase` changes, alone, as inclusive ranges: the kernel
    lowercases a token in C only where it has none of them besides A-Z (Rust's only context rule, the final sigma, is
    Σ's, which is one of them)."""
    points, chars = _code_points()
    return _ranges(points[(chars.str.to_lowercase() != chars).to_numpy()])


def stripped() -> list[tuple[int, int]]:
    """The code points that the installed Polars' `str.strip_chars()` strips (Rust's `char::is_whitespace`)."""
    points, chars = _code_points()
    return _ranges(points[(chars.str.strip_chars() == "").to_numpy()])


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
    points, chars = _code_points()
    if stripped() != class_ranges({"SPACE": r"\s"})["SPACE"]:
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


def stripped_classes_header(classes: dict[str, str], macro: str) -> str:
    """A kernel's classes and STRIP (what `str.strip_chars()` strips), and `macro` listing their names."""
    lines = [
        "/* Generated by filters/token_tables.py from the installed Polars' regex classes: do not edit. */",
        "/* Each class: inclusive ranges of code points. */",
    ]
    for name, ranges in (class_ranges(classes) | {"STRIP": stripped()}).items():
        lines += c_ranges(name, ranges)
    lines.append(f"#define {macro}(X) " + " ".join(f"X({name})" for name in [*classes, "STRIP"]))
    return "\n".join(lines) + "\n"


def line_header() -> str:
    return stripped_classes_header(LINE_CLASSES, "LINE_CLASSES")


def script_header() -> str:
    return stripped_classes_header(SCRIPT_CLASSES, "SCRIPT_CLASSES")


def sigma_classes() -> dict[str, list[tuple[int, int]]]:
    """The two classes Rust's Final_Sigma rule reads, as the installed Polars' `str.to_lowercase` applies them: Σ
    is ς where, skipping case-ignorable characters, a cased one comes before it and none comes after. Read off
    that function itself (`c + "Σ"` ends in ς where c is cased and not ignorable; `"A" + c + "Σ"` where c is
    either), not off the regex crate's properties, whose Unicode version may differ from the standard library's."""
    points, chars = _code_points()
    last_is_final = lambda texts: (texts.str.to_lowercase().str.slice(-1) == "ς").to_numpy()  # noqa: E731
    cased = last_is_final(chars + "Σ")
    ignorable = last_is_final("A" + chars + "Σ") & ~cased
    return {"CASED": _ranges(points[cased]), "CASE_IGNORABLE": _ranges(points[ignorable])}


def lowercase_map() -> list[tuple[int, bytes]]:
    """Every code point (but Σ) that `str.to_lowercase` changes, alone, and its lowercase in UTF-8."""
    points, chars = _code_points()
    lower = chars.str.to_lowercase()
    changed = (lower != chars).to_numpy() & (points != SIGMA)
    return [(int(c), text.encode()) for c, text in zip(points[changed], lower.filter(pl.Series(changed)).to_list())]


def fold_header() -> str:
    mapping = lowercase_map()
    if max(len(low) / len(chr(c).encode()) for c, low in mapping) > 2:
        raise ValueError("a lowercase is more than twice its character's bytes: _shingles.c sizes its output at 2x the input")
    lines = [
        "/* Generated by filters/token_tables.py from the installed Polars' str.to_lowercase and regex classes: do not edit. */",
        "/* Each class: inclusive ranges of code points. PUNCT_SYMBOL: [\\p{P}\\p{S}]; CASED, CASE_IGNORABLE: Final_Sigma's. */",
    ]
    changes = {"LOWER_CHANGES": _ranges(np.array([c for c, _ in mapping]))}
    classes = class_ranges({"PUNCT_SYMBOL": r"[\p{P}\p{S}]"}) | sigma_classes() | changes
    for name, ranges in classes.items():
        lines += c_ranges(name, ranges)
    lines.append("#define FOLD_CLASSES(X) " + " ".join(f"X({name})" for name in classes))
    lines.append("/* LOWER_CHANGES' code points in order, and each one's lowercase (UTF-8, NUL-padded to 4 bytes). */")
    lines.append("static const uint32_t LOWER_FROM[] = {")
    lines += ["    " + " ".join(f"0x{c:X}," for c, _ in mapping[i : i + 12]) for i in range(0, len(mapping), 12)]
    lines.append("};")
    lines.append("static const uint8_t LOWER_TO[][4] = {")
    lines += ["    " + " ".join("{" + ", ".join(f"0x{b:02X}" for b in low.ljust(4, b"\0")) + "}," for _, low in mapping[i : i + 6])
              for i in range(0, len(mapping), 6)]
    lines.append("};")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    HEADER.write_text(header())
    LINE_HEADER.write_text(line_header())
    SCRIPT_HEADER.write_text(script_header())
    FOLD_HEADER.write_text(fold_header())
