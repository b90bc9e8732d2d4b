"""The command line: a thin Click shell over the library.

This is the only module that knows about the terminal. Library errors
(``MlptrainError``) become one ``Error: …`` line and the error's exit status;
the fit flags are generated from ``config.FIELDS`` so the table, the flags and
their validation cannot drift apart.
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from mlptrain import __version__
from mlptrain.config import FIELDS, Config, Field
from mlptrain.errors import MlptrainError, Terminated
from mlptrain.threads import blas_threads

EXIT_GATE_FAILED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _Failure(click.ClickException):
    """A library error on its way out as ``Error: …`` with its own exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlptrainError as exc:
            raise _Failure(str(exc), exc.exit_code) from None
        except MemoryError:
            raise _Failure("out of memory: the network or the data set is too large for this machine; "
                           "use smaller --hidden layers or a smaller --batch-size", 1) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlptrain")
def cli() -> None:
    """Train multilayer perceptrons on MNIST-family data with nothing but NumPy.

    \b
    Example:
        mlptrain fit --activation relu --init-range 0.5 --epochs 3
        mlptrain eval runs/<run>
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


# --- options shared by the commands that touch data -------------------------------


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
        help="BLAS threads for the matrix products [default: the cores available; env: MLPTRAIN_THREADS].",
    )(f)


def _show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def download_progress(quiet: bool):
    """A ProgressFactory drawing tqdm byte bars on stderr, or None when they would be noise."""
    if not _show_progress(quiet):
        return None
    from tqdm import tqdm

    @contextmanager
    def progress(desc: str, total: int | None) -> Iterator[Callable[[int], object]]:
        with tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False) as bar:
            yield bar.update

    return progress


def load_data(dataset: str, data_dir: Path, mirror: str | None, quiet: bool):
    """Locate (downloading if needed) and load a data set."""
    from mlptrain.data import load_dataset, locate

    directory = locate(dataset, data_dir, mirror, download_progress(quiet))
    return load_dataset(directory, dataset), directory


# --- fit ------------------------------------------------------------------------------


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _click_type(field: Field) -> Any:
    if field.choices is not None:
        return click.Choice(field.choices())
    return {int: click.INT, float: click.FLOAT}.get(field.kind, click.STRING)


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


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file of config keys; flags override it.")
@config_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory to create [default: runs/<time>-<activation>-<init>].")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), metavar="RUN_DIR",
              help="Continue an interrupted run from its last checkpoint (same config).")
@click.option("--verbose", "-v", is_flag=True, help="Print the init check's per-layer table.")
@click.option("--strict", is_flag=True, help="Exit with status 3 when the run raised any health warning.")
@threads_option
@data_options
def fit(config_file: Path | None, out: Path | None, resume: Path | None, verbose: bool, strict: bool,
        threads: int | None, data_dir: Path, mirror: str | None, quiet: bool, **flags: Any) -> None:
    """Train a network and write a run directory.

    Flags override the keys of --config; the fully resolved config is saved in
    the run. The --init, --init-range and --init-std flags replace the file's
    init settings as a group. A checkpoint is written after every epoch;
    --resume RUN_DIR continues an interrupted run and ends exactly as an
    uninterrupted one would.

    \b
    Examples:
        mlptrain fit --epochs 3
        mlptrain fit --activation relu --init-range 0.5
        mlptrain fit --config configs/logistic.yaml --seed 2 --out runs/logistic-s2
        mlptrain fit --config configs/mnist-best.yaml
        mlptrain fit --resume runs/logistic-s2
    """
    from mlptrain.experiment import run_fit

    if resume is not None:
        config = _resume_config(resume, out, config_file, flags)
    else:
        config = _resolve_config(config_file, flags)
    data, directory = load_data(config.dataset, data_dir, mirror, quiet)
    with blas_threads(threads) as n:
        summary = run_fit(config, data, directory, out, _FitReporter(quiet, verbose), resume=resume, threads=n)
    if strict and summary["warnings"]:
        codes = sorted({w["code"] for w in summary["warnings"]})
        click.echo(f"Error: --strict: the run raised {len(summary['warnings'])} warning(s): {', '.join(codes)}",
                   err=True)
        sys.exit(EXIT_GATE_FAILED)


def _resume_config(resume: Path, out: Path | None, config_file: Path | None, flags: dict[str, Any]) -> Config:
    """The run's own config; any --config or flag given must agree with it."""
    from mlptrain.config import build_config
    from mlptrain.experiment import check_resumable, config_differences

    if out is not None:
        raise click.UsageError("--resume continues RUN_DIR in place; drop --out")
    stored = build_config(check_resumable(resume), {key: str(resume / "config.yaml") for key in FIELDS})
    requested = _resolve_config(config_file, flags, base=stored.to_dict(), announce=False)
    differences = config_differences(stored, requested)
    if differences:
        raise click.UsageError(
            f"cannot resume {resume} with a different config: {'; '.join(differences)}. "
            "Resume without those flags, or start a new run"
        )
    return stored


