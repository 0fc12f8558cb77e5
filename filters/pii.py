"""Strip personal data (emails, phones, IPs, Chinese ID numbers, cards, IBANs, SSNs, secrets).

Two steps keep it fast and precise. Polars' Rust regex engine marks, per kind, the documents
that hold a candidate (`Detector.prefilter`, a superset of the exact pattern); only those rows
reach Python, where the exact pattern (with look-arounds Rust lacks) finds each candidate and a
validator (checksum, calendar date, phone shape, context word) accepts or rejects it. Spans of
different kinds never overlap: detectors run in a fixed priority order and the first one wins.
Rows that changed are checked again with their placeholders in place until nothing new turns
up, which makes the stage idempotent. Offsets are in characters (Python `str` indices), as
Polars' `str.slice` counts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import polars as pl
from pydantic import Field, model_validator

from cleanmix.filters import pii_validators as check
from cleanmix.pipelines.stage import REASON, TEXT, Mapper, StageResult, with_reason

Kind = Literal["email", "phone", "ip", "cn_id", "credit_card", "iban", "secret", "us_ssn"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Span = tuple[int, int, str]
"""(start, end, kind): character offsets into the original text."""

NOT_WORD_BEFORE = r"(?<![A-Za-z0-9_])"
NOT_WORD_AFTER = r"(?![A-Za-z0-9_])"
"""ASCII boundaries, so `号110101…` and `test@qq.com和` count as separated, `A4111…` does not.
Python patterns put a `(?=[first chars])` before such a look-behind: it scans 40% faster."""

PHONE_WORDS = (
    r"tel|fax|ph|mob|cell|call(?:ed|ing)?|(?:tele)?phone|mobile|office|desk|contact|dial|whats ?app|sms|hotline"
    r"|answering|reach|messages?|t[ée]l[ée]phone|telef[oó]no?|telefone"
)
PHONE_WORDS_ZH = "电话|手机|联系|致电|热线|传真|座机|拨打"
PHONE_CONTEXT = re.compile(rf"(?i)\b(?:{PHONE_WORDS})\b|{PHONE_WORDS_ZH}")
"""Words that make a bare run of digits a phone number when they are near it."""
CARD_CONTEXT = re.compile(r"(?i)\b(?:card|cc|credit|debit|visa|mastercard|maestro)\b|卡")
NUMBER_LABEL_BEFORE = re.compile(r"(?i)(?:\b(?:isbn|issn|order|invoice)\b|icp备|公网安备|订单|编号|单号|发票)[^0-9]{0,12}$")
"""A bare number right after one of these is an identifier, even with "call" or 电话 nearby."""
LOCAL_PART_TAIL = re.compile(r"[A-Za-z0-9._%+-]*\Z")
COUNTRY_CODE_BEFORE = re.compile(r"\+[0-9]{1,3}[ -]?$")
SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security)\b")
VERSION_BEFORE = re.compile(r"(?i)(?<![A-Za-z])(?:v|ver\.?|version|release|build|版本)\s*[:#]?\s*$")
MAX_EXAMPLES = 3
"""Redacted examples per kind from one batch (the runner keeps the first few over the run)."""

Locate = Callable[[str, "re.Match[str]"], "tuple[int, int] | None"]


@dataclass(frozen=True)
class Detector:
    """One way to find one kind: a Rust prefilter for whole batches, an exact Python pattern, a validator."""

    kind: Kind
    prefilter: pl.Expr
    """True where a document may hold a match of `pattern` (never False where it does)."""
    pattern: re.Pattern[str]
    locate: Locate
    """The span of a valid match (maybe narrower than the match), or None to reject it."""
    matches: Callable[[re.Pattern[str], str], Iterator[re.Match[str]]] = re.Pattern.finditer
    """`pattern.finditer(text)`, or a faster way to the same matches."""


def _has(*patterns: str) -> pl.Expr:
    """Any of the patterns: one search each is several times faster than one for their alternation."""
    return pl.any_horizontal(pl.col(TEXT).str.contains(p) for p in patterns)


def _email_matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """What `pattern.finditer` yields, tried only where a local part ends at an `@` (no scan of every letter).

    A match starts where a run of local-part characters starts (the look-behind forbids any other
    place), so each `@` has one candidate start, and none inside the previous match.
    """
    end = 0
    at = text.find("@")
    while at >= 0:
        start = _local_part_start(text, at)
        if start >= end and (m := pattern.match(text, start)):
            end = m.end()
            yield m
        at = text.find("@", max(at + 1, end))


def _local_part_start(text: str, at: int) -> int:
    """Where the run of local-part characters that ends at `at` starts (looked for 64 at a time)."""
    lo = at
    while True:
        lo = max(0, lo - 64)
        start = LOCAL_PART_TAIL.search(text, lo, at).start()
        if start > lo or lo == 0:
            return start


def _accept_if(valid: Callable[[str], bool]) -> Locate:
    return lambda text, m: m.span() if valid(m.group()) else None


def _context(text: str, start: int, end: int, before: int = 40, after: int = 20) -> str:
    return text[max(0, start - before) : start] + " " + text[end : end + after]


def _locate_phone(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """The run of digits and separators, if it is a phone number (context words allowed)."""
    start, end = m.span("body")
    if text[start] == "(" and ")" not in text[start:end]:
        start += 1  # "(+49 30 …)": the bracket belongs to the sentence
    if VERSION_BEFORE.search(text[max(0, start - 20) : start]):
        return None
    verdict = check.phone(text[start:end])
    if verdict is None:
        labelled = NUMBER_LABEL_BEFORE.search(text[max(0, start - 20) : start])
        verdict = not labelled and PHONE_CONTEXT.search(_context(text, start, m.end())) is not None
    return (start, m.end()) if verdict else None


def _locate_card(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """A well-formed, Luhn-valid card number; 12-digit Maestro only after a word like "card"."""
    number = m.group()
    digits = re.sub(r"[ -]", "", number)
    sizes = [len(g) for g in check.DIGIT_GROUP.findall(number)]
    if len(set(re.findall(r"[ -]+", number))) > 1 or not check.luhn(digits):
        return None
    if len(digits) == 12:
        maestro = digits[:2] == "50" or "56" <= digits[:2] <= "69"
        return m.span() if maestro and sizes == [12] and CARD_CONTEXT.search(_context(text, *m.span(), after=0)) else None
    grouped = len(sizes) == 1 or all(s == 4 for s in sizes[:-1]) or sizes in ([4, 6, 5], [4, 6, 4])
    return m.span() if grouped and len(digits) in (13, 14, 15, 16, 19) and _card_prefix(digits) else None


def _card_prefix(digits: str) -> bool:
    """Issuer ranges: 3-6 (Amex, Diners, JCB, Visa, Mastercard, Discover, UnionPay, Maestro),
    Mastercard 2221-2720, JCB 2131/1800, UATP 1 (15 digits)."""
    first = digits[0]
    if first in "3456":
        return True
    if first == "2":
        return digits[:4] == "2131" or 2221 <= int(digits[:4]) <= 2720
    return first == "1" and len(digits) == 15


def _locate_iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """Cut the candidate to its country's IBAN length at a group boundary, then check mod 97."""
    length = check.IBAN_LENGTHS.get(m.group()[:2].upper())
    positions = [m.start() + i for i, ch in enumerate(m.group()) if ch != " "]
    if length is None or len(positions) < length:
        return None
    end = positions[length - 1] + 1
    if end < len(text) and text[end].isascii() and text[end].isalnum():
        return None
    return (m.start(), end) if check.iban(text[m.start() : end].replace(" ", "")) else None


