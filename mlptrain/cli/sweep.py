"""``mlptrain sweep``: a grid of trials on local processes or a Dask cluster, and its report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlptrain.cli.common import (
    Failure,
    data_options,
    download_progress,
    show_progress,
    threads_option,
    warn_if_unlocked,
)


@click.command()
@click.argument("spec_name", metavar="SPEC.yaml|NAME", required=False)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="SWEEP_DIR",
              help="Sweep directory; each trial is a run directory in it [default: sweeps/<spec name>].")
@click.option("--workers", type=click.IntRange(1, 1024),
              help="Local worker processes, or the LocalCluster's workers with --cluster local "
              "[default: the cores available].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the trials on this running Dask scheduler, e.g. tcp://127.0.0.1:8786 (needs mlptrain[dask]).")
@click.option("--cluster", type=click.Choice(["local"]),
              help="Start a Dask LocalCluster on 127.0.0.1 for the duration (needs mlptrain[dask]).")
@threads_option(help_text="BLAS threads per trial [default: cores // workers, at least 1; 1 with --scheduler].",
                envvar=None)
@click.option("--overwrite", is_flag=True, help="Replace SWEEP_DIR if it holds a sweep, starting over (refused while "
              "a process writes it or one of its trials, and for a directory that is not a sweep).")
@click.option("--report", type=click.Path(file_okay=False, path_type=Path), metavar="SWEEP_DIR",
              help="Print the table over seeds of a sweep directory from its files alone (no data, no training).")
@click.option("--plot", "make_plot", is_flag=True,
              help="At the end, write sweep-heatmap.png (two or more varying keys: one heatmap per value of the "
              "others) or sweep-curves.png (one).")
@data_options
def sweep(spec_name: str, out: Path | None, workers: int | None, scheduler: str | None, cluster: str | None,
          threads: int | None, overwrite: bool, report: Path | None, make_plot: bool, data_dir: Path,
          mirror: str | None, quiet: bool) -> None:
    """Run a grid of trials from SPEC.yaml (a base config, a grid of values, seeds), or a search.

    Each trial is a normal run directory inside SWEEP_DIR, named from the
    values that vary (activation=relu,init_range=0.01,seed=1). Results go to
    SWEEP_DIR/results.csv and results.jsonl; the table grouped over seeds (mean,
    sample std, 95% interval) goes to summary.csv and summary.md and is printed,
    best validation accuracy first. A failed trial is recorded and the
    others go on (exit 1 at the end); running the same command again skips
    finished trials and resumes the others, also after Ctrl-C.

    \b
    Examples:
        mlptrain sweep sweep-init-scale --workers 2 --plot
        mlptrain sweep sweep-init-scale --cluster local --out sweeps/init-dask
        mlptrain sweep my-sweep.yaml --scheduler tcp://127.0.0.1:8786
        mlptrain sweep search-mnist --workers 2 --plot
        mlptrain sweep --report sweeps/sweep-init-scale
    """
    from mlptrain.configfile import find_config
    from mlptrain.sweep.execute import run_sweep
    from mlptrain.sweep.executors import import_distributed
    from mlptrain.sweep.search import run_search
    from mlptrain.sweep.space import is_search_spec, load_search
    from mlptrain.sweep.spec import load_spec
    from mlptrain.threads import available_cores

    if report is not None:
        if spec_name is not None:
            raise click.UsageError("--report SWEEP_DIR prints a finished sweep's table; give it without SPEC.yaml")
        if overwrite:
            raise click.UsageError("--report only reads the sweep; drop --overwrite")
        _print_report(report, make_plot)
        return
    if spec_name is None:
        raise click.UsageError("give the sweep's SPEC.yaml (or a shipped spec's name), or --report SWEEP_DIR")
    if scheduler and cluster:
        raise click.UsageError("give --scheduler ADDRESS or --cluster local, not both")
    if scheduler and workers:
        raise click.UsageError("--workers does not apply to --scheduler: the cluster's own workers run the trials")
    spec = find_config(spec_name)
    search = is_search_spec(spec)
    plan = load_search(spec) if search else load_spec(spec)  # every trial's config (search: each edge) resolved
    if make_plot and not plan.varying:
        raise click.UsageError("--plot draws accuracy over the grid's keys; this sweep varies only the seed "
                               "(its spread is in summary.csv); drop --plot")
    if plan.base.get("tensorboard") or (not search and any(t.config.tensorboard for t in plan.trials)):
        from mlptrain.runs.tensorboard import require_tensorboard

        require_tensorboard()  # before any download or trial: a missing extra is one line
    if search:
        from mlptrain.sweep.study import import_optuna

        import_optuna()
    if scheduler or cluster:
        import_distributed()  # before any download: a missing extra is a one-line error now, not later
    workers = workers or available_cores()
    threads = threads or (1 if scheduler else max(1, available_cores() // workers))
    executor = _sweep_executor(scheduler, cluster, workers)
    out = (out or Path("sweeps") / spec.stem).resolve()  # absolute: workers may run elsewhere
    data_dirs = _sweep_data(_preparations(plan, search), data_dir, mirror, quiet)
    click.echo(f"sweep: {plan.describe()} in {out}; on {executor.description}, "
               f"{threads} BLAS thread{'s' if threads != 1 else ''} per trial", err=True)
    warn_if_unlocked()
    if overwrite:
        from mlptrain.cli.runs import replace_out

        replace_out(out, "sweep")
    reporter = _SweepReporter(quiet)
    run = run_search if search else run_sweep
    try:
        with executor:
            outcome = run(plan, out, spec.read_text(encoding="utf-8"), data_dirs, executor, threads,
                          f"mlptrain sweep {spec_name}", reporter.start, reporter.record, data_dir.resolve())
    finally:
        reporter.close()
    _sweep_report(plan, out, outcome, make_plot, search)


def _sweep_executor(scheduler: str | None, cluster: str | None, workers: int) -> Any:
    from mlptrain.sweep.executors import DaskExecutor, LocalPool

    return DaskExecutor(scheduler, workers) if scheduler or cluster else LocalPool(workers)


def _preparations(plan: Any, search: bool) -> list[tuple[str, Any]]:
    """(data set, preparation) of every trial; a search's trials share its base's preparation."""
    if not search:
        return [(t.config.dataset, t.config.preparation()) for t in plan.trials]
    from mlptrain.config import build_config

    keys = ("preprocess", "image_size", "image_shape", "test_size")
    preparation = build_config({key: plan.base[key] for key in keys if key in plan.base}).preparation()
    return [(name, preparation) for name in plan.datasets]


def _sweep_data(pairs: list[tuple[str, Any]], data_dir: Path, mirror: str | None, quiet: bool) -> dict[str, Path]:
    """Each data set's location (downloaded into the cache if needed), absolute; each loaded once per preparation
    (``pairs``: data set, preparation), so that the data is checked, and prepared into the cache once, before the
    trials start."""
    from mlptrain.data.loading import load_dataset, locate

    directories: dict[str, Path] = {}
    for name, preparation in dict.fromkeys(pairs):
        directory = directories.get(name) or locate(name, data_dir, mirror, download_progress(quiet)).resolve()
        load_dataset(directory, name, preparation, data_dir, progress=download_progress(quiet, unit="image"))
        directories[name] = directory
    return directories


class _SweepReporter:
    """A tqdm bar of trials on stderr (not with -q or off a terminal) and a line per failed or diverged trial."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self._bar = quiet, None

    def start(self, finished: int, total: int) -> None:
        if finished:
            self._echo(f"{finished} of {total} trials finished earlier: skipped")
        if show_progress(self.quiet):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=finished, unit="trial", desc="sweep")

    def record(self, record: dict[str, Any]) -> None:
        if record["status"] in ("failed", "diverged"):  # pruned is a search's ordinary outcome: the bar counts it
            self._echo(f"trial {record['trial']} {record['status']}: {record['error']}")
        if self._bar is not None:
            self._bar.update(1)

    def _echo(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _sweep_report(plan: Any, out: Path, outcome: Any, make_plot: bool, search: bool) -> None:
    """The table over seeds, where the results are, the plot; exit 1 when any trial failed or was not recorded."""
    from mlptrain.sweep.results import RESULTS_CSV, RESULTS_JSONL
    from mlptrain.sweep.summary import SUMMARY_CSV, SUMMARY_MD, format_points, summarize

    if search:
        _search_table(out, outcome.records, plan.varying)
    else:
        click.echo(format_points(summarize(outcome.records, plan.varying), plan.varying))
    click.echo(f"results: {out / RESULTS_CSV} and {RESULTS_JSONL}; over seeds: {SUMMARY_CSV} and {SUMMARY_MD}; "
               f"trial runs in {out}")
    if make_plot:
        from mlptrain.plots.sweep import plot_sweep

        for path in plot_sweep(out):
            click.echo(f"wrote {path}")
    for record in outcome.owned:
        click.echo(f"trial {record['trial']} not recorded: {record['error']}", err=True)
    total = plan.trials if search else len(plan.trials)
    if search and len(outcome.records) + len(outcome.owned) < total:
        click.echo(f"time_budget of {plan.time_budget:g} s reached: {len(outcome.records)} of {total} trials done; "
                   "run the same command again for more", err=True)
    failed = outcome.failed
    if outcome.owned and not failed:
        raise Failure(f"{len(outcome.owned)} of {total} trials were being run by another process and are "
                      f"not in {out / RESULTS_CSV}; run the same command again once it has finished", 1)
    if failed:
        first = failed[0]
        raise Failure(f"{len(failed)} of {total} trials failed (first: {first['trial']}: "
                       f"{first['error']}); errors are in {out / RESULTS_CSV}; fix the cause and run the same "
                       "command again to retry them", 1)


def _print_report(sweep_dir: Path, make_plot: bool) -> None:
    """The table over seeds from ``sweep.json`` and ``results.jsonl``; nothing is trained or downloaded."""
    from mlptrain.errors import RunDirError
    from mlptrain.sweep.results import SWEEP_FILE, is_sweep_dir, read_results, read_sweep
    from mlptrain.sweep.summary import format_points, summarize

    if not is_sweep_dir(sweep_dir):
        raise RunDirError(f"{sweep_dir} is not a sweep directory (it has no {SWEEP_FILE}); give the --out of a "
                          "mlptrain sweep")
    info, records = read_sweep(sweep_dir), read_results(sweep_dir)
    if not records:
        raise RunDirError(f"{sweep_dir} has no finished trial yet")
    varying = info.get("varying") if isinstance(info, dict) else None
    if not isinstance(varying, list):
        raise RunDirError(f"{sweep_dir / SWEEP_FILE} has no list of varying keys; the sweep directory is damaged")
    if info.get("kind") == "search":
        _search_table(sweep_dir, records, varying)
        total = info.get("trials_planned", len(records))
    else:
        click.echo(format_points(summarize(records, varying), varying))
        total = len(info.get("trials") or [])
    click.echo(f"{len(records)} of {total} trials recorded in {sweep_dir}")
    if make_plot:
        from mlptrain.plots.sweep import plot_sweep

        for path in plot_sweep(sweep_dir):
            click.echo(f"wrote {path}")


def _search_table(sweep_dir: Path, records: list[dict[str, Any]], varying: list[str]) -> None:
    """A search's best trials, and where its best config is."""
    from mlptrain.sweep.search import BEST_FILE, format_search

    click.echo(format_search(records, varying))
    if (sweep_dir / BEST_FILE).exists():
        click.echo(f"best config: {sweep_dir / BEST_FILE}  (mlptrain fit --config {sweep_dir / BEST_FILE})")
