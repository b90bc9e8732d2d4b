"""Click parameter types the commands share: one rule for the numbers a user types, one for output files.

Every float option goes through ``FiniteFloat``: NaN, ``inf`` and ``-inf`` (and
``1e400``, which Python reads as ``inf``) are refused before any work, as are
numbers outside the option's range, with Click's usage error (exit 2, one
``Error:`` line naming the option). No option gives infinity a meaning: where
"no limit" makes sense, the option is left unset instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A finite float in ``[low, high]`` (either end open, either end None for unbounded)."""

    name = "float"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> None:
        super().__init__(low, high, min_open=low_open, max_open=high_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            within = f"; give a number {self._describe_range()}" if self._describe_range() else ""
            self.fail(f"{value!r} is not a finite number{within}", param, ctx)
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        """``0<x<=10``, as Click shows a range in the help; empty when unbounded (Click would say ``x<=None``)."""
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()


class OutputFile(click.Path):
    """A file a command will write: not a directory, in a directory that exists, and not one of a run's own
    files -- checked before any work, so a slip costs nothing (exit 2, one line) instead of failing after the
    computation or damaging a run."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from mlptrain.errors import ConfigError
        from mlptrain.runs.files import check_not_a_run_file

        path = super().convert(value, param, ctx)
        parent = Path(path).parent
        if not parent.is_dir():
            self.fail(f"{str(parent)!r} is not a directory that exists; create it first, or choose another path",
                      param, ctx)
        try:
            check_not_a_run_file(Path(path))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return path
