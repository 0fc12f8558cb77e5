"""Checks that separate real identifiers from numbers that only look like them.

They run only on regex candidates, never on whole documents: checksums (Luhn, ISO 7064 MOD 11-2,
ISO 13616 mod-97), calendar dates, and the shapes of phone numbers.
"""

from __future__ import annotations

import datetime
import ipaddress
import re

CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_ID_CHECK = "10X98765432"
CN_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83 91".split()
)
"""The first two digits of a resident ID: the province-level division that issued it."""

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
"""IBAN length by country (ISO 13616 registry): a candidate is cut to exactly this length."""

FILE_EXTENSIONS = frozenset("png jpg jpeg gif svg webp bmp ico tif tiff css js pdf mp3 mp4 webm".split())
"""`logo@2x.png` is an image name, not an address."""

DIGIT_GROUP = re.compile(r"[0-9]+")


def luhn(digits: str) -> bool:
    """Payment card check digit: every second digit from the right doubled, total divisible by 10."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def valid_date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def cn_id(number: str) -> bool:
    """An 18-character 居民身份证 number: known province, real birth date, ISO 7064 MOD 11-2 check."""
    if len(number) != 18 or number[:2] not in CN_PROVINCES or not number[:17].isdigit():
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not 1900 <= year <= 2099 or not valid_date(year, month, day):
        return False
    check = sum(int(d) * w for d, w in zip(number[:17], CN_ID_WEIGHTS)) % 11
    return CN_ID_CHECK[check] == number[17].upper()


def iban(code: str) -> bool:
    """ISO 13616: the country's length, then mod 97 == 1 over the rearranged number (letters = 10..35)."""
    code = code.upper()
    if IBAN_LENGTHS.get(code[:2]) != len(code) or not code[2:4].isdigit() or not code.isalnum():
        return False
    rearranged = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def us_ssn(area: str, group: str, serial: str) -> bool:
    """SSA never issues area 000, 666 or 9xx, group 00 or serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ipv6(candidate: str) -> bool:
    """A real IPv6 address with at least two non-empty groups and a digit (so `dead::beef` and `a::` stay)."""
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    groups = [g for g in candidate.split(":") if g]
    return len(groups) >= 2 and any(ch.isdigit() for ch in candidate)


def email_domain(address: str) -> bool:
    """Not an image or asset name (`logo@2x.png`)."""
    return address.rsplit(".", 1)[-1].lower() not in FILE_EXTENSIONS


def looks_like_date(groups: list[str]) -> bool:
    """Starts as y-m-d, d-m-y or m-d-y with a real calendar date (`2019-07-15`, `15.07.2019 10`)."""
    if len(groups) < 3:
        return False
    a, b, c = groups[:3]
    if len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        return valid_date(int(a), int(b), int(c))
    if len(c) == 4 and len(a) <= 2 and len(b) <= 2:
        return valid_date(int(c), int(b), int(a)) or valid_date(int(c), int(a), int(b))
    return False


def not_a_phone(number: str, groups: list[str]) -> bool:
    """Shapes that are something else: dates, year ranges, decimals, versions, ISBNs, SSNs."""
    sizes = [len(g) for g in groups]
    digits = "".join(groups)
    year_range = sizes == [4, 4] and all(g[:2] in ("19", "20") for g in groups)
    dotted = "." in number and (len(groups) == 2 or min(sizes) == 1)
    isbn = len(groups) >= 4 and (len(digits) == 13 and digits[:3] in ("978", "979") or len(digits) == 10 and sizes[-1] == 1)
    return looks_like_date(groups) or year_range or dotted or isbn or sizes == [3, 2, 4]


def phone(number: str) -> bool | None:
    """Is this run of digits and separators (extension already cut off) a phone number?

    True for unambiguous shapes: international (`+`, `00`), mainland-China mobile (11 digits,
    1[3-9]), North American (1-)3-3-4, and trunk-prefixed national numbers (`0x…`, 9-12 digits,
    grouped). None ("only next to a word like phone, fax or 电话") for other runs of 7-12 digits
    (or 6 in three groups, `33 93 31`): bare digit runs are mostly counts, codes and dates. False
    for everything else, including an 11-digit run starting with 1 that is no mainland mobile.
    """
    groups = DIGIT_GROUP.findall(number)
    digits = "".join(groups)
    if not digits or not_a_phone(number, groups):
        return False
    if number.startswith(("+", "(+")):
        return 8 <= len(digits) <= 15
    if groups[0].startswith("00"):
        return 10 <= len(digits) <= 15
    national = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    if len(national) == 11 and national[0] == "1" and national[1] in "3456789" and _cn_mobile_groups(groups):
        return True
    sizes = [len(g) for g in groups]
    if sizes == [3, 3, 4] or sizes == [1, 3, 3, 4] and digits[0] == "1":
        return True
    if digits[0] == "0" and sizes[0] >= 2 and len(groups) >= 2 and 9 <= len(digits) <= 12:
        return True
    if len(digits) == 11 and digits[0] == "1":
        return False
    return None if 7 <= len(digits) <= 12 or len(digits) == 6 and len(groups) >= 3 else False


def _cn_mobile_groups(groups: list[str]) -> bool:
    """`13812345678`, `138 1234 5678`, `138-1234-5678`, with or without 86 in front."""
    sizes = [len(g) for g in groups]
    if sizes[0] == 2 and groups[0] == "86":
        sizes = sizes[1:]
    return sizes in ([11], [3, 4, 4], [3, 8], [13])
