"""What the error boundary (``common.Group.invoke``) does with what is not a library error: signals and I/O.

Every command runs inside ``guarded``: Ctrl-C (SIGINT) ends it with exit status
130 and SIGTERM with 143 (``main`` turns SIGTERM into ``Terminated``, a
KeyboardInterrupt), an OSError that reached the boundary with one line naming
the file, and in every such case the directories the command created and left
empty are removed (``fsutil.removed_if_failed``); the files it writes are
atomic, so no partial one is left. ``fit`` and ``sweep`` say more themselves
(where the checkpoint is, how to continue) through their own errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from mlptrain.errors import Terminated
from mlptrain.fsutil import removed_if_failed

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Ended(click.ClickException):
    """A command ended by a signal or an I/O failure: its ``Error:`` line and exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def interrupted(exc: KeyboardInterrupt) -> Ended:
    """Ctrl-C: exit 130; SIGTERM: exit 143."""
    terminated = isinstance(exc, Terminated)
    return Ended(f"interrupted by {'SIGTERM' if terminated else 'Ctrl-C'}",
                 EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def io_failed(exc: OSError) -> Ended:
    """An OSError no command turned into a message: the file and the reason, exit 1.

    Without a file name it was the output itself (stdout on a full disk, say).
    """
    reason = exc.strerror or str(exc)
    where = f"cannot write or read {exc.filename}" if exc.filename else "cannot write the output"
    return Ended(f"{where}: {reason}; check free space, permissions and that the directory exists", 1)


@contextmanager
def guarded() -> Iterator[None]:
    """Run a command: signals and stray OSErrors become ``Ended``; directories it made and left empty go."""
    try:
        with removed_if_failed():
            yield
    except KeyboardInterrupt as exc:
        raise interrupted(exc) from None
    except BrokenPipeError:
        raise  # the reader went away (| head): Click ends quietly, as a pipeline expects
    except OSError as exc:
        raise io_failed(exc) from None
