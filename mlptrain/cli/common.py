"""What every command shares: the error boundary, exit statuses, data and thread options, progress bars.

Library errors (``MlptrainError``) cross into the terminal here: ``Group.invoke``
turns them into one ``Error: …`` line and the error's own exit status.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from mlptrain.cli.boundary import EXIT_INTERRUPTED as EXIT_INTERRUPTED  # the signals' statuses live there
from mlptrain.cli.boundary import EXIT_TERMINATED as EXIT_TERMINATED
from mlptrain.cli.boundary import guarded
from mlptrain.errors import MlptrainError

EXIT_GATE_FAILED = 3


class Failure(click.ClickException):
    """A library error on its way out as ``Error: …`` with its own exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Group(click.Group):
    """A group that turns library errors into ``Error:`` lines, and imports its ``lazy`` commands
    (name -> ``"module:attribute"``) only when one is used: ``mlptrain predict`` then does not
    import what ``fit``, ``sweep`` or the tuning commands need."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, attribute = self.lazy[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command, imported, in the order the group lists them in (lazy ones first)."""
        names = [*self.lazy, *(name for name in self.commands if name not in self.lazy)]
        return {name: command for name in names if (command := self.get_command(None, name)) is not None}

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with guarded():  # signals, stray OSErrors, empty directories left behind
                return super().invoke(ctx)
        except MlptrainError as exc:
            raise Failure(str(exc), exc.exit_code) from None
        except MemoryError:
            raise Failure("out of memory: the network or the data set is too large for this machine; "
                           "use smaller --hidden layers or a smaller --batch-size", 1) from None


def data_options(f: Callable) -> Callable:
    """--data-dir, --mirror and --quiet, with their environment variables."""
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-epoch lines.")(f)
    f = click.option(
        "--mirror", envvar="MLPTRAIN_MIRROR", metavar="URL",
        help="Fetch data from this base URL, file:// URL or directory instead of the "
        "public mirrors [env: MLPTRAIN_MIRROR].",
    )(f)
    return click.option(
        "--data-dir", envvar="MLPTRAIN_DATA_DIR", default="data", show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Download cache [env: MLPTRAIN_DATA_DIR].",
    )(f)


def threads_option(f: Callable) -> Callable:
    return click.option(
        "--threads", type=click.IntRange(1, 1024), envvar="MLPTRAIN_THREADS",
        help="Threads to compute with: BLAS threads for the matrix products (predict and init-scan run one "
        "worker thread each, on a one-thread BLAS) [default: the cores available; env: MLPTRAIN_THREADS].",
    )(f)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def download_progress(quiet: bool):
    """A ProgressFactory drawing tqdm byte bars on stderr, or None when they would be noise."""
    if not show_progress(quiet):
        return None
    from tqdm import tqdm

    @contextmanager
    def progress(desc: str, total: int | None) -> Iterator[Callable[[int], object]]:
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False) as bar:
            yield bar.update

    return progress


def warn_if_unlocked() -> None:
    """Say so when run directories cannot be locked (see docs/locking.md): then nothing keeps two writers apart."""
    from mlptrain.runs.lock import unlocked_reason

    reason = unlocked_reason()
    if reason is not None:
        click.echo(f"warning: run directories are not locked ({reason}); do not start two processes on one "
                   "directory", err=True)


def load_data(dataset: str, data_dir: Path, mirror: str | None, quiet: bool):
    """Locate (downloading if needed) and load a data set."""
    from mlptrain.data.loading import load_dataset, locate

    directory = locate(dataset, data_dir, mirror, download_progress(quiet))
    return load_dataset(directory, dataset), directory
