"""A sweep's results: one record per trial, ``results.jsonl`` and ``results.csv``, and the summary over seeds.

A record is built from the trial's own ``summary.json`` (so a trial finished
in an earlier invocation is reread, not rerun) or, for a trial that raised,
from the error. Both files are rewritten whole, atomically, after every
trial: an interrupted sweep leaves them describing exactly the trials that
finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlptrain.errors import RunDirError
from mlptrain.runs.files import read_json, write_text
from mlptrain.runs.schema import RESULT, SWEEP, checked
from mlptrain.sweep.spec import plain

RESULTS_JSONL, RESULTS_CSV, SWEEP_FILE, SPEC_COPY = "results.jsonl", "results.csv", "sweep.json", "spec.yaml"
FINISHED = ("complete", "diverged")  # a run directory with one of these in summary.json is not run again
OWNED = "owned"  # the status of a trial copy that found another copy running it: not a result
# The metric columns of a record: column -> (summary section, key in it).
METRICS = {
    "final_val_acc": ("final", "val_acc"), "final_val_loss": ("final", "val_loss"),
    "best_val_acc": ("best", "val_acc"), "best_val_loss": ("best", "val_loss"),
    "test_acc": ("test", "accuracy"), "test_loss": ("test", "loss"),
}
RESULTS_REMEDY = "run the same mlptrain sweep command again: it rewrites the results from the trials' runs"
SWEEP_REMEDY = "the sweep directory is damaged: run the sweep again into a new --out"
TAIL = ["best_epoch", "epochs_run", "wall_seconds", "blas_threads", "warnings", "error", "run_dir"]


def record_from_summary(name: str, params: dict[str, Any], summary: dict[str, Any],
                        error: str | None = None) -> dict[str, Any]:
    """A trial's result row from its run's ``summary.json``."""
    metrics = {column: (summary.get(section) or {}).get(key) for column, (section, key) in METRICS.items()}
    return {
        "trial": name, "status": summary["status"], **_params(params), **metrics,
        "best_epoch": summary.get("best_epoch"), "epochs_run": summary.get("epochs_run"),
        "wall_seconds": summary.get("wall_seconds"), "blas_threads": summary.get("blas_threads"),
        "warnings": sorted({w["code"] for w in summary.get("warnings", [])}), "error": error, "run_dir": name,
    }


def failed_record(name: str, params: dict[str, Any], error: str, wall_seconds: float,
                  threads: int | None) -> dict[str, Any]:
    """The row of a trial that raised: status ``failed`` and the error, no metrics."""
    return {
        "trial": name, "status": "failed", **_params(params), **{column: None for column in METRICS},
        "best_epoch": None, "epochs_run": None, "wall_seconds": round(wall_seconds, 3), "blas_threads": threads,
        "warnings": [], "error": error, "run_dir": name,
    }


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {"params": {k: plain(v) for k, v in params.items() if k != "seed"}, "seed": params["seed"]}


def write_results(sweep_dir: Path, varying: list[str], records: list[dict[str, Any]]) -> None:
    """Rewrite ``results.jsonl`` (one JSON object per trial) and ``results.csv`` (one column per value)."""
    write_text(sweep_dir / RESULTS_JSONL, "".join(json.dumps(r) + "\n" for r in records))
    columns = ["trial", "status", *varying, "seed", *METRICS, *TAIL]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = {**r, **r["params"], "warnings": ";".join(r["warnings"])}
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    write_text(sweep_dir / RESULTS_CSV, text.getvalue())


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else "" if value is None else value


def read_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records of ``results.jsonl`` (empty before the first trial finished)."""
    path = sweep_dir / RESULTS_JSONL
    if not path.exists():
        return []
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable or not JSON lines: {exc}; {RESULTS_REMEDY}") from None
    return checked(rows, [RESULT], path, RESULTS_REMEDY)


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    """``sweep.json``: the spec, the varying keys (each a list in the grid) and the trial names."""
    path = sweep_dir / SWEEP_FILE
    record = checked(read_json(path), SWEEP, path, SWEEP_REMEDY)
    if not all(isinstance(record["spec"]["grid"].get(key), list) for key in record["varying"]):
        raise RunDirError(f"{path} is damaged: a varying key has no list of values in its grid; {SWEEP_REMEDY}")
    return record


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


@dataclass
class Group:
    """The trials of one grid point over its seeds."""

    params: dict[str, Any]
    seeds: int
    statuses: dict[str, int]
    val_acc: tuple[float, float] | None  # mean, std over the seeds that have a value
    test_acc: tuple[float, float] | None


def group_over_seeds(records: list[dict[str, Any]], varying: list[str]) -> list[Group]:
    """One Group per grid point, best mean validation accuracy first (points without one last)."""
    points: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        points.setdefault(json.dumps([r["params"].get(k) for k in varying]), []).append(r)
    groups = []
    for rows in points.values():
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        groups.append(Group({k: rows[0]["params"].get(k) for k in varying}, len(rows), statuses,
                            mean_std([r["best_val_acc"] for r in rows]), mean_std([r["test_acc"] for r in rows])))
    return sorted(groups, key=lambda g: -g.val_acc[0] if g.val_acc else math.inf)


def mean_std(values: list[float | None]) -> tuple[float, float] | None:
    """Mean and sample standard deviation of the values present (std 0 for one value)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else 0.0


def format_summary(groups: list[Group], varying: list[str]) -> str:
    """The summary table: one line per grid point, mean ± std over seeds, in percent."""
    headers = [*varying, "seeds", "val acc %", "test acc %", "status"]
    rows = [[*(show_value(g.params[k]) for k in varying), str(g.seeds), _pm(g.val_acc), _pm(g.test_acc),
             ", ".join(f"{n} {s}" for s, n in sorted(g.statuses.items()))] for g in groups]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    left = {*range(len(varying)), len(headers) - 1}  # names and statuses read left-aligned, numbers right

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(headers), *(line(r) for r in rows)]
    return "\n".join(text.rstrip() for text in out)


def show_value(value: Any) -> str:
    """A grid value in tables and plot ticks: 0.001, relu, 256,256."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _pm(stat: tuple[float, float] | None) -> str:
    return "-" if stat is None else f"{100 * stat[0]:.2f} ± {100 * stat[1]:.2f}"
