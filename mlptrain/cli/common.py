"""What the commands share: the error boundary, exit statuses, the options several take (--config and the config
flags, the data options, --threads), the config with its init announced, progress bars.

Library errors (``MlptrainError``) cross into the terminal here: ``Group.invoke``
turns them into one ``Error: …`` line and the error's own exit status.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from mlptrain.cli.boundary import EXIT_INTERRUPTED as EXIT_INTERRUPTED  # the signals' statuses live there
from mlptrain.cli.boundary import EXIT_TERMINATED as EXIT_TERMINATED
from mlptrain.cli.boundary import guarded
from mlptrain.cli.types import FiniteFloat
from mlptrain.errors import MlptrainError

if TYPE_CHECKING:  # imported when used: ``mlptrain predict`` needs no config
    from mlptrain.config import Config, Field

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

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """Click's, but a mistyped name is matched against every command, the lazy ones too: Click
        suggests only from ``self.commands``, which holds just the commands imported so far."""
        name = args[0] if args else ""
        if (not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None
                and (close := difflib.get_close_matches(name, self.list_commands(ctx)))):
            hint = (f"Did you mean {close[0]!r}?" if len(close) == 1
                    else f"(Did you mean one of: {', '.join(map(repr, sorted(close)))}?)")
            raise click.UsageError(f"No such command {name!r}. {hint}", ctx)
        return super().resolve_command(ctx, args)

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


def config_file_option(f: Callable) -> Callable:
    """--config FILE|NAME: a YAML file of config keys, or a shipped config's name (``configfile.find_config``)."""
    return click.option("--config", "config_file", metavar="FILE|NAME",
                        help="YAML file of config keys, or the name of a shipped one (see `mlptrain configs`); "
                        "flags override it.")(f)


def config_options(f: Callable) -> Callable:
    """One flag per config key, from ``FIELDS``; unset flags stay None (the file or default wins)."""
    from mlptrain.config import FIELDS

    return config_key_options(*FIELDS)(f)


def config_key_options(*keys: str) -> Callable[[Callable], Callable]:
    """A decorator adding the flags of config ``keys`` only (as ``config_options`` adds them all)."""
    return lambda f: _key_options(f, keys)


def _key_options(f: Callable, keys: tuple[str, ...]) -> Callable:
    from mlptrain.config import FIELDS, Config
    from mlptrain.configfile import flag_name

    defaults = Config().to_dict()
    for key in reversed(keys):
        field, default = FIELDS[key], defaults[key]
        shown = "" if default is None else f" [default: {default if key != 'hidden' else ','.join(map(str, default))}]"
        if field.kind is bool:
            name = key.replace("_", "-")
            f = click.option(f"--{name}/--no-{name}", key, default=None, help=field.help + shown)(f)
        else:
            f = click.option(flag_name(key), key, type=_click_type(field), default=None, help=field.help + shown)(f)
    return f


def _click_type(field: Field) -> Any:
    if field.choices is not None:
        return click.Choice(field.choices())
    return {int: click.INT, float: FiniteFloat()}.get(field.kind, click.STRING)


def resolved_config(config_file: str | None, flags: dict[str, Any], quiet: bool) -> Config:
    """The Config of --config and the flags (``configfile.resolve_config``); says which init it chose, unless quiet."""
    from mlptrain.configfile import resolve_config

    resolved = resolve_config(config_file, flags)
    config = resolved.config
    if resolved.init_defaulted and not quiet:
        click.echo(f"init: {config.init} (the default for {config.activation}; "
                   "choose another with --init or --init-range)", err=True)
    return config


def data_dir_option(f: Callable) -> Callable:
    """--data-dir, the cache of downloaded and prepared data [env: MLPTRAIN_DATA_DIR; default: the per-user cache]."""
    from mlptrain.data.cache import DATA_DIR_ENV, DEFAULT_DATA_DIR_TEXT, default_data_dir

    return click.option(
        "--data-dir", envvar=DATA_DIR_ENV, default=default_data_dir, show_default=DEFAULT_DATA_DIR_TEXT,
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Cache of downloaded data sets and prepared arrays [env: {DATA_DIR_ENV}].",
    )(f)


def data_options(f: Callable) -> Callable:
    """--data-dir, --mirror and --quiet, with their environment variables."""
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-epoch lines.")(f)
    f = click.option(
        "--mirror", envvar="MLPTRAIN_MIRROR", metavar="URL",
        help="Fetch data from this base URL, file:// URL or directory instead of the "
        "public mirrors [env: MLPTRAIN_MIRROR].",
    )(f)
    return data_dir_option(f)


THREADS_HELP = ("Threads to compute with: BLAS threads for the matrix products (predict and init-scan run one "
                "worker thread each, on a one-thread BLAS) [default: the cores available; env: MLPTRAIN_THREADS].")


def threads_option(f: Callable | None = None, *, help_text: str = THREADS_HELP,
                   envvar: str | None = "MLPTRAIN_THREADS") -> Callable:
    """--threads, 1 to 1024: ``@threads_option``, or ``@threads_option(help_text=..., envvar=None)`` for a
    command whose threads mean something else."""
    def decorate(f: Callable) -> Callable:
        return click.option("--threads", type=click.IntRange(1, 1024), envvar=envvar, help=help_text)(f)

    return decorate if f is None else decorate(f)


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def download_progress(quiet: bool, unit: str = "B"):
    """A ProgressFactory drawing tqdm bars on stderr (of bytes, or of ``unit``), or None when they would be noise."""
    if not show_progress(quiet):
        return None
    from tqdm import tqdm

    @contextmanager
    def progress(desc: str, total: int | None) -> Iterator[Callable[[int], object]]:
        with tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=False) as bar:
            yield bar.update

    return progress


def warn_if_unlocked() -> None:
    """Say so when run directories cannot be locked (see docs/locking.md): then nothing keeps two writers apart."""
    from mlptrain.runs.lock import unlocked_reason

    reason = unlocked_reason()
    if reason is not None:
        click.echo(f"warning: run directories are not locked ({reason}); do not start two processes on one "
                   "directory", err=True)


def load_data(dataset: str, data_dir: Path, mirror: str | None, quiet: bool, preparation: Any = None,
              need_train: bool = True, class_names: tuple[str, ...] = ()):
    """Locate (downloading if needed) and load a data set, prepared as ``preparation`` (a ``Preparation``, default
    the defaults) says, cached in ``data_dir``; the data set and where it is."""
    from mlptrain.data.loading import load_dataset, locate
    from mlptrain.data.parts import Preparation

    directory = locate(dataset, data_dir, mirror, download_progress(quiet))
    data = load_dataset(directory, dataset, preparation or Preparation(), data_dir, need_train=need_train,
                        progress=download_progress(quiet, unit="image"), class_names=class_names)
    return data, directory