def _resolve_config(
    config_file: Path | None, flags: dict[str, Any], base: dict[str, Any] | None = None, announce: bool = True
) -> Config:
    """Defaults, then ``base`` or the --config file, then the flags; validated, with the init chosen."""
    from mlptrain.config import build_config, default_init, load_config_file, merge

    file_values = load_config_file(config_file) if config_file else dict(base or {})
    given = {key: value for key, value in flags.items() if value is not None}
    source = str(config_file) if config_file else "the run's config.yaml"
    sources = {key: source for key in file_values} | {key: _flag(key) for key in given}
    config = build_config(merge(file_values, given), sources)
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
        if not _show_progress(self.quiet):
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
            click.echo(f"best epoch: {summary['best_epoch']} ({monitor} {best[monitor]:.4g}); "
                       f"weights saved from epoch {summary['weights_from_epoch']}")
        click.echo(f"test accuracy {test['accuracy']:.2%}  loss {test['loss']:.4f}")
        click.echo(f"run directory: {summary['run_dir']}  (evaluate: mlptrain eval {summary['run_dir']})")


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


# --- eval -------------------------------------------------------------------------------


@cli.command("eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--dataset", help="Evaluate on this data set instead of the one the run trained on "
              "(same image size).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
@click.option("--min-accuracy", type=click.FloatRange(0, 100), metavar="X",
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
    """
    from mlptrain.experiment import evaluate_run

    with blas_threads(threads):
        report = evaluate_run(run_dir, dataset, lambda name: load_data(name, data_dir, mirror, quiet)[0])
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
    for c, (acc, row) in enumerate(zip(report["per_class_accuracy"], confusion)):
        shown = "     -" if acc is None else f"{acc:>7.2%}"
        lines.append(f"{c:>5}  {shown:>8}  " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def _check_gate(accuracy: float, min_accuracy: float | None) -> None:
    if min_accuracy is None:
        return
    threshold = min_accuracy / 100 if min_accuracy > 1 else min_accuracy
    if accuracy < threshold:
        click.echo(f"Error: test accuracy {accuracy:.2%} is below --min-accuracy {threshold:.2%}", err=True)
        sys.exit(EXIT_GATE_FAILED)


# --- inspect and plot -------------------------------------------------------------------


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def inspect(run_dir: Path) -> None:
    """Describe a run: config, outcome, warnings, epochs and per-layer health.

    Works on unfinished runs too (it says so).

    \b
    Example:
        mlptrain inspect runs/20261127-101500-relu-uniform
    """
    from mlptrain.runreport import format_run, load_run

    click.echo(format_run(load_run(run_dir)))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR...")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("comparison.png"),
              show_default=True, help="With several runs: where to write their overlaid learning curves.")
def plot(run_dirs: tuple[Path, ...], out: Path) -> None:
    """Write PNG plots into each run: curves.png, health.png and, after eval, confusion.png.

    With several runs, also overlay their learning curves in one PNG (--out).
    Given a sweep directory (from mlptrain sweep), write its heatmap (two
    varying keys) or curves (one) of test accuracy instead.

    \b
    Examples:
        mlptrain plot runs/relu-tiny
        mlptrain plot runs/logistic runs/relu --out logistic-vs-relu.png
        mlptrain plot sweeps/sweep-init-scale
    """
    from mlptrain.plots import plot_comparison, plot_run, plot_sweep
    from mlptrain.runreport import load_run
    from mlptrain.sweepresults import is_sweep_dir

    sweeps = [path for path in run_dirs if is_sweep_dir(path)]
    records = [load_run(run_dir) for run_dir in run_dirs if run_dir not in sweeps]
    for record in records:
        if not record.history:
            raise _Failure(f"{record.run_dir} has no finished epoch to plot yet", 1)
    for sweep_dir in sweeps:
        for path in plot_sweep(sweep_dir):
            click.echo(f"wrote {path}")
    for record in records:
        for path in plot_run(record):
            click.echo(f"wrote {path}")
    if len(records) > 1:
        click.echo(f"wrote {plot_comparison(records, out)}")


# --- sweep ------------------------------------------------------------------------------


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC.yaml")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="SWEEP_DIR",
              help="Sweep directory; each trial is a run directory in it [default: sweeps/<spec name>].")
@click.option("--workers", type=click.IntRange(1, 1024),
              help="Local worker processes, or the LocalCluster's workers with --cluster local "
              "[default: the cores available].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run the trials on this running Dask scheduler, e.g. tcp://127.0.0.1:8786 (needs mlptrain[dask]).")
@click.option("--cluster", type=click.Choice(["local"]),
              help="Start a Dask LocalCluster on 127.0.0.1 for the duration (needs mlptrain[dask]).")
@click.option("--threads", type=click.IntRange(1, 1024),
              help="BLAS threads per trial [default: cores // workers, at least 1; 1 with --scheduler].")
@click.option("--plot", "make_plot", is_flag=True,
              help="At the end, write sweep-heatmap.png (two varying keys) or sweep-curves.png (one).")
@data_options
def sweep(spec: Path, out: Path | None, workers: int | None, scheduler: str | None, cluster: str | None,
          threads: int | None, make_plot: bool, data_dir: Path, mirror: str | None, quiet: bool) -> None:
    """Run a grid of trials from SPEC.yaml: a base config, a grid of values, seeds.

    Each trial is a normal run directory inside SWEEP_DIR, named from the
    values that vary (activation=relu,init_range=0.01,seed=1). Results go to
    SWEEP_DIR/results.csv and results.jsonl, and a table grouped over seeds is
    printed, best validation accuracy first. A failed trial is recorded and the
    others go on (exit 1 at the end); running the same command again skips
    finished trials and resumes the others, also after Ctrl-C.

    \b
    Examples:
        mlptrain sweep configs/sweep-init-scale.yaml --workers 2 --plot
        mlptrain sweep configs/sweep-init-scale.yaml --cluster local --out sweeps/init-dask
        mlptrain sweep configs/sweep-init-scale.yaml --scheduler tcp://127.0.0.1:8786
    """
    from mlptrain.sweep import load_spec
    from mlptrain.sweeprun import import_distributed, run_sweep
    from mlptrain.threads import available_cores

    if scheduler and cluster:
        raise click.UsageError("give --scheduler ADDRESS or --cluster local, not both")
    if scheduler and workers:
        raise click.UsageError("--workers does not apply to --scheduler: the cluster's own workers run the trials")
    plan = load_spec(spec)
    if make_plot and len(plan.varying) not in (1, 2):
        raise click.UsageError(f"--plot draws one or two varying keys; this sweep varies {len(plan.varying)}"
                               f"{': ' + ', '.join(plan.varying) if plan.varying else ''}; drop --plot")
    if scheduler or cluster:
        import_distributed()  # before any download: a missing extra is a one-line error now, not later
    workers = workers or available_cores()
    threads = threads or (1 if scheduler else max(1, available_cores() // workers))
    executor = _sweep_executor(scheduler, cluster, workers)
    out = (out or Path("sweeps") / spec.stem).resolve()  # absolute: workers may run elsewhere
    data_dirs = _sweep_data(plan, data_dir, mirror, quiet)
    click.echo(f"sweep: {plan.describe()} in {out}; on {executor.description}, "
               f"{threads} BLAS thread{'s' if threads != 1 else ''} per trial", err=True)
    reporter = _SweepReporter(quiet)
    try:
        with executor:
            outcome = run_sweep(plan, out, spec.read_text(encoding="utf-8"), data_dirs, executor, threads,
                                f"mlptrain sweep {spec}", reporter.start, reporter.record)
    finally:
        reporter.close()
    _sweep_report(plan, out, outcome, make_plot)


def _sweep_executor(scheduler: str | None, cluster: str | None, workers: int) -> Any:
    from mlptrain.sweeprun import DaskExecutor, LocalPool

    return DaskExecutor(scheduler, workers) if scheduler or cluster else LocalPool(workers)


def _sweep_data(plan: Any, data_dir: Path, mirror: str | None, quiet: bool) -> dict[str, Path]:
    """Each data set's directory (downloaded into the cache if needed), absolute, its files checked."""
    from mlptrain.data import find_files, locate
    from mlptrain.sweeprun import data_names

    directories = {}
    for name in data_names(plan):
        directory = locate(name, data_dir, mirror, download_progress(quiet)).resolve()
        find_files(directory)
        directories[name] = directory
    return directories


class _SweepReporter:
    """A tqdm bar of trials on stderr (not with -q or off a terminal) and a line per failed or diverged trial."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self._bar = quiet, None

    def start(self, finished: int, total: int) -> None:
        if finished:
            self._echo(f"{finished} of {total} trials finished earlier: skipped")
        if _show_progress(self.quiet):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=finished, unit="trial", desc="sweep")

    def record(self, record: dict[str, Any]) -> None:
        if record["status"] in ("failed", "diverged"):
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


def _sweep_report(plan: Any, out: Path, outcome: Any, make_plot: bool) -> None:
    """The table over seeds, where the results are, the plot; exit 1 when any trial failed."""
    from mlptrain.sweepresults import RESULTS_CSV, RESULTS_JSONL, format_summary, group_over_seeds

    click.echo(format_summary(group_over_seeds(outcome.records, plan.varying), plan.varying))
    click.echo(f"results: {out / RESULTS_CSV} and {RESULTS_JSONL}; trial runs in {out}")
    if make_plot:
        from mlptrain.plots import plot_sweep

        for path in plot_sweep(out):
            click.echo(f"wrote {path}")
    failed = outcome.failed
    if failed:
        first = failed[0]
        raise _Failure(f"{len(failed)} of {len(plan.trials)} trials failed (first: {first['trial']}: "
                       f"{first['error']}); errors are in {out / RESULTS_CSV}; fix the cause and run the same "
                       "command again to retry them", 1)


# --- data -------------------------------------------------------------------------------


@cli.group(cls=_Group)
def data() -> None:
    """Download, verify and list the cached data sets.

    \b
    Example:
        mlptrain data download --dataset fashion-mnist
    """


def _known_datasets(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    """Check --dataset names against the DATASETS table as it is now (a usage error: exit 2)."""
    from mlptrain.datasets import DATASETS

    for name in names:
        if name not in DATASETS:
            raise click.BadParameter(f"{name!r} is not a known data set; choose from: {', '.join(DATASETS)}")
    return names


@data.command()
@click.option("--dataset", "datasets", multiple=True, default=["mnist"], show_default=True,
              metavar="NAME", callback=_known_datasets,
              help="Data set to fetch, as listed by `mlptrain data list` (repeatable).")
@data_options
def download(datasets: tuple[str, ...], data_dir: Path, mirror: str | None, quiet: bool) -> None:
    """Fetch data sets into the cache and verify their checksums.

    Files already cached and intact are not fetched again.

    \b
    Examples:
        mlptrain data download
        MLPTRAIN_MIRROR=/mnt/datasets/mnist mlptrain data download --dataset mnist
    """
    from mlptrain.datasets import DATASETS
    from mlptrain.download import ensure_dataset

    for name in datasets:
        directory = ensure_dataset(DATASETS[name], data_dir, mirror=mirror, progress=download_progress(quiet))
        click.echo(f"{name}: verified in {directory}")


@data.command()
@click.option("--dataset", "datasets", multiple=True, metavar="NAME", callback=_known_datasets,
              help="Data set to check (repeatable) [default: every cached one].")
@click.option("--data-dir", envvar="MLPTRAIN_DATA_DIR", default="data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Download cache [env: MLPTRAIN_DATA_DIR].")
def verify(datasets: tuple[str, ...], data_dir: Path) -> None:
    """Check the cached files against their published checksums (exit 1 if any fail).

    \b
    Example:
        mlptrain data verify --dataset mnist
    """
    from mlptrain.datasets import DATASETS
    from mlptrain.download import cache_status

    names = datasets or [n for n in DATASETS if any(s.present for s in cache_status(DATASETS[n], data_dir))]
    bad = []
    for name in names:
        for status in cache_status(DATASETS[name], data_dir):
            state = "ok" if status.verified else "MISSING" if not status.present else "CORRUPT"
            click.echo(f"{name:<14} {status.name:<28} {state}")
            bad += [] if status.verified else [f"{name}/{status.name}"]
    if not names:
        click.echo(f"no data sets cached in {data_dir}; run: mlptrain data download")
    if bad:
        raise _Failure(f"{len(bad)} file(s) missing or corrupt; run: mlptrain data download", 1)


@data.command("list")
@click.option("--data-dir", envvar="MLPTRAIN_DATA_DIR", default="data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Download cache [env: MLPTRAIN_DATA_DIR].")
def list_(data_dir: Path) -> None:
    """List the known data sets and what of each is cached (size, verified or not).

    \b
    Example:
        mlptrain data list --data-dir ~/mlptrain-data
    """
    from mlptrain.datasets import DATASETS
    from mlptrain.download import cache_status

    click.echo(f"{'dataset':<14} {'files':>5} {'MB':>7}  state         description")
    for name, spec in DATASETS.items():
        statuses = cache_status(spec, data_dir)
        present = [s for s in statuses if s.present]
        size = sum(s.size or 0 for s in present) / 1e6
        state = ("verified" if all(s.verified for s in statuses) else "CORRUPT" if any(
            s.present and not s.verified for s in statuses) else "partial" if present else "not cached")
        click.echo(f"{name:<14} {len(present):>3}/4 {size:>7.1f}  {state:<13} {spec.description}")
    click.echo(f"cache: {data_dir.resolve()}")
