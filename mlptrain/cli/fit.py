"""``mlptrain fit``: a new run, a resumed or extended one, or a dry run; and the fit reporter."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from mlptrain.cli.common import (
    EXIT_GATE_FAILED,
    config_file_option,
    config_options,
    data_options,
    load_data,
    resolved_config,
    show_progress,
    threads_option,
    warn_if_unlocked,
)
from mlptrain.config import Config
from mlptrain.threads import blas_threads


@click.command()
@config_file_option
@config_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create [default: runs/<time>-<activation>-<init>].")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), metavar="RUN_DIR",
              help="Continue an interrupted run from its last checkpoint (same config), or a finished one "
              "for more --epochs.")
@click.option("--overwrite", is_flag=True, help="Replace the --out run directory if it holds a run (refused while "
              "another process writes it, and for a directory that is not a run).")
@click.option("--verbose", "-v", is_flag=True, help="Print the init check's per-layer table.")
@click.option("--strict", is_flag=True, help="Exit with status 3 when the run raised any health warning.")
@click.option("--dry-run", is_flag=True, help="Check the init and take one step on one batch; write nothing.")
@threads_option
@data_options
def fit(config_file: str | None, out: Path | None, resume: Path | None, overwrite: bool, verbose: bool, strict: bool,
        dry_run: bool, threads: int | None, data_dir: Path, mirror: str | None, quiet: bool, **flags: Any) -> None:
    """Train a network and write a run directory.

    Flags override the keys of --config; the fully resolved config is saved in
    the run. The --init, --init-range and --init-std flags replace the file's
    init settings as a group. A checkpoint is written after every epoch;
    --resume RUN_DIR continues an interrupted run and ends exactly as an
    uninterrupted one would; --resume RUN_DIR --epochs N trains a finished
    run on to N epochs, in place, as if it had been started with --epochs N.
    --dry-run builds everything, prints the init check, its warnings and one
    training step's loss, and writes nothing.

    \b
    Examples:
        mlptrain fit --epochs 3
        mlptrain fit --activation relu --init-range 0.5
        mlptrain fit --config logistic --seed 2 --out runs/logistic-s2
        mlptrain fit --config original-problem
        mlptrain fit --config my-settings.yaml --lr 0.1
        mlptrain fit --resume runs/logistic-s2
        mlptrain fit --resume runs/logistic-s2 --epochs 20
        mlptrain fit --config original-problem --dry-run --strict
    """
    from mlptrain.experiment import run_fit
    from mlptrain.runs.resume import claim_run, resume_config

    if dry_run and resume is not None:
        raise click.UsageError("--dry-run checks a new run; drop --resume")
    if resume is not None and out is not None:
        raise click.UsageError("--resume continues RUN_DIR in place; drop --out")
    if overwrite and out is None:
        raise click.UsageError("--overwrite replaces the --out directory: give --out RUN_DIR")
    # A resumed run is locked before its config is compared: another process extending it is "in use".
    with claim_run(resume) if resume is not None else nullcontext() as lock:
        config = (resume_config(resume, config_file, flags) if resume is not None
                  else resolved_config(config_file, flags, quiet))
        if config.tensorboard and not dry_run:
            from mlptrain.runs.tensorboard import require_tensorboard

            require_tensorboard()  # before any download: a missing extra is one line
        data, directory = load_data(config.dataset, data_dir, mirror, quiet, config.preparation())
        if dry_run:
            with blas_threads(threads):
                _dry_run(config, data, strict)
            return
        warn_if_unlocked()
        if overwrite:
            from mlptrain.cli.runs import replace_out

            replace_out(out, "run")
        with blas_threads(threads) as n:
            summary = run_fit(config, data, directory, out, _FitReporter(quiet, verbose), resume=resume, threads=n,
                              lock=lock)
    if strict and summary["warnings"]:
        codes = sorted({w["code"] for w in summary["warnings"]})
        click.echo(f"Error: --strict: the run raised {len(summary['warnings'])} warning(s): {', '.join(codes)}",
                   err=True)
        sys.exit(EXIT_GATE_FAILED)


def _dry_run(config: Config, data: Any, strict: bool) -> None:
    """Print the data check, the init table, the warnings (each with its cause) and the verdict; exit 3 under
    --strict when a check or the step raised a warning."""
    from mlptrain.nn.initializers import describe_init
    from mlptrain.tune.dryrun import dry_run

    result = dry_run(config, data)
    sizes = "-".join(map(str, [data.n_inputs, *config.hidden, data.n_classes]))
    init = describe_init(config.init, config.init_range, config.init_std)
    click.echo(f"dry run of {sizes} {config.activation} {init}, {config.optimizer} at lr {result.lr:g}, "
               f"batch {config.batch_size}: nothing is written")
    i = result.inputs
    click.echo(f"data check (training images, scaled to [0, 1]): pixel mean {i['mean']:.3f}, std {i['std']:.3f}, "
               f"border {i['border']:.3f}, brightest {i['brightest']:.3f}, constant pixels {i['constant']:.1%}")
    click.echo(format_health(result.rows))
    for warning in result.warnings:
        _FitReporter(quiet=False).warning(warning)
    click.echo(result.verdict)
    if strict and result.warnings:
        sys.exit(EXIT_GATE_FAILED)


class _FitReporter:
    """What ``run_fit`` tells the user: epoch lines on stdout; warnings, the init table and a batch bar on stderr."""

    def __init__(self, quiet: bool, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose
        self._bar = None

    def init_health(self, rows: list) -> None:
        if self.verbose:
            click.echo(format_health(rows), err=True)

    def warning(self, warning: dict[str, Any]) -> None:
        where = f" (epoch {warning['epoch']})" if warning["epoch"] else " (init check)"
        click.echo(f"warning: {warning['code']}: {warning['message']}{where}", err=True)

    def batch(self, done: int, total: int) -> None:
        if not show_progress(self.quiet):
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="batch", leave=False)
        self._bar.update(1)
        if done == total:
            self._bar.close()
            self._bar = None

    def epoch(self, m: dict[str, Any], epochs: int) -> None:
        if self.quiet:
            return
        val = f"  val loss {m['val_loss']:.4f} acc {m['val_acc']:.2%}" if "val_acc" in m else ""
        click.echo(
            f"epoch {m['epoch']:>{len(str(epochs))}}/{epochs}  train loss {m['train_loss']:.4f} "
            f"acc {m['train_acc']:.2%}{val}  lr {m['lr']:g}  {m['seconds']:.1f}s"
        )

    def done(self, summary: dict[str, Any]) -> None:
        test, best = summary["test"], summary["best"]
        for w in summary["warnings"]:
            if w["cleared"] is not None:
                click.echo(f"note: {w['code']} (epoch {w['epoch']}) cleared by epoch {w['cleared']}", err=True)
        click.echo(f"stopped: {summary['stop_reason']}")
        if best is not None:
            monitor = summary["config"]["monitor"]
            click.echo(f"best epoch: {summary['best_epoch']} ({format_metric(monitor, best[monitor])}); "
                       f"weights saved from epoch {summary['weights_from_epoch']}")
        click.echo(f"test accuracy {test['accuracy']:.2%}  loss {test['loss']:.4f}")
        click.echo(f"run directory: {summary['run_dir']}  (evaluate: mlptrain eval {summary['run_dir']})")


def format_metric(name: str, value: float) -> str:
    """``val acc 98.26%`` or ``val loss 0.0712``: accuracies as percentages, as everywhere else."""
    shown = f"{value:.2%}" if name.endswith("_acc") else f"{value:.4f}"
    return f"{name.replace('_', ' ')} {shown}"


def format_health(rows: list) -> str:
    """The init check as one compact table (rows: LayerHealth objects or their dicts)."""
    rows = [r if isinstance(r, dict) else vars(r) for r in rows]
    lines = ["init check (probe batch of training images):",
             f"  {'layer':<9} {'pre std':>9} {'signal':>9} {'gain':>7} {'dead':>6} {'satur.':>6} {'grad rms':>9}"]
    for r in rows:
        lines.append(f"  {r['layer']:<9} {r['pre_std']:>9.3g} {r['signal']:>9.3g} {r['gain']:>7.3g} "
                     f"{r['dead']:>6.0%} {r['saturated']:>6.0%} {r['grad_rms']:>9.2g}")
    total = 1.0
    for r in rows:
        total *= r["gain"]
    lines.append(f"  total gain input -> logits: {total:.3g} (healthy: near 1)")
    return "\n".join(lines)
