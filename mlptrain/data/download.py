"""Fetch a data set's files from its mirrors, verify their checksums, cache them.

Cache layout: ``data_dir/<spec.name>/<file name>``. A cached file whose checksum
matches is used without touching the network. Downloads go to a unique temporary
file in the same directory and are moved onto the final name with ``os.replace``
only once verified, so readers (and concurrent downloaders) never see a partial
file. The library never prints: progress goes through a ``ProgressFactory``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from mlptrain.data.datasets import DatasetSpec, RemoteFile
from mlptrain.errors import DataError, DownloadError
from mlptrain.fsutil import atomic_write, file_digest, make_dirs

if TYPE_CHECKING:
    import requests

# Called as ``with progress(desc, total_bytes_or_None) as advance: advance(nbytes)``.
ProgressFactory = Callable[
    [str, int | None], contextlib.AbstractContextManager[Callable[[int], object]]
]

CHUNK_SIZE = 1 << 16
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")


@dataclass(frozen=True)
class FileStatus:
    """One cached file: ``size``/``verified`` are None when it is not present."""

    name: str
    path: Path
    present: bool
    size: int | None
    verified: bool | None


@dataclass(frozen=True)
class _Transport:
    """How to fetch: one HTTP session, its timeouts and retry policy, and progress."""

    session: requests.Session
    timeout: tuple[float, float]
    retries: int
    backoff: float
    progress: ProgressFactory


class _MirrorFailed(Exception):
    """One URL failed; the message is the short reason shown to the user."""


class _Retryable(_MirrorFailed):
    """A failure that may go away if the same URL is tried again (5xx, timeouts…)."""


class _Damaged(_MirrorFailed):
    """The mirror served the file, but not the published one: wrong size or checksum."""


def file_checksum_ok(path: Path, spec: RemoteFile) -> bool:
    """True if ``path`` exists and matches ``spec``'s sha256 (or its md5 if no sha256)."""
    try:
        if spec.size is not None and path.stat().st_size != spec.size:
            return False  # cheap early answer; no need to hash a file of the wrong size
        if spec.sha256 is not None:
            return file_digest(path, "sha256") == spec.sha256.lower()
        return file_digest(path, "md5") == str(spec.md5).lower()
    except OSError:
        return False


def cache_status(spec: DatasetSpec, data_dir: Path) -> list[FileStatus]:
    """The state of each of ``spec``'s files under ``data_dir / spec.name`` (no network)."""
    statuses = []
    for remote in spec.files:
        path = Path(data_dir) / spec.name / remote.name
        if path.is_file():
            size = path.stat().st_size
            verified = file_checksum_ok(path, remote)
            statuses.append(FileStatus(remote.name, path, True, size, verified))
        else:
            statuses.append(FileStatus(remote.name, path, False, None, None))
    return statuses


def normalize_mirror(mirror: str) -> str:
    """Turn an http(s)/file URL or a directory path into a base URL ending in ``/``."""
    text = mirror.strip()
    if not text:
        raise DataError("the mirror is empty; give a URL or a directory that holds the files")
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        base = text
    elif scheme == "file":
        host = urlsplit(text).netloc
        if host not in ("", "localhost"):
            raise DataError(f"file mirror {text} names host {host!r}; use file:///absolute/path")
        base = text
    elif "://" in text:
        raise DataError(
            f"unsupported mirror {text}; use http://, https://, file:// or a directory"
        )
    else:
        # A plain path (Windows drive letters included, hence the "://" test above).
        base = Path(text).expanduser().resolve().as_uri()
    return base if base.endswith("/") else base + "/"


