"""``mlptrain eval`` and ``mlptrain inspect``: a run's test results, its history and its health."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlptrain.cli.common import EXIT_GATE_FAILED, data_options, load_data, threads_option
from mlptrain.cli.types import FiniteFloat
from mlptrain.threads import blas_threads


@click.command("eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--dataset", metavar="NAME|PATH", help="Evaluate on this data set's test split instead of the one "
              "the run trained on (same image size; a set of test images only will do), prepared as the run's were.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--min-accuracy", type=FiniteFloat(0, 100), metavar="X",
              help="Exit with status 3 when test accuracy is below X (a fraction like 0.97, "
              "or a percentage like 97).")
@threads_option
@data_options
def eval_(run_dir: Path, dataset: str | None, as_json: bool, min_accuracy: float | None, threads: int | None,
          data_dir: Path, mirror: str | None, quiet: bool) -> None:
    """Evaluate a run's weights on a test set and write RUN_DIR/eval.json.

    Prints accuracy, loss, per-class accuracy and the confusion matrix.

    \b
    Examples:
        mlptrain eval runs/20261127-101500-relu-he-normal
        mlptrain eval runs/my-run --json --min-accuracy 0.97
        mlptrain eval runs/my-run --dataset path/to/other-idx-dir
        mlptrain eval runs/letters --dataset letters/more-test-images
    """
    from mlptrain.experiment import evaluate_run

    with blas_threads(threads):
        report = evaluate_run(run_dir, dataset, lambda name, preparation, names: load_data(
            name, data_dir, mirror, quiet, preparation, need_train=False, class_names=names)[0])
    if as_json:
        import json

        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(report))
    if report.get("eval_file_error"):
        click.echo(f"warning: {report['eval_file_error']}", err=True)
    _check_gate(report["accuracy"], min_accuracy)


def format_report(report: dict[str, Any]) -> str:
    """The eval results as a readable table: totals, per-class accuracy, confusion matrix."""
    confusion = report["confusion"]
    width = max(5, len(str(max(max(row) for row in confusion))) + 1)
    lines = [
        f"{report['dataset']} test set, {report['n_samples']} images: "
        f"accuracy {report['accuracy']:.2%}  loss {report['loss']:.4f}",
        "",
        "class  accuracy  " + "".join(f"{c:>{width}}" for c in range(len(confusion))) + "   <- predicted",
    ]
    names = report.get("class_names") or [str(c) for c in range(len(confusion))]
    for c, (acc, row) in enumerate(zip(report["per_class_accuracy"], confusion)):
        shown = "     -" if acc is None else f"{acc:>7.2%}"
        name = f"  {names[c]}" if names[c] != str(c) else ""  # digits are their own names
        lines.append(f"{c:>5}  {shown:>8}  " + "".join(f"{v:>{width}}" for v in row) + name)
    return "\n".join(lines)


def _check_gate(accuracy: float, min_accuracy: float | None) -> None:
    if min_accuracy is None:
        return
    threshold = min_accuracy / 100 if min_accuracy > 1 else min_accuracy
    if accuracy < threshold:
        click.echo(f"Error: test accuracy {accuracy:.2%} is below --min-accuracy {threshold:.2%}", err=True)
        sys.exit(EXIT_GATE_FAILED)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def inspect(run_dir: Path) -> None:
    """Describe a run: config, outcome, warnings, epochs and per-layer health.

    Works on unfinished runs too (it says so).

    \b
    Example:
        mlptrain inspect runs/20261127-101500-relu-uniform
    """
    from mlptrain.runs.report import format_run, load_run

    click.echo(format_run(load_run(run_dir)))
