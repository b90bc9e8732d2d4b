"""The ``mlptrain`` group: every command registered, the version, and clean exits on SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from mlptrain import __version__
from mlptrain.cli.common import EXIT_INTERRUPTED, EXIT_TERMINATED, Group
from mlptrain.errors import Terminated

# Imported when used (common.Group): the docs and the tests list them in this order.
COMMANDS = {
    "fit": "mlptrain.cli.fit:fit",
    "eval": "mlptrain.cli.evaluate:eval_",
    "inspect": "mlptrain.cli.evaluate:inspect",
    "predict": "mlptrain.cli.predict:predict",
    "export": "mlptrain.cli.export:export",
    "plot": "mlptrain.cli.plot:plot",
    "runs": "mlptrain.cli.runs:runs",
    "compare": "mlptrain.cli.runs:compare",
    "tensorboard": "mlptrain.cli.runs:tensorboard",
    "sweep": "mlptrain.cli.sweep:sweep",
    "data": "mlptrain.cli.data:data",
    "configs": "mlptrain.cli.configs:configs",
    "init-scan": "mlptrain.cli.tune:init_scan",
    "lr-find": "mlptrain.cli.tune:lr_find",
    "gradcheck": "mlptrain.cli.tune:gradcheck",
}


@click.group(cls=Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlptrain")
def cli() -> None:
    """Train multilayer perceptrons on MNIST-family data with nothing but NumPy.

    \b
    Example:
        mlptrain fit --activation relu --init-range 0.5 --epochs 3
        mlptrain eval runs/<run>
        mlptrain predict runs/<run> digit.png
    """


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def main() -> None:
    """Console entry point: Click's handling, and SIGINT/SIGTERM unwinding cleanly (exit 130/143)."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        cli.main(prog_name="mlptrain")
    except KeyboardInterrupt as exc:  # outside training (training says how to resume itself)
        terminated = isinstance(exc, Terminated)
        click.echo(f"Error: interrupted by {'SIGTERM' if terminated else 'Ctrl-C'}", err=True)
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
