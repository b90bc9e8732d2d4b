"""``mlptrain plot``: PNGs of one run, several runs overlaid, or a sweep."""

from __future__ import annotations

from pathlib import Path

import click

from mlptrain.cli.common import Failure, data_dir_option, download_progress
from mlptrain.cli.types import OutputFile


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("--out", type=OutputFile(), default=Path("comparison.png"),
              show_default=True, help="Write only the learning curves of the runs given, overlaid, to this file "
              "(left out: several runs get them in comparison.png besides their own plots).")
@data_dir_option
@click.pass_context
def plot(ctx: click.Context, run_dirs: tuple[Path, ...], out: Path, data_dir: Path) -> None:
    """Write PNG plots into each run: curves.png, health.png, filters.png,
    norm.png (when the run has a norm: its scales and shifts per layer),
    inputs.png (training images as the net receives them, re-read from the
    run's data, never downloaded), augment.png (when the run augments) and,
    after eval, confusion.png.
    Several runs also get their learning curves overlaid in one PNG,
    comparison.png in the current directory.

    --out FILE writes only that: the runs' learning curves, overlaid (one
    run: its own), to FILE, and nothing into the runs.

    Given a sweep directory (from mlptrain sweep), write its heatmap (two
    varying keys) or curves (one) of test accuracy into it.

    \b
    Examples:
        mlptrain plot runs/relu-tiny
        mlptrain plot runs/logistic runs/relu --out logistic-vs-relu.png
        mlptrain plot sweeps/sweep-init-scale
    """
    from mlptrain.errors import DataError, MissingDependency
    from mlptrain.plots.inputs import INPUTS_FILE, plot_inputs
    from mlptrain.plots.run import plot_comparison, plot_run
    from mlptrain.plots.sweep import plot_sweep
    from mlptrain.runs.report import load_run
    from mlptrain.sweep.results import is_sweep_dir

    sweeps = [path for path in run_dirs if is_sweep_dir(path)]
    out_given = ctx.get_parameter_source("out") is not click.core.ParameterSource.DEFAULT
    if not out.parent.is_dir():
        raise click.BadParameter(f"{out}: there is no directory {out.parent}; create it, or choose another --out",
                                 param_hint="--out")
    if out_given and sweeps:
        raise Failure(f"--out {out} is for the learning curves of runs, and {sweeps[0]} is a sweep: its plots go "
                      "into its directory; plot it without --out", 1)
    records = [load_run(run_dir) for run_dir in run_dirs if run_dir not in sweeps]
    for record in records:
        if not record.history:
            raise Failure(f"{record.run_dir} has no finished epoch to plot yet", 1)
    if out_given:
        click.echo(f"wrote {plot_comparison(records, out)}")
        return
    for sweep_dir in sweeps:
        for path in plot_sweep(sweep_dir):
            click.echo(f"wrote {path}")
    for record in records:
        for path in plot_run(record):
            click.echo(f"wrote {path}")
        try:
            click.echo(f"wrote {plot_inputs(record, data_dir, download_progress(False, unit='image'))}")
        except (DataError, MissingDependency) as exc:  # the data is gone: the other figures stand
            click.echo(f"skipped {record.run_dir / INPUTS_FILE}: {exc}", err=True)
    if len(records) > 1:
        click.echo(f"wrote {plot_comparison(records, out)}")
