"""``mlptrain fit``: flags generated from ``config.FIELDS``, config resolution, resume, and the fit reporter."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from mlptrain.cli.common import (
    EXIT_GATE_FAILED,
    data_options,
    load_data,
    show_progress,
    threads_option,
    warn_if_unlocked,
)
from mlptrain.cli.types import FiniteFloat
from mlptrain.config import FIELDS, Config, Field
from mlptrain.threads import blas_threads


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _click_type(field: Field) -> Any:
    if field.choices is not None:
        return click.Choice(field.choices())
    return {int: click.INT, float: FiniteFloat()}.get(field.kind, click.STRING)


def config_options(f: Callable) -> Callable:
    """One flag per config key, from ``FIELDS``; unset flags stay None (the file or default wins)."""
    defaults = Config().to_dict()
    for key, field in reversed(FIELDS.items()):
        default = defaults[key]
        shown = "" if default is None else f" [default: {default if key != 'hidden' else ','.join(map(str, default))}]"
        if field.kind is bool:
            name = key.replace("_", "-")
            f = click.option(f"--{name}/--no-{name}", key, default=None, help=field.help + shown)(f)
        else:
            f = click.option(_flag(key), key, type=_click_type(field), default=None, help=field.help + shown)(f)
    return f


@click.command()
@click.option("--config", "config_file", metavar="FILE|NAME",
              help="YAML file of config keys, or the name of a shipped one (see `mlptrain configs`); "
              "flags override it.")
@config_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create [default: runs/<time>-<activation>-<init>].")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), metavar="RUN_DIR",
              help="Continue an interrupted run from its last checkpoint (same config), or a finished one "
              "for more --epochs.")
@click.option("--verbose", "-v", is_flag=True, help="Print the init check's per-layer table.")
@click.option("--strict", is_flag=True, help="Exit with status 3 when the run raised any health warning.")
@click.option("--dry-run", is_flag=True, help="Check the init and take one step on one batch; write nothing.")
@threads_option
@data_options
def fit(config_file: str | None, out: Path | None, resume: Path | None, verbose: bool, strict: bool,
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

    if dry_run and resume is not None:
        raise click.UsageError("--dry-run checks a new run; drop --resume")
    if resume is not None:
        config = _resume_config(resume, out, config_file, flags)
    else:
        config = _resolve_config(config_file, flags)
    data, directory = load_data(config.dataset, data_dir, mirror, quiet)
    if dry_run:
        with blas_threads(threads):
            _dry_run(config, data, strict)
        return
    warn_if_unlocked()
    with blas_threads(threads) as n:
        summary = run_fit(config, data, directory, out, _FitReporter(quiet, verbose), resume=resume, threads=n)
    if strict and summary["warnings"]:
        codes = sorted({w["code"] for w in summary["warnings"]})
        click.echo(f"Error: --strict: the run raised {len(summary['warnings'])} warning(s): {', '.join(codes)}",
                   err=True)
        sys.exit(EXIT_GATE_FAILED)


def _dry_run(config: Config, data: Any, strict: bool) -> None:
    """Print the init table, the warnings and the verdict; exit 3 under --strict when a warning fired."""
    from mlptrain.tune.dryrun import dry_run

    result = dry_run(config, data)
    sizes = "-".join(map(str, [data.n_inputs, *config.hidden, data.n_classes]))
    click.echo(f"dry run of {sizes} {config.activation} {config.init}, {config.optimizer} at lr {result.lr:g}, "
               f"batch {config.batch_size}: nothing is written")
    click.echo(format_health(result.rows))
    for warning in result.warnings:
        _FitReporter(quiet=False).warning(warning)
    click.echo(result.verdict)
    if strict and result.warnings:
        sys.exit(EXIT_GATE_FAILED)


def _resume_config(resume: Path, out: Path | None, config_file: str | None, flags: dict[str, Any]) -> Config:
    """The run's own config; any --config or flag given must agree with it (a finished run: but for --epochs)."""
    from mlptrain.config import build_config
    from mlptrain.experiment import read_run_config
    from mlptrain.runs.extend import check_extendable, check_recorded_config, config_differences, is_complete

    if out is not None:
        raise click.UsageError("--resume continues RUN_DIR in place; drop --out")
    stored = build_config(read_run_config(resume), {key: str(resume / "config.yaml") for key in FIELDS})
    check_recorded_config(resume, stored)  # before the data it names is loaded: a damaged config.yaml is named
    requested = _resolve_config(config_file, flags, base=stored.to_dict(), announce=False)
    if is_complete(resume):
        check_extendable(resume, stored, requested)
        return requested
    differences = config_differences(stored, requested)
    if differences:
        raise click.UsageError(
            f"cannot resume {resume} with a different config: {'; '.join(differences)}. "
            "Resume without those flags, or start a new run"
        )
    return stored


def _resolve_config(
    config_file: str | None, flags: dict[str, Any], base: dict[str, Any] | None = None, announce: bool = True
) -> Config:
    """Defaults, then ``base`` or the --config file, then the flags; validated, with the init chosen."""
    from mlptrain.config import build_config, default_init, merge
    from mlptrain.configfile import find_config, is_sweep_spec, load_config_file
    from mlptrain.data.datasets import check_dataset

    path = find_config(config_file) if config_file else None
    file_values = load_config_file(path) if path else dict(base or {})
    if is_sweep_spec(file_values):
        raise click.UsageError(f"{config_file} is a sweep spec, not a run config: run it with "
                               f"mlptrain sweep {config_file}")
    given = {key: value for key, value in flags.items() if value is not None}
    source = str(path) if path else "the run's config.yaml"
    sources = {key: source for key in file_values} | {key: _flag(key) for key in given}
    config = build_config(merge(file_values, given), sources)
    check_dataset(config.dataset, sources.get("dataset", "dataset"))
    if config.init is None and announce:
        config = default_init(config)
        click.echo(
            f"init: {config.init} (the default for {config.activation}; "
            "choose another with --init or --init-range)", err=True,
        )
    return config


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
