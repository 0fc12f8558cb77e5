"""WARC and WET files in (`.warc`, `.wet`, plain or `.gz`), parsed with FastWARC.

One document per page: a WARC `response` record whose HTTP Content-Type is HTML (or XHTML), or a
WET `conversion` record (text a crawler already extracted). A response's page, decoded to a string,
is both `html` (what the `extract` stage reads) and `text` (so a pipeline without `extract` still
runs, on markup); a conversion's text is `text`, with `html` null. Every document also has `url`,
`warc_date`, `warc_record_id` and `content_type`. Every other record (requests, metadata, warcinfo,
revisits, responses that are images, PDFs…) is left out and counted per file and kind in
`summary.input.skipped_records`. Rows are numbered by their record in the file (from 0, every
record counted), so generated ids are `<name>:<record>`.

FastWARC, not warcio: it parses about 6× faster (`benchmarks/formats.md`). Its own gzip reader ends a
truncated member silently, though, so `.gz` files are decompressed by Python's gzip, which says
when a file is cut short: a damaged file is an unreadable shard, never a silently shorter one. A
plain `.warc` cut inside a record loses that record unnoticed: FastWARC ends the file there.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from cleanmix.pipelines.formats import POSITION, SMALL_FILE_BYTES, Piece, Survey, Tally, count, open_stream
from cleanmix.pipelines.storage import size as file_size

if TYPE_CHECKING:
    from cleanmix.pipelines.config import InputConfig
    from cleanmix.pipelines.shards import Slice

SCHEMA = pa.schema([
    ("text", pa.string()), ("html", pa.string()), ("url", pa.string()), ("warc_date", pa.string()),
    ("warc_record_id", pa.string()), ("content_type", pa.string()),
])
HTML_TYPES = ("text/html", "application/xhtml+xml")
BATCH_BYTES = 64 * 2**20
"""Page bytes held before a batch is handed on (besides `input.batch_rows`)."""
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)


class Warc:
    name = "WARC"

    def survey(self, path: str, config: InputConfig) -> Survey:
        from fastwarc.warc import ArchiveIterator

        nbytes = file_size(path, config.storage_options)
        with open_stream(path, config.storage_options) as file:
            first = next(iter(ArchiveIterator(file, parse_http=False)), None)
            if first is None and nbytes:
                raise ValueError("no WARC record found at its start")
        schema = SCHEMA if config.text_column == "text" else SCHEMA.set(0, pa.field(config.text_column, pa.string()))
        return Survey(schema, (Piece((), 0, None),), None, None, nbytes / SMALL_FILE_BYTES)

    def read(self, piece: Slice, config: InputConfig, tally: Tally) -> Iterator[pa.Table]:
        from fastwarc.warc import ArchiveIterator, WarcRecordType

        columns: dict[str, list[str | None]] = {name: [] for name in SCHEMA.names}
        positions: list[int] = []
        held = 0

        def batch() -> pa.Table:
            nonlocal held
            table = pa.table({**columns, POSITION: positions}, schema=SCHEMA.append(pa.field(POSITION, pa.int64())))
            for values in columns.values():
                values.clear()
            positions.clear()
            held = 0
            return table.rename_columns([config.text_column, *SCHEMA.names[1:], POSITION])

        with open_stream(piece.path, config.storage_options) as file:
            for number, record in enumerate(ArchiveIterator(file, parse_http=True)):
                kind = record.record_type
                if kind == WarcRecordType.response:
                    mime = (record.http_content_type or "").lower()
                    if mime not in HTML_TYPES:
                        count(tally, piece.path, "non_html_response")
                        continue
                    page = _decode(record.reader.read(), record.http_charset)
                    html, text = page, page
                elif kind == WarcRecordType.conversion:
                    html, text, mime = None, record.reader.read().decode("utf-8", "replace"), record.headers.get("Content-Type")
                else:
                    count(tally, piece.path, f"{kind}_record")
                    continue
                headers = record.headers
                for name, value in zip(SCHEMA.names, (text, html, headers.get("WARC-Target-URI"), headers.get("WARC-Date"),
                                                      record.record_id, mime)):
                    columns[name].append(value)
                positions.append(number)
                held += len(text)
                if len(positions) >= config.batch_rows or held >= BATCH_BYTES:
                    yield batch()
        if positions:
            yield batch()

    def unify(self, schemas: list[pa.Schema]) -> pa.Schema | None:
        return None


WARC = Warc()


def _decode(body: bytes, charset: str | None) -> str:
    """A page as text: by its byte-order mark, its HTTP charset, its <meta> charset, else UTF-8,
    else Windows-1252 (what browsers assume); never fails (undecodable bytes become U+FFFD)."""
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", "replace")
    declared = [charset] if charset else []
    if (meta := META_CHARSET.search(body[:4096])) is not None:
        declared.append(meta.group(1).decode("ascii", "replace"))
    for name in declared:
        try:
            return body.decode(_codec(name), "replace")
        except LookupError:
            continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")


def _codec(name: str) -> str:
    """WHATWG labels Python spells differently: latin-1 and gb2312 pages are cp1252 and GBK in practice."""
    name = codecs.lookup(name.strip().lower()).name
    return {"latin-1": "cp1252", "iso8859-1": "cp1252", "gb2312": "gbk", "ascii": "cp1252"}.get(name, name)
