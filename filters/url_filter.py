"""`url_filter`: documents from blocklisted sites (adult, gambling, malware, drugs), judged by their URL alone.

A crawl's URL is the cheapest evidence there is: FineWeb's first filter removes pages whose domain
is on UT1's adult blocklist, before reading a word of them. Three kinds of entries, all read from text files:

- domains (`casino.com`): the URL's host or any parent of it (`www.`, `m.casino.com`, `a.b.casino.com`);
- URLs (`example.com/adult/`): the host (without `www.`) and the start of the path, as UT1 lists them;
- URL words (`porn`, `xxx`): a whole token of the host or path (`free-porn.net`, `/xxx/`); words
  marked `soft` (`casino`, `sex`: news has them too) count only when two different ones are there,
  words marked `host` anywhere in the host name (`bestcasinobonus.com`, `hotpornhub.net`).

Shipped in `resources/url_filter/` (sources and licences there): UT1's gambling and drug domains,
its adult and malware URLs, and a short word list. UT1's adult domain list (4.5 M domains, 100+ MB)
is too big to ship: give it by path (`lists: {adult: [ut1/adult/domains]}`), with any list of your own.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from cleanmix.pipelines.stage import Filter, Rule, file_stamp

P = "url_filter_"
RESOURCES = Path(__file__).parent / "resources" / "url_filter"
SHIPPED = {
    "adult": ("adult_urls.txt.gz",),
    "gambling": ("gambling_domains.txt.gz",),
    "malware": ("malware_urls.txt.gz",),
    "drugs": ("drugs_domains.txt.gz",),
}
WORDS = RESOURCES / "url_words.tsv"
URL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?(?://)?(?:[^@/?#\s]*@)?(\[[^\]]*\]|[^:/?#\s]*)(?::\d*)?([^?#\s]*)", re.IGNORECASE)
"""Scheme, user, host, port, path: the host and the path are kept."""
WWW = re.compile(r"^www\d*\.")
IPV4 = re.compile(r"[0-9.]+")
TOKEN = re.compile(r"[^\W_]+")


def split_url(url: str) -> tuple[str, str]:
    """(host without `www.`, a trailing dot or case; path), e.g. ('casino.com', '/slots/')."""
    match = URL.match(url)
    host, path = (match.group(1), match.group(2)) if match else ("", "")
    return WWW.sub("", host.lower().rstrip(".")), path


def _entries(path: Path) -> list[str]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@dataclass
class Blocklist:
    """Domains, URL prefixes by host, and URL words, each naming its category."""

    domains: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    hard: dict[str, str] = field(default_factory=dict)
    soft: dict[str, str] = field(default_factory=dict)
    in_host: dict[str, str] = field(default_factory=dict)

    def add_file(self, path: Path, category: str) -> None:
        """A file of domains and URLs (an entry with a `/` after its host is a URL prefix)."""
        for entry in _entries(path):
            host, rest = split_url(entry if "://" in entry else "//" + entry)
            if not host:
                continue
            if rest.strip("/"):
                self.prefixes.setdefault(host, []).append((rest, category))
            else:
                self.domains.setdefault(host, category)

    def match(self, url: str) -> tuple[str, str] | None:
        """(category, what matched) for a blocked URL, else None."""
        host, path = split_url(url)
        parts = host.split(".")
        parents = 1 if IPV4.fullmatch(host) else len(parts) - 1
        for i in range(parents):  # the host, then each parent down to a registrable name (never a bare TLD; an IP alone)
            category = self.domains.get(".".join(parts[i:]))
            if category is not None:
                return category, "domain:" + ".".join(parts[i:])
        for prefix, category in self.prefixes.get(host, ()):
            stem = prefix.rstrip("/")
            if path.rstrip("/") == stem or path.startswith(stem + "/"):  # whole path segments: /sk is not /skx
                return category, f"url:{host}{prefix}"
        tokens = set(TOKEN.findall(f"{host} {path}".lower()))
        hard = tokens & self.hard.keys()
        if hard:
            word = min(hard)
            return self.hard[word], "word:" + word
        for word, category in self.in_host.items():
            if word in host:
                return category, "host:" + word
        soft = sorted(tokens & self.soft.keys())
        if len(soft) >= 2:
            return self.soft[soft[0]], "words:" + ",".join(soft)
        return None


@cache
def load_blocklist(categories: tuple[str, ...], words: bool, lists: tuple[tuple[str, str, int, int], ...]) -> Blocklist:
    """One blocklist per worker process and configuration (file stamps in the key: an edited list is read again)."""
    blocklist = Blocklist()
    for category, path, _, _ in lists:  # the user's first: their category wins
        blocklist.add_file(Path(path), category)
    for category in categories:
        for name in SHIPPED[category]:
            blocklist.add_file(RESOURCES / name, category)
    if words:
        for line in _entries(WORDS):
            word, category, kind = line.split("\t")
            if category in categories:
                {"hard": blocklist.hard, "soft": blocklist.soft, "host": blocklist.in_host}[kind][word] = category
    return blocklist


class UrlFilter(Filter):
    """Documents whose URL is on a blocklist: by domain (subdomains and `www.` included), URL prefix, or URL words."""

    type: Literal["url_filter"] = "url_filter"
    url_column: str = Field("url", min_length=1, description="the column holding each document's URL (WARC input: url)")
    categories: tuple[Literal["adult", "gambling", "malware", "drugs"], ...] = Field(
        ("adult", "gambling", "malware", "drugs"), description="the shipped lists to use (resources/url_filter); [] for only your own"
    )
    words: bool = Field(
        True, description="also block URLs by words of their host and path (porn, xxx; casino and sex only two together; "
        "porn, casino anywhere in the host name)"
    )
    lists: dict[str, tuple[str, ...]] = Field(
        {}, description="your own lists by category: {adult: [ut1/adult/domains], mine: [blocked.txt]}, "
        "each file one domain (subdomains included) or host/path prefix per line, plain or .gz"
    )

    @field_validator("lists")
    @classmethod
    def _readable(cls, lists: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        absolute = {}
        for category, paths in lists.items():
            if not re.fullmatch(r"[a-z0-9_]{1,32}", category):
                raise ValueError(f"list category {category!r}: use 1-32 lower-case letters, digits or '_' (it becomes the reason)")
            absolute[category] = tuple(str(Path(p).expanduser().absolute()) for p in paths)
            for path in absolute[category]:
                if not Path(path).is_file():
                    raise ValueError(f"blocklist {path} (category {category}) does not exist or is not a file")
        return absolute

    def input_columns(self) -> tuple[str, ...]:
        return (self.url_column,)

    def blocklist(self) -> Blocklist:
        stamped = tuple((category, *file_stamp(path)) for category, paths in self.lists.items() for path in paths)
        return load_blocklist(tuple(self.categories), self.words, stamped)

    def metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        blocklist = self.blocklist()
        urls = df.get_column(self.url_column).cast(pl.String)
        found = {url: blocklist.match(url) for url in urls.unique().drop_nulls().to_list()}
        hits = [found.get(url) if url is not None else None for url in urls.to_list()]
        return df.with_columns(
            pl.Series(P + "category", [hit[0] if hit else None for hit in hits], dtype=pl.String),
            pl.Series(P + "match", [hit[1] if hit else None for hit in hits], dtype=pl.String),
        )

    def rules(self) -> list[Rule]:
        categories = dict.fromkeys([*self.lists, *self.categories])
        return [Rule(category, pl.col(P + "category") == category) for category in categories]

    @cached_property
    def metric_types(self) -> dict[str, pl.DataType]:
        return {P + "category": pl.String(), P + "match": pl.String()}

    def with_metrics(self, df: pl.DataFrame) -> pl.DataFrame:
        if self.url_column not in df.columns:
            raise ValueError(
                f"url_filter reads URLs from the column '{self.url_column}', which the frame does not have "
                f"(columns: {', '.join(df.columns)}): set url_column to the column that holds them"
            )
        return super().with_metrics(df)
