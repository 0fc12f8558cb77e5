"""Where files live: a local path, or an fsspec URL (`s3://`, `gs://`, any protocol fsspec knows).

Local paths keep the standard library (rename, flock, mmap): nothing here changes them. A URL is
opened through fsspec, with credentials and endpoint from the standard environment variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `GOOGLE_APPLICATION_CREDENTIALS`…) or from
`storage_options` in the pipeline file, which are passed to the filesystem as they are. What an
object store says when it refuses (no such bucket, unknown key, no endpoint) becomes one paragraph.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from cleanmix.pipelines.errors import UserError, one_line

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

Options = dict[str, Any] | None
T = TypeVar("T")

EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}
"""Protocol → (package, cleanmix extra that installs it)."""
BLOCK_BYTES = 8 * 2**20
"""Bytes one read from an object store fetches (fsspec's read-ahead cache)."""


LOOKS_AT_ONCE = 16
"""Objects looked at at once while planning (a footer, a size and ETag): each look is a few round
trips that mostly wait on the network (`benchmarks/object_store.md`)."""


def map_paths(fn: Callable[[str], T], paths: list[str]) -> Iterator[T]:
    """`fn` over `paths`, in order: one after another for local files, LOOKS_AT_ONCE at a time
    when any is a URL."""
    if LOOKS_AT_ONCE == 1 or not any(is_url(path) for path in paths):
        yield from map(fn, paths)
        return
    pool = ThreadPoolExecutor(LOOKS_AT_ONCE)
    try:
        yield from pool.map(fn, paths)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def is_url(path: str | Path) -> bool:
    """A location fsspec opens (`s3://bucket/key`), not a local path."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", str(path)))


def filesystem(url: str, options: Options = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for a URL and the URL's path on it (no protocol: `bucket/key`)."""
    protocol = url.split("://", 1)[0].lower()
    if protocol == "file":
        raise UserError(f"'{url}': write a local path as a path, without file://.")
    try:
        from fsspec.core import url_to_fs

        return url_to_fs(url, **(options or {}))
    except ImportError as error:
        package, extra = EXTRAS.get(protocol, (getattr(error, "name", None) or "its fsspec implementation", None))
        how = f"pip install 'cleanmix[{extra}]'" if extra else f"pip install {package}"
        raise UserError(f"'{url}': {protocol}:// locations need the {package} package, which is not installed ({how}).") from None
    except ValueError as error:
        raise UserError(f"'{url}': {protocol}:// is no storage protocol fsspec knows ({one_line(error)}).") from None
    except TypeError as error:
        raise UserError(f"'{url}': storage_options do not fit the {protocol}:// filesystem ({one_line(error)}).") from None


def url_of(fs: AbstractFileSystem, path: str) -> str:
    """A path on `fs` as a URL again (`bucket/key` → `s3://bucket/key`)."""
    return fs.unstrip_protocol(path)


def open_input(path: str, options: Options = None) -> BinaryIO:
    """A file's bytes, read sequentially or by ranges: a local file, or an object read in blocks."""
    if not is_url(path):
        return open(path, "rb")  # noqa: SIM115 - the caller owns it
    fs, key = filesystem(path, options)
    return fs.open(key, "rb", block_size=BLOCK_BYTES)  # type: ignore[return-value]


def parquet_source(path: str, options: Options = None) -> str | BinaryIO:
    """What pyarrow opens a Parquet file from: the local path as it is (memory-mapped by Arrow as
    before), or an object-store file that reads the footer and row groups by range."""
    return open_input(path, options) if is_url(path) else path


def size(path: str, options: Options = None) -> int:
    if not is_url(path):
        return os.path.getsize(path)
    fs, key = filesystem(path, options)
    return int(fs.size(key))


def version(path: str, options: Options = None) -> list[Any] | None:
    """What tells whether a file changed: size and modification time (local), or size and ETag."""
    try:
        if not is_url(path):
            info = os.stat(path)
            return [info.st_size, info.st_mtime_ns]
        fs, key = filesystem(path, options)
        found = fs.info(key)
    except OSError:
        return None
    tag = found.get("ETag") or found.get("etag") or found.get("md5Hash") or str(found.get("LastModified") or found.get("mtime"))
    return [int(found.get("size") or 0), str(tag)]


def inside(child: str, parent: str) -> bool:
    """Whether `child` is `parent` or lies under it (local paths resolved, URLs compared as written)."""
    if is_url(child) != is_url(parent):
        return False
    if not is_url(child):
        return Path(child).resolve().is_relative_to(Path(parent).resolve())
    a, b = child.rstrip("/"), parent.rstrip("/")
    return a == b or a.startswith(b + "/")


def staging_folder(url: str) -> Path:
    """The local folder that holds a run's scratch files and output before they are published to
    `url`: `$CLEANMIX_STAGING` or the user's cache, one folder per output URL."""
    base = os.environ.get("CLEANMIX_STAGING") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cleanmix" / "staging"
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", url)[-80:].strip("_")
    return Path(base) / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


@contextmanager
def store_errors(url: str, role: str) -> Iterator[None]:
    """What an object store refuses, as one paragraph naming the location and `role` (a config key)."""
    try:
        yield
    except UserError:
        raise
    except OSError as error:
        if not refused(error):
            raise
        raise UserError(
            f"{role} '{url}': the object store refused access ({one_line(error)}). Check the credentials "
            "(for s3:// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE; for gs:// GOOGLE_APPLICATION_CREDENTIALS; "
            "or storage_options in the pipeline file) and that they may list, read and write there."
        ) from None
    except Exception as error:
        if not is_store_error(error):
            raise
        raise UserError(f"{role} '{url}': the object store could not be reached ({one_line(error)}). {ENDPOINT_HINT}") from None


ENDPOINT_HINT = ("Check the endpoint (AWS_ENDPOINT_URL for s3://, STORAGE_EMULATOR_HOST for a gs:// emulator, or storage_options: "
                 "{endpoint_url: …} in the pipeline file), the network and the credentials.")


def refused(error: OSError) -> bool:
    """A store's refusal: s3fs raises PermissionError; gcsfs a plain OSError("Forbidden: …") for its HTTP 403."""
    return isinstance(error, PermissionError) or str(error).startswith("Forbidden")


def is_store_error(error: BaseException) -> bool:
    """An error raised by an object store's client library (not a bug of ours)."""
    module = type(error).__module__ or ""
    return module.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "requests", "urllib3")


def check_bucket(url: str, options: Options, role: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem and key of a URL whose bucket exists and answers: else one paragraph."""
    fs, key = filesystem(url, options)
    bucket = key.split("/", 1)[0]
    try:
        with store_errors(url, role):
            found = fs.exists(bucket)
            if not found:  # exists() says False for a refusal too: listing says which it is
                try:
                    fs.ls(bucket, detail=False)  # one page of one level
                    found = True
                except FileNotFoundError:
                    pass
    except TypeError as error:  # s3fs makes its client at first use: a storage option it does not take fails here
        raise UserError(f"{role} '{url}': its storage_options do not fit the filesystem of {url.split('://')[0]}:// "
                        f"({one_line(error)}).") from None
    if not found:
        raise UserError(
            f"{role} '{url}': the bucket '{bucket}' does not exist (or these credentials cannot see it). Create it first, "
            "or correct the name; cleanmix creates no buckets."
        )
    return fs, key
