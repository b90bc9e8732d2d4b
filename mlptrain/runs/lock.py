"""One owner per run or sweep directory: an advisory lock held for as long as a process writes to it.

The lock is ``fcntl.flock`` (``msvcrt.locking`` on Windows) on ``.lock`` inside
the directory. Only the lock decides ownership: the kernel drops it when its
process ends, however it ends (``kill -9`` included), so a lock file left
behind never blocks anyone. The file's text (pid, host, command, start time,
one JSON line) only feeds the message a second process gets; it is read only
while someone holds the lock, and never trusted beyond that.

The owner deletes ``.lock`` when it lets go (while still holding it, and a
newcomer checks that the file it locked is still the one at the path), so a
finished run directory holds only its own files.

Without a working lock (no fcntl or msvcrt, or ``MLPTRAIN_UNLOCKED=1``)
claims succeed without excluding anyone; ``unlocked_reason`` says why. A file
system that refuses locks (ENOLCK, e.g. NFS mounted with ``nolock``) is a
RunDirError naming that variable. See docs/locking.md.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mlptrain.errors import ConfigError, RunDirError, RunDirInUse
from mlptrain.fsutil import make_dirs

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
try:
    import msvcrt
except ImportError:  # everywhere but Windows
    msvcrt = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
UNLOCKED_ENV = "MLPTRAIN_UNLOCKED"
BACKEND = "fcntl" if fcntl is not None else "msvcrt" if msvcrt is not None else None
WINDOWS_LOCK_OFFSET = 1 << 20  # msvcrt locks are mandatory: lock a byte past the text so others can read it
OWNER_WAIT_SECONDS = 1.0  # how long to wait for a new owner to write its text (it does so right after locking)
PROBE_GRACE_SECONDS = 0.1  # a busy lock is tried again for this long: a probe holds it for microseconds
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def unlocked_reason() -> str | None:
    """Why claims do not lock (``MLPTRAIN_UNLOCKED`` set, or no lock on this platform), or None."""
    if os.environ.get(UNLOCKED_ENV, "") not in ("", "0"):
        return f"{UNLOCKED_ENV} is set"
    if BACKEND is None:
        return f"this platform ({sys.platform}) has neither fcntl nor msvcrt"
    return None


class DirLock:
    """A held lock on ``directory`` (``fd`` None: held in name only, see ``unlocked_reason``); a context manager."""

    def __init__(self, directory: Path, fd: int | None) -> None:
        self.directory, self.fd = directory, fd

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Delete ``.lock`` and let go; a second call does nothing."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        path = self.directory / LOCK_FILE
        if BACKEND == "fcntl":
            path.unlink(missing_ok=True)  # still held: whoever locks the old file next sees it is gone
            os.close(fd)
            return
        _windows_unlock(fd)
        os.close(fd)
        try:
            path.unlink()  # refused while another process has it open; then it is theirs
        except OSError:
            pass


def acquire(directory: Path, what: str, hint: str, command: str | None = None) -> DirLock:
    """Lock the existing ``directory`` for this process; RunDirInUse (naming the owner) if another holds it.

    ``what`` names the directory in messages ("run directory"), ``hint`` says what to do instead.
    """
    if unlocked_reason() is not None:
        return DirLock(directory, None)
    path = directory / LOCK_FILE
    busy_until = time.monotonic() + PROBE_GRACE_SECONDS
    while True:
        fd = _open(path)
        try:
            if _try_lock(fd, path):
                if _still_there(fd, path):
                    _write_owner(fd, command)
                    return DirLock(directory, fd)
            elif time.monotonic() >= busy_until:
                owner = _read_owner(fd)
                raise RunDirInUse(_in_use(what, directory, owner, hint), owner.get("pid"))
            else:
                time.sleep(0.01)  # perhaps only another claim's probe (``holder``), which lets go at once
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # locked a file its owner deleted while letting go, or busy: try the one at the path again


def claim_new_dir(path: Path, what: str, expected: str, hint: str, command: str | None = None) -> DirLock:
    """Create ``path`` (and parents), or take it if it is an empty directory, and lock it.

    ConfigError if it holds anything (it is "not ``expected``"), RunDirInUse if
    another process holds it, RunDirError if it cannot be made.
    """
    _check_empty(path, what, expected, hint, probe=True)
    created = not path.exists()
    try:
        make_dirs(path)  # removed again if the command fails before putting anything in it
    except OSError as exc:
        raise RunDirError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    try:
        lock = acquire(path, what, hint, command)
    except RunDirError as exc:
        if created and not isinstance(exc, RunDirInUse):
            _remove_empty(path)  # nothing half-made: the directory goes again when it cannot be locked
        raise
    try:
        _check_empty(path, what, expected, hint, probe=False)  # under the lock: another claim may have won
    except BaseException:
        lock.release()
        raise
    return lock


def holder(directory: Path) -> dict[str, Any] | None:
    """The owner's record if a process holds ``directory``'s lock now, else None (never takes the lock for long)."""
    path = directory / LOCK_FILE
    if unlocked_reason() is not None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        return None if _try_lock(fd, path) else _read_owner(fd)  # a successful probe ends with the close
    except RunDirError:
        return None
    finally:
        os.close(fd)


def _check_empty(path: Path, what: str, expected: str, hint: str, probe: bool) -> None:
    if not path.exists():
        return
    if path.is_dir() and not any(p.name != LOCK_FILE for p in path.iterdir()):
        return
    owner = holder(path) if probe and path.is_dir() else None
    if owner is not None:
        raise RunDirInUse(_in_use(what, path, owner, hint), owner.get("pid"))
    raise ConfigError(f"--out {path} already exists and is not {expected}; choose a new --out")


def _remove_empty(path: Path) -> None:
    try:
        (path / LOCK_FILE).unlink(missing_ok=True)
        path.rmdir()
    except OSError:
        pass  # not empty after all (another process's files): leave it


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise RunDirError(f"cannot create the lock file {path}: {exc.strerror or exc}; check permissions") from None


def _try_lock(fd: int, path: Path) -> bool:
    """Take the lock without waiting: True, or False when another process holds it."""
    try:
        if BACKEND == "fcntl":
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if BACKEND == "msvcrt":
            return False  # msvcrt reports a held lock as EACCES or EDEADLOCK
        if exc.errno in NO_LOCKS:
            path.unlink(missing_ok=True)  # no one can hold a lock on this file system: the file is ours
            raise RunDirError(
                f"cannot lock {path}: {exc.strerror} (this file system does not support locks, e.g. NFS mounted "
                f"with nolock); set {UNLOCKED_ENV}=1 to run without them (then nothing stops two processes "
                "from writing one directory)") from None
        raise RunDirError(f"cannot lock {path}: {exc.strerror or exc}") from None


def _windows_unlock(fd: int) -> None:
    try:
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:
        pass  # closing the file releases it too


def _still_there(fd: int, path: Path) -> bool:
    """Whether the file we locked is still the one at ``path`` (a releasing owner deletes it first)."""
    if BACKEND != "fcntl":
        return True  # Windows cannot delete a file another process has open
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _write_owner(fd: int, command: str | None) -> None:
    owner = {
        "pid": os.getpid(), "host": socket.gethostname(),
        "command": command or " ".join(["mlptrain", *sys.argv[1:]]),
        "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(owner) + "\n").encode("utf-8"))


def _read_owner(fd: int) -> dict[str, Any]:
    """The holder's record; ``{}`` if it wrote none within OWNER_WAIT_SECONDS or it is not ours.

    Right after taking the lock a new owner's file may still hold a dead
    owner's text: text naming a process of this host that no longer exists is
    read again until the new owner's line replaces it (or the wait ends).
    """
    deadline = time.monotonic() + OWNER_WAIT_SECONDS
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096)
        owner = _parse_owner(text)
        if (text.endswith(b"\n") and _alive(owner)) or time.monotonic() > deadline:
            return owner
        time.sleep(0.01)


def _parse_owner(text: bytes) -> dict[str, Any]:
    try:
        owner = json.loads(text.decode("utf-8"))
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _alive(owner: dict[str, Any]) -> bool:
    """False only for a record of a process of this host that has ended (only for the message, never the lock)."""
    pid = owner.get("pid")
    if BACKEND != "fcntl" or owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return True  # os.kill(pid, 0) would end the process on Windows; another host's pids are not ours to ask
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but not ours to signal
    return True


def _in_use(what: str, directory: Path, owner: dict[str, Any], hint: str) -> str:
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return f"{what} {directory} is in use by another process (its {LOCK_FILE} does not say which); {hint}"
    parts = [owner["command"]] if isinstance(owner.get("command"), str) else []
    if isinstance(owner.get("since"), str):
        parts.append(f"since {owner['since']}")
    details = ", ".join(parts)
    host = f" on {owner['host']}" if isinstance(owner.get("host"), str) else ""
    return f"{what} {directory} is in use by process {pid}{host}{f' ({details})' if details else ''}; {hint}"
