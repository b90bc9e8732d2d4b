"""The runs under some directories, one row each, for ``mlptrain runs``: read from summaries, never weights.

A run directory is one with ``config.yaml`` (written first) or ``summary.json``;
the walk does not go into a run directory (runs do not nest) nor into hidden
ones. A finished run is described by its ``summary.json`` alone (it holds the
config); an unfinished one by ``config.yaml``, the lines of ``metrics.jsonl``
and its lock (running, with the owner's pid, or interrupted). A sweep's trials
are run directories too; the sweep's ``results.jsonl`` says which of them
failed and which a search pruned (stopped on purpose, so not interrupted). A
file that cannot be read makes its run's row ``unreadable``, with the reason;
the other rows are unaffected.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

from mlptrain.config import FIELDS
from mlptrain.errors import ConfigError
from mlptrain.nn.initializers import describe_init
from mlptrain.runs.files import CONFIG_FILE, METRICS_FILE, RESULTS_JSONL, SUMMARY_FILE, SWEEP_FILE
from mlptrain.runs.lock import holder

# The columns of a row, in table order: key -> header. --sort and --where take these keys (or a config key).
COLUMNS = {
    "name": "run", "status": "status", "dataset": "data", "net": "net", "activation": "activation",
    "init": "init", "optimizer": "optimizer", "lr": "lr", "epochs": "epochs", "val_acc": "best val",
    "test_acc": "test", "warnings": "warnings", "started": "started",
}
EXTRA_KEYS = ("pid", "path", "error")  # in --json and --csv only
STATUSES = ("complete", "diverged", "running", "interrupted", "pruned", "failed", "unreadable")
ENDED = ("failed", "pruned")  # what a sweep records of a trial that has no summary.json
Row = dict[str, Any]
WARNINGS_WIDTH = 40  # the table shows the warning codes that fit in this many characters; --json has them all


class Unreadable(Exception):
    """A run file that cannot be read or does not hold what a run writes; the message says which and why."""


def find_runs(roots: list[Path], trials: bool = True) -> list[Row]:
    """One row per run under ``roots`` (each a run, a sweep, or a directory holding them), by name."""
    rows: list[Row] = []
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"{root} is not a directory; give directories that hold runs (e.g. runs sweeps)")
        for run_dir, ended in _walk(root, trials):
            name = run_dir.name if run_dir == root else run_dir.relative_to(root).as_posix()
            rows.append(read_row(run_dir, name, ended))
    return rows


def _walk(root: Path, trials: bool) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """(run directory, the sweep's failed or pruned record of it, or None), depth first, in name order."""
    stack: list[tuple[Path, dict[str, dict[str, Any]]]] = [(root, {})]
    while stack:
        directory, ended = stack.pop()
        if is_run_dir(directory):
            yield directory, ended.get(directory.name)
            continue
        if (directory / SWEEP_FILE).is_file():
            if not trials:
                continue
            ended = _sweep_ended(directory)
            yield from _failed_without_run(directory, ended)
        try:
            children = sorted((e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")),
                              reverse=True)
        except OSError:
            continue  # unreadable: nothing to list there
        stack.extend((directory / name, ended) for name in children)


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() or (path / SUMMARY_FILE).is_file()


def _sweep_ended(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """The trials a sweep recorded as failed or pruned, by name (a damaged results file tells nothing)."""
    try:
        lines = (sweep_dir / RESULTS_JSONL).read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError):
        return {}
    return {r["trial"]: r for r in records if isinstance(r, dict) and r.get("status") in ENDED
            and isinstance(r.get("trial"), str)}


def _failed_without_run(sweep_dir: Path, ended: dict[str, dict[str, Any]]) -> Iterator[tuple[Path, Any]]:
    """Failed trials that did not get as far as a config.yaml: their row comes from the sweep's record."""
    for name, record in sorted(ended.items()):
        if record["status"] == "failed" and not is_run_dir(sweep_dir / name):
            yield sweep_dir / name, record


def read_row(run_dir: Path, name: str, ended: dict[str, Any] | None = None) -> Row:
    """The row of one run; ``unreadable`` with the reason when one of its files is damaged."""
    row: Row = {key: None for key in (*COLUMNS, *EXTRA_KEYS)} | {"name": name, "path": str(run_dir), "warnings": []}
    try:
        if (run_dir / SUMMARY_FILE).is_file():
            _from_summary(row, _json_object(run_dir / SUMMARY_FILE))
        elif (run_dir / CONFIG_FILE).is_file():
            _unfinished(row, run_dir, ended)
        else:
            row.update(status="failed", error=str(ended.get("error")) if ended else None)
            return row
    except Unreadable as exc:
        row.update(status="unreadable", error=str(exc))
    row["started"] = _started(run_dir)
    return row


def _from_summary(row: Row, summary: dict[str, Any]) -> None:
    config = _mapping(summary, "config", SUMMARY_FILE)
    _from_config(row, config)
    status = summary.get("status")
    if status not in ("complete", "diverged") or not isinstance(summary.get("epochs_run"), int):
        raise Unreadable(f"{SUMMARY_FILE}: 'status' or 'epochs_run' is missing or not what fit writes")
    best, test = summary.get("best") or {}, summary.get("test") or {}
    warnings = summary.get("warnings")
    if not isinstance(best, dict) or not isinstance(test, dict) or not isinstance(warnings, list):
        raise Unreadable(f"{SUMMARY_FILE}: 'best', 'test' or 'warnings' is not what fit writes")
    row.update(status=status, epochs=summary["epochs_run"], val_acc=_number(best.get("val_acc")),
               test_acc=_number(test.get("accuracy")),
               warnings=sorted({w.get("code") for w in warnings if isinstance(w, dict) and w.get("code")}))


def _unfinished(row: Row, run_dir: Path, ended: dict[str, Any] | None) -> None:
    _from_config(row, _config(run_dir / CONFIG_FILE))
    history = _metrics(run_dir / METRICS_FILE)
    accuracies = [m["val_acc"] for m in history if isinstance(m.get("val_acc"), (int, float))]
    row.update(epochs=len(history), val_acc=max(accuracies) if accuracies else None)
    owner = holder(run_dir)
    if owner is not None:
        row.update(status="running", pid=owner.get("pid"))
    elif ended is not None and ended["status"] == "pruned":
        row["status"] = "pruned"
    elif ended is not None:
        row.update(status="failed", error=str(ended.get("error")))
    else:
        row["status"] = "interrupted"


def _from_config(row: Row, config: dict[str, Any]) -> None:
    hidden = config.get("hidden")
    scale = {key: value if isinstance(value := config.get(key), (int, float)) and not isinstance(value, bool)
             else None for key in ("init_range", "init_std")}
    given = config.get("init")
    init = describe_init(given, scale["init_range"], scale["init_std"]) if isinstance(given, str) else None
    row.update(config=config, dataset=config.get("dataset"), activation=config.get("activation"), init=init,
               optimizer=config.get("optimizer"), lr=_number(config.get("lr")), epochs_planned=config.get("epochs"),
               net="-".join(map(str, hidden)) if isinstance(hidden, list) else None)


def _json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(f"{path.name}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    except ValueError as exc:
        raise Unreadable(f"{path.name} is not JSON ({exc}): truncated or edited by hand?") from None
    if not isinstance(value, dict):
        raise Unreadable(f"{path.name} is not a JSON object")
    return value


def _mapping(value: dict[str, Any], key: str, file: str) -> dict[str, Any]:
    if not isinstance(value.get(key), dict):
        raise Unreadable(f"{file}: {key!r} is missing or not a mapping")
    return value[key]


def _config(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when PyYAML has it: many runs, fast
    try:
        value = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Unreadable(f"{path.name} is unreadable or not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise Unreadable(f"{path.name} is not a config mapping")
    return value


def _metrics(path: Path) -> list[dict[str, Any]]:
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise Unreadable(f"{path.name} is unreadable or not JSON lines: {exc}") from None
    return [row for row in rows if isinstance(row, dict)]


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _started(run_dir: Path) -> str | None:
    """When the run started: ``config.yaml``, its first file, was written then."""
    for name in (CONFIG_FILE, SUMMARY_FILE):
        try:
            return time.strftime("%Y-%m-%d %H:%M", time.localtime((run_dir / name).stat().st_mtime))
        except OSError:
            continue
    return None


def row_value(row: Row, key: str) -> Any:
    """A column's value, or a config key's (from the run's config) for --sort and --where."""
    if key in row and key != "config":
        return row[key]
    return (row.get("config") or {}).get(key)


def check_key(key: str, what: str) -> None:
    """ConfigError listing the keys when ``key`` is neither a column nor a config key."""
    if key not in COLUMNS and key not in EXTRA_KEYS and key not in FIELDS:
        raise ConfigError(f"{what}: unknown key {key!r}; use one of: {', '.join([*COLUMNS, 'pid'])}, "
                          "or a config key (e.g. init_range, batch_size, seed)")


def filter_rows(rows: list[Row], conditions: list[tuple[str, str]]) -> list[Row]:
    """The rows matching every KEY=VALUE: numbers compare as numbers, ``warnings`` by containing the code."""
    for key, _ in conditions:
        check_key(key, "--where")
    return [row for row in rows if all(_matches(row_value(row, key), text) for key, text in conditions)]


def _matches(value: Any, text: str) -> bool:
    if isinstance(value, list):
        return text in map(str, value) or text == ",".join(map(str, value))
    if isinstance(value, bool):
        return text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(text.rstrip("%")) / (100 if text.endswith("%") else 1), value, rel_tol=1e-9)
        except ValueError:
            return False
    return str(value) == text or (value is None and text in ("", "none", "null"))


def sort_rows(rows: list[Row], key: str, reverse: bool = False) -> list[Row]:
    """Sorted by ``key``; rows without a value last, either way."""
    check_key(key, "--sort")
    present = [r for r in rows if row_value(r, key) is not None]
    missing = [r for r in rows if row_value(r, key) is None]
    return sorted(present, key=lambda r: _sortable(row_value(r, key)), reverse=reverse) + missing


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return 0, value
    return 1, str(value)


def plain_row(row: Row) -> Row:
    """A row for --json and --csv: the columns and extras, accuracies as fractions."""
    return {key: row.get(key) for key in (*COLUMNS, *EXTRA_KEYS)}


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table; an unreadable run's reason follows the table."""
    cells = [[_shown(row, key) for key in COLUMNS] for row in rows]
    headers = list(COLUMNS.values())
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    right = {list(COLUMNS).index(k) for k in ("lr", "epochs", "val_acc", "test_acc")}

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths)))

    out = [line(headers).rstrip(), *(line(c).rstrip() for c in cells)]
    out += [f"{row['name']}: {row['status']}: {row['error']}" for row in rows
            if row["status"] in ("unreadable", "failed") and row.get("error")]
    return "\n".join(out)


def _codes(codes: list[str], width: int = WARNINGS_WIDTH) -> str:
    """``dead-units,vanishing-signal`` or, when that is too wide, the codes that fit and ``+N`` more."""
    if not codes:
        return "-"
    shown = ",".join(codes)
    for n in range(len(codes) - 1, 0, -1):
        if len(shown) <= width:
            break
        shown = ",".join(codes[:n]) + f",+{len(codes) - n}"
    return shown


def _shown(row: Row, key: str) -> str:
    value = row.get(key)
    if key == "status" and value == "running" and row.get("pid") is not None:
        return f"running (pid {row['pid']})"
    if key == "epochs" and value is not None:
        planned = row.get("epochs_planned")
        return f"{value}/{planned}" if isinstance(planned, int) and planned != value else str(value)
    if key in ("val_acc", "test_acc"):
        return "-" if value is None else f"{value:.2%}"
    if key == "lr":
        return "-" if value is None else f"{value:g}"
    if key == "warnings":
        return _codes(value)
    return "-" if value is None else str(value)
