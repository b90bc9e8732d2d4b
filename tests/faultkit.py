"""What the fault tests share: the commands and options of the CLI as Click sees them, the one-error-line check,
hashes of a directory's files, and finished runs to damage."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import Result

from mlptrain.cli import cli

# The temporary files mlptrain writes beside a target (fsutil.atomic_write, downloads' ".part").
TEMPORARY_SUFFIXES = (".tmp", ".part")


def leaf_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                             click.Command]]:
    """Every command ``mlptrain --help`` leads to, as (its words, the Click command); groups are walked."""
    for name, command in group.all_commands().items() if hasattr(group, "all_commands") else group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def numeric_options() -> list[tuple[tuple[str, ...], click.Option]]:
    """Every option of every command whose value is a number (floats and integers), read off the commands."""
    return [(path, param) for path, command in leaf_commands() for param in command.params
            if isinstance(param, click.Option) and not param.is_flag
            and isinstance(param.type, (click.types.FloatParamType, click.types.IntParamType))]


def one_error(result: Result, *fragments: str) -> str:
    """The single ``Error:`` line of a failed command (no traceback), holding every fragment."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def tree_hashes(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``directory`` (directories as ``dir``)."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(directory.rglob("*"))}


def temporaries(directory: Path) -> list[Path]:
    """Temporary files left under ``directory``: a failure or signal must never leave one."""
    return [p for p in directory.rglob(".*") if p.name.endswith(TEMPORARY_SUFFIXES)]