def _locate_ssn(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """3-2-4 digits with a valid area; with spaces only after "SSN"; never after a country code (+81 158-23-2012)."""
    if m.group("sep") == " " and not SSN_CONTEXT.search(_context(text, *m.span(), before=40, after=0)):
        return None
    if COUNTRY_CODE_BEFORE.search(text[max(0, m.start() - 6) : m.start()]):
        return None
    return m.span() if check.us_ssn(m.group("area"), m.group("group"), m.group("serial")) else None


def _locate_ipv4(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """`version 2.0.0.1` and `v1.2.3.4` are versions, not addresses."""
    return None if VERSION_BEFORE.search(text[max(0, m.start() - 20) : m.start()]) else m.span()


def _locate_secret(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    """Tokens are random: one without a digit (`sk-learn-…`) is a word, not a key."""
    value = m.group()
    return m.span() if "PRIVATE KEY" in value or any(ch.isdigit() for ch in value) else None


PHONE_SHAPES = (
    r"\+ ?[0-9](?:[-. ()]{0,3}[0-9]){7}",
    r"(?-u:\b)00(?:[-. ()]{0,3}[0-9]){8}",
    r"1[3-9][0-9](?:[-. ()]{0,3}[0-9]){8}",
    r"[0-9]{3}[-. ()]{1,3}[0-9]{3}[-. ()]{1,3}[0-9]{4}",
    r"(?-u:\b)0[0-9](?:[-. ()]{0,3}[0-9]){7}",
)
"""Rust supersets of the phone shapes that need no context word (see `pii_validators.phone`)."""
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
SECRETS = [
    r"-----BEGIN[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END[A-Z ]{0,30}PRIVATE KEY(?: BLOCK)?-----|(?:\s*[A-Za-z0-9+/=]{16,})*)",
    rf"{NOT_WORD_BEFORE}(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{{16}}{NOT_WORD_AFTER}",
    rf"{NOT_WORD_BEFORE}(?:gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{22,255}}){NOT_WORD_AFTER}",
    r"(?<![A-Za-z0-9_-])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
    r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}",
    rf"{NOT_WORD_BEFORE}xox[abposr]-[A-Za-z0-9-]{{10,}}",
    rf"{NOT_WORD_BEFORE}AIza[0-9A-Za-z_-]{{35}}",
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
]

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "secret",
        _has(r"AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA|gh[pousr]_|github_pat_|_live_|_test_|sk-"
             r"|xox[abposr]-|AIza|eyJ|PRIVATE KEY"),
        re.compile("(?=[-Agsrxe])(?:" + "|".join(SECRETS) + ")"),
        _locate_secret,
    ),
    Detector(
        "email",
        _has(r"[A-Za-z0-9._%+-]@[A-Za-z0-9]"),
        re.compile(
            r"(?=[A-Za-z0-9])(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
        ),
        _accept_if(check.email_domain),
        _email_matches,
    ),
    Detector(
        "iban",
        _has(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11}"),
        re.compile(rf"(?=[A-Za-z]){NOT_WORD_BEFORE}[A-Za-z]{{2}}[0-9]{{2}}(?: ?[A-Za-z0-9]){{11,30}}"),
        _locate_iban,
    ),
    Detector(
        "cn_id",
        _has(r"[1-9](?: {0,2}[0-9]){16} {0,2}[0-9Xx]"),
        re.compile(rf"(?=[1-9]){NOT_WORD_BEFORE}[1-9](?: {{0,2}}[0-9]){{16}} {{0,2}}[0-9Xx]{NOT_WORD_AFTER}"),
        _accept_if(lambda value: check.cn_id(value.replace(" ", ""))),
    ),
    Detector(
        "credit_card",
        _has(r"[0-9](?:[ -]{0,2}[0-9]){11}"),
        re.compile(r"(?=[0-9])(?<![A-Za-z0-9_.,/=-])[0-9](?:[ -]{0,2}[0-9]){11,18}(?![A-Za-z0-9_]|[.,][0-9])"),
        _locate_card,
    ),
    Detector(
        "us_ssn",
        _has(r"[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}"),
        re.compile(
            r"(?=[0-9])(?<![A-Za-z0-9_-])(?P<area>[0-9]{3})(?P<sep>[- ])(?P<group>[0-9]{2})(?P=sep)(?P<serial>[0-9]{4})"
            r"(?![A-Za-z0-9_]|-[0-9])"
        ),
        _locate_ssn,
    ),
    Detector(
        "ip",
        _has(r"::[0-9A-Fa-f]", r"[0-9A-Fa-f]::", r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){4}"),
        re.compile(
            r"(?=[0-9A-Fa-f]{0,4}:)(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{1,4}:|:)(?:[0-9A-Fa-f]{0,4}:){1,7}"
            r"(?:[0-9A-Fa-f]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![A-Za-z0-9_:.])"
        ),
        _accept_if(check.ipv6),
    ),
    Detector(
        "ip",
        _has(r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"),
        re.compile(rf"(?=[0-9])(?<![A-Za-z0-9_.]){OCTET}(?:\.{OCTET}){{3}}(?![A-Za-z0-9_]|\.[0-9])"),
        _locate_ipv4,
    ),
    Detector(
        "phone",
        _has(*PHONE_SHAPES) | _has(rf"(?i)(?-u:\b)(?:{PHONE_WORDS})(?-u:\b)|{PHONE_WORDS_ZH}") & _has(r"[0-9](?:[-. ()]{0,3}[0-9]){5}"),
        re.compile(
            r"(?=[+(0-9])(?<![A-Za-z0-9_.$€£¥#/])(?P<body>(?:\+ ?|\(\+?)?[0-9](?:(?:[-.]|\)[-. ]?|\)? ?\(?)[0-9]){5,})"
            r"(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?(?![A-Za-z0-9_])"
        ),
        _locate_phone,
    ),
)


def detect(text: str, detectors: list[Detector]) -> list[Span]:
    """Every valid, non-overlapping span the detectors find, in text order (earlier detectors win)."""
    spans: list[Span] = []
    for detector in detectors:
        for m in detector.matches(detector.pattern, text):
            found = detector.locate(text, m)
            if found and found[0] < found[1] and not any(s < found[1] and found[0] < e for s, e, _ in spans):
                spans.append((found[0], found[1], detector.kind))
    return sorted(spans)


def find_spans(text: str, detectors: list[Detector], placeholders: dict[str, str]) -> list[Span]:
    """`detect`, then again on the replaced text until nothing new turns up, so that replacing
    twice changes nothing (the plain-Python reference of `PII.find`).

    A replacement can expose a value: in `a@b.com+44 20 7946 0958` the phone touches a letter,
    in `<EMAIL>+44 20 7946 0958` it does not.
    """
    spans = detect(text, detectors)
    new = spans
    while new:
        replaced, shifts = _replace_tracking(text, spans, placeholders)
        new = _unshifted(detect(replaced, detectors), shifts)
        spans = sorted(spans + new)
    return spans


def _unshifted(spans: list[Span], shifts: list[int | None] | None) -> list[Span]:
    """Spans found in a replaced text, in the original's offsets; any touching a placeholder is dropped."""
    if shifts is None:
        return spans
    return [(s + shift, e + shift, k) for s, e, k in spans if (shift := shifts[s]) is not None and None not in shifts[s:e]]


def _replace_tracking(text: str, spans: list[Span], placeholders: dict[str, str]) -> tuple[str, list[int | None]]:
    """The replaced text, and per character its shift back to the original (None inside placeholders)."""
    parts: list[str] = []
    shifts: list[int | None] = []
    last = 0
    for start, end, kind in [*spans, (len(text), len(text), "")]:
        offset = last - len(shifts)
        parts.append(text[last:start])
        shifts += [offset] * (start - last)
        if kind:
            parts.append(placeholders[kind])
            shifts += [None] * len(placeholders[kind])
        last = end
    return "".join(parts), shifts


@dataclass
class Found:
    """The rows of a batch that hold PII, their texts and spans (all other rows have none)."""

    rows: pl.Series
    texts: list[str]
    spans: list[list[Span]]


def redact_shape(value: str) -> str:
    """`a.b@x.com` → `a.a@a.aaa`: the format of a value, never the value."""
    return re.sub(r"[0-9]", "9", re.sub(r"[A-Za-z]", "a", value))[:64]


def _redacted_context(text: str, spans: list[Span], start: int, placeholders: dict[str, str], width: int = 40) -> str:
    """The text around one span, every span in it replaced by its placeholder."""
    lo, hi = max(0, start - width), start + width
    inside = [(s, e, k) for s, e, k in spans if e > lo and s < hi]
    lo, hi = min([lo] + [s for s, _, _ in inside]), max([hi] + [e for _, e, _ in inside])
    return replace_spans(text[lo:hi], [(s - lo, e - lo, k) for s, e, k in inside], placeholders)


def replace_spans(text: str, spans: list[Span], placeholders: dict[str, str]) -> str:
    parts, last = [], 0
    for start, end, kind in spans:
        parts += [text[last:start], placeholders[kind]]
        last = end
    parts.append(text[last:])
    return "".join(parts)


class PII(Mapper):
    """Find emails, phones, IPs, Chinese IDs, cards, IBANs, secrets, SSNs: replace, mark or drop.

    `modified` counts *documents* per kind (`pii:email`); stats/<label>.json also has occurrences.
    """

    type: Literal["pii"] = "pii"
    kinds: tuple[Kind, ...] = Field(
        KINDS, min_length=1, description=f"what to find, any of: {', '.join(KINDS)} (default: all)"
    )
    action: Literal["replace", "annotate", "drop"] = Field(
        "replace",
        description="replace: put a typed placeholder in place of each value; annotate: add a "
        "`<name>_spans` column (kind, start, end in characters), change nothing; drop: remove the "
        "document with reason pii:<kind>",
    )
    placeholder: str = Field(
        "<{KIND}>", min_length=1, description="replacement text; {KIND} / {kind} become the kind (EMAIL / email)"
    )

    @model_validator(mode="after")
    def _placeholders_are_not_pii(self) -> PII:
        """A placeholder that looks like PII would break idempotence (run twice = run once)."""
        rendered = " ".join(self.placeholders().values())
        if found := detect(rendered, self.detectors()):
            kinds = ", ".join(sorted({k for _, _, k in found}))
            raise ValueError(f"placeholder {self.placeholder!r} itself looks like PII ({kinds}): choose another")
        return self

    def placeholders(self) -> dict[str, str]:
        return {kind: self.placeholder.replace("{KIND}", kind.upper()).replace("{kind}", kind) for kind in self.kinds}

    def detectors(self) -> list[Detector]:
        return [d for d in DETECTORS if d.kind in self.kinds]

    @property
    def spans_column(self) -> str:
        return f"{self.label}_spans"

    def output_columns(self) -> tuple[str, ...]:
        return (self.spans_column,) if self.action == "annotate" else ()

    def find(self, df: pl.DataFrame) -> Found:
        """Rows with PII: Rust prefilters pick candidate rows and detectors, Python checks only those.

        Like `find_spans`, it goes again over the replaced text of rows that changed (prefiltered
        again), until nothing new turns up.
        """
        placeholders = self.placeholders()
        rows, texts, chosen = self._candidates(df.get_column(TEXT))
        originals = dict(zip(rows, texts))
        spans: dict[int, list[Span]] = {}
        shifts: dict[int, list[int | None]] = {}
        while rows:
            changed = []
            for row, text, detectors in zip(rows, texts, chosen):
                new = _unshifted(detect(text, detectors), shifts.get(row))
                if new:
                    spans[row] = sorted(spans.get(row, []) + new)
                    changed.append(row)
            replaced = []
            for row in changed:
                text, shifts[row] = _replace_tracking(originals[row], spans[row], placeholders)
                replaced.append(text)
            picked, texts, chosen = self._candidates(pl.Series(replaced, dtype=pl.String))
            rows = [changed[i] for i in picked]
        ordered = sorted(spans)
        return Found(pl.Series(ordered, dtype=pl.UInt32), [originals[r] for r in ordered], [spans[r] for r in ordered])

    def _candidates(self, texts: pl.Series) -> tuple[list[int], list[str], list[list[Detector]]]:
        """Positions of the texts some prefilter flags, those texts, and the detectors flagged for each."""
        detectors = self.detectors()
        flags = pl.DataFrame({TEXT: texts}).select(d.prefilter.fill_null(False).alias(str(i)) for i, d in enumerate(detectors))
        candidate = flags.select(pl.any_horizontal(pl.all())).to_series()
        rows = candidate.arg_true()
        chosen = [[d for d, hit in zip(detectors, hits) if hit] for hits in flags.filter(candidate).iter_rows()]
        return rows.to_list(), texts.gather(rows).to_list(), chosen

    def counts(self, found: Found) -> dict[str, int]:
        return {f"{self.label}:{kind}": sum(any(k == kind for _, _, k in s) for s in found.spans) for kind in self.kinds}

    def report_sections(self, stats: dict[str, Any]) -> list[tuple[str, str]]:
        """Documents and occurrences per kind, and the recorded examples (redacted: shape and context)."""
        from cleanmix.pipelines import charts

        tallies, examples = stats.get("tallies") or {}, stats.get("examples") or {}
        documents, occurrences = tallies.get("documents") or {}, tallies.get("occurrences") or {}
        kinds = list(dict.fromkeys([*occurrences, *documents, *examples]))
        if not kinds:
            return []
        chart = charts.bars(f"{self.label}: found, by kind", kinds,
                            [charts.Series("documents", [documents.get(k, 0) for k in kinds]),
                             charts.Series("occurrences", [occurrences.get(k, 0) for k in kinds], charts.REMOVED)])
        rows = [[kind, example.get("shape", ""), example.get("context", "")] for kind in kinds for example in examples.get(kind, [])]
        found = (f"<h3>{charts.e(self.label)}</h3>" + charts.figure(f"{self.label} kinds found", chart)
                 + (charts.table(["kind", "shape of the value", "context (redacted)"], rows, numeric_from=3) if rows else ""))
        return [("changes", found)]

    def transform(self, df: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
        """Replace (or, for annotate, mark) what `find` found; counts are documents per kind."""
        found = self.find(df)
        return self._transformed(df, found), {} if self.action == "annotate" else self.counts(found)

    def process(self, df: pl.DataFrame) -> StageResult:
        """One detection pass; counts per kind and redacted examples go to `stats/<label>.json`."""
        found = self.find(df)
        tallies, examples = self._stats(found)
        if self.action == "drop":
            result = self._dropped(df, found)
        else:
            documents = {} if self.action == "annotate" else tallies["documents"]
            modified = {f"{self.label}:{kind}": documents[kind] for kind in self.kinds if kind in documents}
            result = StageResult(self._transformed(df, found), with_reason(df.clear(), None), modified)
        result.tallies, result.examples = tallies, examples
        return result

    def _transformed(self, df: pl.DataFrame, found: Found) -> pl.DataFrame:
        if self.action == "annotate":
            return df.with_columns(self._spans_series(df, found))
        placeholders = self.placeholders()
        replaced = [replace_spans(text, spans, placeholders) for text, spans in zip(found.texts, found.spans)]
        text = df.get_column(TEXT).clone()
        if replaced:
            text.scatter(found.rows, replaced)
        return df.with_columns(text)

    def _dropped(self, df: pl.DataFrame, found: Found) -> StageResult:
        """Documents with PII go, with reason `<label>:<kind>` for their first kind in `kinds` order."""
        order = {kind: i for i, kind in enumerate(self.kinds)}
        reasons = [f"{self.label}:{min((k for _, _, k in s), key=order.__getitem__)}" for s in found.spans]
        hit = pl.Series(range(df.height)).is_in(found.rows.implode())
        rejected = df.filter(hit).with_columns(pl.Series(REASON, reasons, dtype=pl.String))
        return StageResult(df.filter(~hit), rejected, {})

    def _stats(self, found: Found) -> tuple[dict[str, dict[str, int]], dict[str, list[dict[str, str]]]]:
        """Documents and occurrences per kind, and the first few redacted examples of each kind."""
        documents: dict[str, int] = {}
        occurrences: dict[str, int] = {}
        examples: dict[str, list[dict[str, str]]] = {}
        placeholders = self.placeholders()
        for text, spans in zip(found.texts, found.spans):
            for kind in sorted({k for _, _, k in spans}):
                documents[kind] = documents.get(kind, 0) + 1
            for start, end, kind in spans:
                occurrences[kind] = occurrences.get(kind, 0) + 1
                if len(bucket := examples.setdefault(kind, [])) < MAX_EXAMPLES:
                    bucket.append({"shape": redact_shape(text[start:end]), "context": _redacted_context(text, spans, start, placeholders)})
        return {"documents": documents, "occurrences": occurrences}, examples

    def _spans_series(self, df: pl.DataFrame, found: Found) -> pl.Series:
        by_row = dict(zip(found.rows.to_list(), found.spans))
        nulls = df.get_column(TEXT).is_null().to_list()
        values = [
            None if null else [{"kind": k, "start": s, "end": e} for s, e, k in by_row.get(i, [])]
            for i, null in enumerate(nulls)
        ]
        dtype = pl.List(pl.Struct({"kind": pl.String, "start": pl.Int64, "end": pl.Int64}))
        return pl.Series(self.spans_column, values, dtype=dtype)