def ensure_dataset(
    spec: DatasetSpec,
    data_dir: Path,
    mirror: str | None = None,
    progress: ProgressFactory | None = None,
    timeout: tuple[float, float] = (10.0, 60.0),
    retries: int = 3,
    backoff: float = 1.0,
) -> Path:
    """Make ``data_dir / spec.name`` hold all of ``spec``'s files, verified; return it.

    ``mirror`` (one base URL or directory) replaces ``spec.mirrors``. ``timeout`` is
    (connect, read) seconds; each HTTP URL gets ``retries`` attempts, waiting
    ``backoff * 2**k`` seconds before retry k+1.
    """
    created = _new_dirs(Path(data_dir) / spec.name)
    dest_dir = _make_dir(Path(data_dir) / spec.name)
    missing = [remote for remote in spec.files if not file_checksum_ok(dest_dir / remote.name, remote)]
    if not missing:
        return dest_dir
    try:
        _download_all(spec, missing, dest_dir, mirror, progress, timeout, retries, backoff)
    except BaseException:
        _remove_empty(created)  # a failed first download leaves no empty data/<name>/ behind
        raise
    return dest_dir


def _new_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    new = []
    while not path.exists() and path != path.parent:
        new.append(path)
        path = path.parent
    return new


def _remove_empty(directories: list[Path]) -> None:
    """Remove each directory (deepest first) while it is empty."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (another download filled it meanwhile), or gone


def _download_all(spec: DatasetSpec, missing: list[RemoteFile], dest_dir: Path, mirror: str | None,
                  progress: ProgressFactory | None, timeout: tuple[float, float], retries: int, backoff: float) -> None:
    """Fetch each of ``missing`` into ``dest_dir`` from the first mirror that works."""
    import requests  # only now: it costs every other command a twentieth of a second to import

    mirrors = [normalize_mirror(mirror)] if mirror is not None else list(spec.mirrors)
    with requests.Session() as session:
        # Ask for the bytes as stored: a server that gzips the .gz again on the fly
        # would otherwise hand requests something it decodes into a checksum mismatch.
        session.headers["Accept-Encoding"] = "identity"
        transport = _Transport(
            session, timeout, max(1, retries), backoff, progress or _no_progress
        )
        for remote in missing:
            good = _download_file(remote, dest_dir, mirrors, transport, len(spec.files), mirror is not None)
            # Start the next file at the mirror that just worked, so a dead first
            # mirror costs its timeouts once rather than once per file.
            mirrors.remove(good)
            mirrors.insert(0, good)


def _make_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or raise DataError naming it."""
    try:
        make_dirs(path)
    except OSError as exc:
        raise DataError(f"cannot create data directory {path}: {exc.strerror or exc}; "
                        "choose a writable directory") from None
    return path


def _download_file(
    remote: RemoteFile, dest_dir: Path, mirrors: list[str], transport: _Transport, n_files: int, chosen: bool,
) -> str:
    """Fetch ``remote`` into ``dest_dir`` from the first mirror that works; return that mirror.

    ``chosen``: the mirror is the user's (--mirror), so "point --mirror elsewhere" is no help when it fails.
    """
    failures, damaged = [], 0
    for base in mirrors:
        url = base + remote.name
        try:
            _fetch_verified(remote, url, dest_dir, transport)
            return base
        except _MirrorFailed as exc:
            failures.append(f"{url} ({exc})")
            damaged += isinstance(exc, _Damaged)
    tried = f"could not download {remote.name}: {'; '.join(failures)}"
    if chosen and damaged == len(failures):
        raise DownloadError(
            f"{tried}. The mirror's copy of {remote.name} fails its checksum: it is damaged or another file; "
            "replace it there with a good copy, or leave out --mirror / MLPTRAIN_MIRROR to download from the "
            "public mirrors"
        )
    count = _NUMBER_WORDS[n_files] if n_files < len(_NUMBER_WORDS) else str(n_files)
    raise DownloadError(
        f"{tried}. To work offline, download the {count} files by hand into {dest_dir}, or point --mirror / "
        "MLPTRAIN_MIRROR at a directory or URL that holds them"
    )


def _fetch_verified(remote: RemoteFile, url: str, dest_dir: Path, transport: _Transport) -> None:
    """Fetch ``url`` to a temp file, check it, then atomically move it into place."""

    def fetch(out: BinaryIO) -> None:
        if urlsplit(url).scheme.lower() == "file":
            _fetch_local(url, out, remote.name, transport.progress)
        else:
            _fetch_http(url, out, remote.name, transport)

    try:
        atomic_write(dest_dir / remote.name, fetch, verify=lambda tmp: _check(tmp, remote), suffix=".part")
    except OSError as exc:  # requests' errors (also OSErrors) were turned into _MirrorFailed
        raise DataError(f"cannot write {remote.name} into {dest_dir}: {exc.strerror or exc}; "
                        "free some space or choose another (writable) data directory") from None


