"""Atomic file writes: the one way mlptrain puts a file on disk; directories a failed command leaves none of.

The content goes to a temporary file in the target's directory, is flushed
to disk, optionally checked, and only then renamed over the target with
``os.replace`` (atomic on POSIX and Windows). A crash, an exception or a
failed check leaves the old file (or none) and no temporary file behind.

Directories are made with ``make_dirs``: inside ``removed_if_failed`` (the
command line's error boundary) each one it creates is remembered, and when
the command fails, or a signal ends it, those still empty are removed again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(
    path: Path,
    write: Callable[[IO[bytes]], None],
    verify: Callable[[Path], None] | None = None,
    suffix: str = ".tmp",
) -> None:
    """Call ``write`` on a temporary file beside ``path``, ``verify`` it, then move it into place.

    Raises whatever ``write`` or ``verify`` raise, and OSError for I/O failures, naming ``path`` (never the
    temporary file, which the user has never heard of).
    """
    tmp = write_beside(path, write, suffix)
    try:
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise _naming(exc, path) from None
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after os.replace; cleans up on any failure


def write_beside(path: Path, write: Callable[[IO[bytes]], None], suffix: str = ".tmp") -> Path:
    """Call ``write`` on a new temporary file beside ``path``, flush it to disk and return it.

    The caller moves it into place with ``os.replace`` (several files in an order of its own, say) or deletes
    it; on any failure here it is already gone. OSErrors name ``path``.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise _naming(exc, path) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; data and results are for sharing
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise
    return tmp


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same class, errno and reason) about ``path``; ``exc`` itself when it has no errno."""
    if exc.errno is None:
        return exc
    if os.path.isdir(path) and exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
        return IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


_CREATED: ContextVar[list[Path] | None] = ContextVar("mlptrain_created_dirs", default=None)


def make_dirs(path: Path) -> None:
    """``path.mkdir(parents=True, exist_ok=True)``, remembering (inside ``removed_if_failed``) what it created."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    created = _CREATED.get()
    if created is not None:
        created.extend(reversed(missing))  # parents first


@contextmanager
def removed_if_failed() -> Iterator[None]:
    """Remove the directories ``make_dirs`` created in the block, if the block raises and they are still empty.

    Deepest first, and only empty ones: a run directory holding a resumable run stays. Nested blocks
    leave it to the outermost one.
    """
    if _CREATED.get() is not None:
        yield
        return
    created: list[Path] = []
    token = _CREATED.set(created)
    try:
        yield
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            for directory in reversed(created):
                try:
                    directory.rmdir()  # refused unless empty
                except OSError:
                    pass
        raise
    finally:
        _CREATED.reset(token)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (never the whole file at once)."""
    # md5 only identifies files here; usedforsecurity keeps FIPS builds happy.
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so that files written together stay in step.

    A signal that arrives inside is delivered (and raises) when the block exits;
    if both came, SIGTERM goes first (the stronger request: its exception ends
    the block's caller before SIGINT would). A signal the process ignores stays
    ignored. Python-level handlers, not a signal mask: masking the main thread
    alone does not hold a signal, because the kernel then hands it to another
    thread (BLAS keeps a pool of them) whose C handler still interrupts the main
    thread. Outside the main thread, where handlers cannot be installed,
    nothing is held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: set[int] = set()
    held = [signum for signum in _HELD if signal.getsignal(signum) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, lambda s, _frame: received.add(s)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in _HELD:  # in order of precedence
            if signum in received:
                signal.raise_signal(signum)  # now handled as usual (Terminated, KeyboardInterrupt, …)


_HELD = (signal.SIGTERM, signal.SIGINT)  # in order of precedence
