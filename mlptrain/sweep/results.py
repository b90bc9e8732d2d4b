"""A sweep's results: one record per trial, ``results.jsonl`` and ``results.csv`` (the summary over seeds: ``summary``).

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
from pathlib import Path
from typing import Any

from mlptrain.errors import RunDirError
from mlptrain.runs.files import METRICS_FILE, RESULTS_JSONL, SWEEP_FILE, read_json, write_text
from mlptrain.runs.schema import RESULT, SWEEP, checked
from mlptrain.sweep.spec import plain

RESULTS_CSV, SPEC_COPY = "results.csv", "spec.yaml"
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


def failed_record(name: str, params: dict[str, Any], error: str | None, wall_seconds: float,
                  threads: int | None) -> dict[str, Any]:
    """The row of a trial that raised: status ``failed`` and the error, no metrics."""
    return {
        "trial": name, "status": "failed", **_params(params), **{column: None for column in METRICS},
        "best_epoch": None, "epochs_run": None, "wall_seconds": round(wall_seconds, 3), "blas_threads": threads,
        "warnings": [], "error": error, "run_dir": name,
    }


def pruned_record(name: str, params: dict[str, Any], run_dir: Path, wall_seconds: float,
                  threads: int | None) -> dict[str, Any]:
    """The row of a search trial its pruner stopped: status ``pruned``, validation metrics of the epochs it ran."""
    history = read_history(run_dir)
    best = max(history, key=lambda m: m.get("val_acc", -1.0), default={})
    last = history[-1] if history else {}
    record = failed_record(name, params, None, wall_seconds, threads)
    return {**record, "status": "pruned", "final_val_acc": last.get("val_acc"), "final_val_loss": last.get("val_loss"),
            "best_val_acc": best.get("val_acc"), "best_val_loss": best.get("val_loss"),
            "best_epoch": best.get("epoch"), "epochs_run": len(history)}


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """A run's ``metrics.jsonl`` (one dict per epoch; empty if it has none yet)."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
    """``sweep.json``: the spec, the varying keys (each a list in the grid) and the trial names (a search's:
    its varying keys, the rest as the search wrote it)."""
    path = sweep_dir / SWEEP_FILE
    raw = read_json(path)
    if isinstance(raw, dict) and raw.get("kind") == "search":  # a search's record has a space, not a grid
        return checked(raw, {"varying": [str]}, path, SWEEP_REMEDY)
    record = checked(raw, SWEEP, path, SWEEP_REMEDY)
    if not all(isinstance(record["spec"]["grid"].get(key), list) for key in record["varying"]):
        raise RunDirError(f"{path} is damaged: a varying key has no list of values in its grid; {SWEEP_REMEDY}")
    return record


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


def show_value(value: Any) -> str:
    """A grid value in tables and plot ticks: 0.001, relu, 256,256."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