def _check(path: Path, remote: RemoteFile) -> None:
    """Raise _MirrorFailed unless the fetched file has the published size and checksum."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        # Often an HTML error page served with status 200; the sizes say so plainly.
        raise _Damaged(f"wrong size: {size} bytes, expected {remote.size}")
    if not file_checksum_ok(path, remote):
        raise _Damaged("checksum mismatch")


def _fetch_local(url: str, out: BinaryIO, desc: str, progress: ProgressFactory) -> None:
    """Copy the file a ``file://`` URL names into ``out``, streaming."""
    from urllib.request import url2pathname  # pulls in http.client: too slow to load for every command

    source = Path(url2pathname(urlsplit(url).path))
    try:
        stream = open(source, "rb")
    except FileNotFoundError:
        raise _MirrorFailed("no such file") from None
    except OSError as exc:
        raise _MirrorFailed(exc.strerror or str(exc)) from None
    with stream, progress(desc, os.fstat(stream.fileno()).st_size) as advance:
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
            out.write(chunk)
            advance(len(chunk))


def _fetch_http(url: str, out: BinaryIO, desc: str, transport: _Transport) -> None:
    """Stream ``url`` into ``out``, retrying transient failures with exponential backoff."""
    reason = ""
    for attempt in range(transport.retries):
        if attempt:
            time.sleep(transport.backoff * 2 ** (attempt - 1))
            out.seek(0)
            out.truncate()  # each attempt starts from an empty file
        try:
            _http_once(url, out, desc, transport)
            return
        except _Retryable as exc:
            reason = str(exc)
    attempts = "attempt" if transport.retries == 1 else "attempts"
    raise _MirrorFailed(f"{reason}; {transport.retries} {attempts}")


def _http_once(url: str, out: BinaryIO, desc: str, transport: _Transport) -> None:
    """One GET of ``url`` into ``out``; raises _MirrorFailed/_Retryable with a short reason."""
    import requests  # already loaded by ensure_dataset

    try:
        with transport.session.get(url, stream=True, timeout=transport.timeout) as response:
            response.raise_for_status()
            total = _content_length(response)
            received = 0
            with transport.progress(desc, total) as advance:
                for chunk in response.iter_content(CHUNK_SIZE):
                    out.write(chunk)
                    received += len(chunk)
                    advance(len(chunk))
    except requests.RequestException as exc:
        raise _classify(exc) from None
    # urllib3 normally raises on a short body itself; this check covers the rest.
    if total is not None and received < total:
        raise _Retryable(f"body cut short ({received} of {total} bytes)")


def _content_length(response: requests.Response) -> int | None:
    """The Content-Length header as an int, or None when absent or malformed."""
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _classify(exc: requests.RequestException) -> _MirrorFailed:
    """Map a requests exception to a short reason, retryable unless it cannot change."""
    import requests
    from requests.exceptions import ChunkedEncodingError, ContentDecodingError

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        # 4xx will not change on retry, except "request timeout" and "too many requests".
        kind = _Retryable if code >= 500 or code in (408, 429) else _MirrorFailed
        return kind(f"HTTP {code}")
    text = str(exc).lower()
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        # Includes a body that stalls, which requests reports as a ConnectionError.
        return _Retryable("timed out")
    if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
        return _Retryable("body cut short")
    if isinstance(exc, requests.exceptions.SSLError):
        return _MirrorFailed("TLS error")  # usually a certificate problem: retrying cannot help
    if isinstance(exc, requests.ConnectionError):
        return _Retryable("connection refused" if "refused" in text else "connection failed")
    return _MirrorFailed(type(exc).__name__)  # InvalidURL and friends: retrying cannot help


@contextlib.contextmanager
def _no_progress(desc: str, total: int | None) -> Iterator[Callable[[int], object]]:
    """The default ProgressFactory: reports nothing."""
    yield lambda nbytes: None
