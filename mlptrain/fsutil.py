"""Atomic file writes: the one way mlptrain puts a file on disk.

The content goes to a temporary file in the target's directory, is flushed
to disk, optionally checked, and only then renamed over the target with
``os.replace`` (atomic on POSIX and Windows). A crash, an exception or a
failed check leaves the old file (or none) and no temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
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

    Raises whatever ``write`` or ``verify`` raise, and OSError for I/O failures.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; data and results are for sharing
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after os.replace; cleans up on any failure


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
