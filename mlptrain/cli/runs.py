"""``mlptrain runs``: a table of the runs under some directories; ``mlptrain compare``: runs side by side;
and the ``--overwrite`` of ``fit`` and ``sweep``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlptrain.cli.common import Failure

DEFAULT_ROOTS = (Path("runs"), Path("sweeps"))


def _condition(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[tuple[str, str]]:
    conditions = []
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{text!r} is not KEY=VALUE, e.g. --where activation=relu", ctx, param)
        conditions.append((key.strip().replace("-", "_"), value.strip()))
    return conditions


@click.command()
@click.argument("dirs", nargs=-1, type=click.Path(path_type=Path), metavar="[DIR]...")
@click.option("--no-trials", is_flag=True, help="Leave out the trials of sweeps.")
@click.option("--sort", "sort_key", metavar="KEY", default="name", show_default=True,
              help="Sort by a column (name, status, test_acc, val_acc, started, ...) or a config key.")
@click.option("--reverse", "-r", is_flag=True, help="Sort in descending order (best accuracy first).")
@click.option("--where", "conditions", multiple=True, metavar="KEY=VALUE", callback=_condition,
              help="Only runs whose column or config key has this value (repeatable; all must hold), "
              "e.g. activation=relu, status=complete, warnings=dead-units.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the runs instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def runs(dirs: tuple[Path, ...], no_trials: bool, sort_key: str, reverse: bool, conditions: list[tuple[str, str]],
         as_json: bool, as_csv: bool) -> None:
    """List the runs under DIR... (default: ./runs and ./sweeps), one line each.

    Status is complete, diverged, running (with the pid of the process
    writing it), interrupted (resume with fit --resume), failed (a sweep trial
    that raised) or unreadable (a damaged file; the reason follows the table).
    Only summaries, configs and metrics are read, never weights.

    \b
    Examples:
        mlptrain runs
        mlptrain runs sweeps/init --sort test_acc -r --where activation=relu
        mlptrain runs runs --no-trials --json
    """
    from mlptrain.runs.table import check_key, filter_rows, find_runs, format_table, plain_row, sort_rows

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    check_key(sort_key.replace("-", "_"), "--sort")
    roots = list(dirs) or [root for root in DEFAULT_ROOTS if root.is_dir()]
    if not roots:
        raise click.UsageError("no ./runs or ./sweeps here; give the directories that hold runs: mlptrain runs DIR")
    rows = sort_rows(filter_rows(find_runs(roots, trials=not no_trials), conditions), sort_key.replace("-", "_"),
                     reverse)
    if as_json:
        click.echo(json.dumps([plain_row(row) for row in rows], indent=2))
    elif as_csv:
        click.echo(_csv([plain_row(row) for row in rows]), nl=False)
    elif rows:
        click.echo(format_table(rows))
    else:
        click.echo(f"no runs under {', '.join(map(str, roots))}" + (" matching --where" if conditions else ""),
                   err=True)


def replace_out(out: Path, kind: str) -> None:
    """``--overwrite`` of fit and sweep: remove the run or sweep at ``out`` (see runs.replace), saying so."""
    from mlptrain.runs.replace import replace_dir

    if replace_dir(out, kind):
        click.echo(f"--overwrite: deleted the earlier {kind} in {out}", err=True)


def _csv(rows: list[dict]) -> str:
    import csv
    import io

    from mlptrain.runs.table import COLUMNS, EXTRA_KEYS

    text = io.StringIO()
    writer = csv.DictWriter(text, [*COLUMNS, *EXTRA_KEYS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(v) if isinstance(v, list) else "" if v is None else v for k, v in row.items()})
    return text.getvalue()


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR RUN_DIR...")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the runs' learning curves, overlaid, to this PNG.")
def compare(run_dirs: tuple[Path, ...], plot_file: Path | None) -> None:
    """Put runs side by side: the config keys that differ, the results, the warnings.

    Only the keys whose values differ are shown. Works on unfinished runs
    too (their results so far).

    \b
    Examples:
        mlptrain compare runs/logistic runs/relu
        mlptrain compare sweeps/init/activation=relu,seed=0 sweeps/init/activation=tanh,seed=0 --plot cmp.png
    """
    from mlptrain.runs.compare import format_comparison, load_runs

    if len(run_dirs) < 2:
        raise click.UsageError("give two or more run directories to compare (mlptrain inspect RUN_DIR shows one)")
    records = load_runs(list(run_dirs))
    click.echo(format_comparison(records))
    if plot_file is not None:
        from mlptrain.plots.run import plot_comparison

        click.echo(f"wrote {plot_comparison(records, plot_file)}")


@click.command("tensorboard")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_DIR|SWEEP_DIR...")
def tensorboard(dirs: tuple[Path, ...]) -> None:
    """Write TensorBoard event files for runs made without --tensorboard.

    From each run's files: the config as text, the per-epoch scalars (loss,
    accuracy, lr, per-layer signal, gain, dead share, update/weight ratio), the
    test results and the HParams session. Not the per-interval training loss,
    which only a run with --tensorboard records. A sweep directory means all
    its trials; runs that already have event files are left as they are.
    Needs mlptrain[tensorboard].

    \b
    Examples:
        mlptrain tensorboard runs/demo
        mlptrain tensorboard sweeps/sweep-init-scale && tensorboard --logdir sweeps/sweep-init-scale
    """
    from mlptrain.runs.report import load_run
    from mlptrain.runs.table import find_runs
    from mlptrain.runs.tensorboard import has_events, require_tensorboard, write_run_events

    require_tensorboard()
    for directory in dirs:
        if not directory.is_dir():
            raise click.UsageError(f"{directory} is not a directory; give run or sweep directories")
    rows = find_runs(list(dirs))
    if not rows:
        raise Failure(f"no run directories under {', '.join(map(str, dirs))}; give directories made by mlptrain fit "
                      "or sweep", 1)
    for row in rows:
        run_dir = Path(row["path"])
        if row["status"] in ("unreadable", "failed"):
            click.echo(f"{run_dir}: skipped ({row['status']}: {row['error']})", err=True)
        elif row["status"] == "running":
            click.echo(f"{run_dir}: skipped (process {row['pid']} is writing it; run this again when it ends)",
                       err=True)
        elif has_events(run_dir):
            click.echo(f"{run_dir}: skipped (it has event files already)", err=True)
        else:
            record = load_run(run_dir)
            click.echo(f"wrote {write_run_events(run_dir, record.config, record.history, record.summary)}")
