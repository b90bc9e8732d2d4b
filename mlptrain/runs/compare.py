"""Runs side by side, for ``mlptrain compare``: the config keys that differ, the results, the warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlptrain.errors import RunDirError
from mlptrain.runs.files import CONFIG_FILE, SWEEP_FILE
from mlptrain.runs.report import RunRecord, load_run

# The result rows, in order (result_values gives each run's text for them).
RESULTS = ("status", "best val acc", "test acc", "test loss", "final train loss", "epochs", "wall time")


def load_runs(paths: list[Path]) -> list[RunRecord]:
    """Each run directory read back; RunDirError naming the one that is not a run (a sweep says what to do)."""
    records = []
    for path in paths:
        if (path / SWEEP_FILE).is_file():
            raise RunDirError(f"{path} is a sweep directory, not a run: compare its trials (mlptrain runs {path} "
                              f"lists them) or see its table with mlptrain sweep --report {path}")
        if path.is_dir() and not (path / CONFIG_FILE).is_file():
            raise RunDirError(f"{path} is not a run directory (it has no {CONFIG_FILE}); give directories made by "
                              "mlptrain fit or sweep")
        records.append(load_run(path))
    return records


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The config keys whose values are not the same in every config, in the first config's key order."""
    keys = list(dict.fromkeys(key for config in configs for key in config))
    return [key for key in keys if any(config.get(key) != configs[0].get(key) for config in configs[1:])]


def labels(records: list[RunRecord]) -> list[str]:
    """Column labels: the run names, or their paths where two names are the same."""
    names = [r.name for r in records]
    return [r.name if names.count(r.name) == 1 else str(r.run_dir) for r in records]


def result_values(record: RunRecord) -> dict[str, str]:
    """The results rows of one run, as text (``-`` where the run has none yet)."""
    s = record.summary or {}
    best, test, final = s.get("best") or {}, s.get("test") or {}, s.get("final") or {}
    history = record.history
    status = s.get("status") or "unfinished"
    val = best.get("val_acc") if s else max((m["val_acc"] for m in history if "val_acc" in m), default=None)
    wall = s.get("wall_seconds")
    epochs = s.get("epochs_run", len(history))
    return {
        "status": status,
        "best val acc": _pct(val) + (f" (epoch {s['best_epoch']})" if s.get("best_epoch") else ""),
        "test acc": _pct(test.get("accuracy")),
        "test loss": _num(test.get("loss")),
        "final train loss": _num(final.get("train_loss") if s else (history[-1]["train_loss"] if history else None)),
        "epochs": f"{epochs}/{record.config.get('epochs')}" if epochs != record.config.get("epochs") else str(epochs),
        "wall time": "-" if wall is None else f"{wall:.1f} s",
    }


def _pct(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.2%}"


def _num(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.4f}"


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def format_comparison(records: list[RunRecord]) -> str:
    """The config keys that differ, the results, then each run's warnings."""
    heads = labels(records)
    differing = differing_keys([r.config for r in records])
    rows = [["config", *heads]]
    rows += [[key, *(_shown(r.config.get(key)) for r in records)] for key in differing]
    if not differing:
        rows.append(["(same config)", *("" for _ in records)])
    results = [result_values(r) for r in records]
    rows += [[""] * (len(records) + 1), ["result", *("" for _ in records)]]
    rows += [[label, *(values[label] for values in results)] for label in RESULTS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads) + 1)]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             .rstrip() for row in rows]
    return "\n".join([*lines, "", *_warning_lines(records, heads)])


def _warning_lines(records: list[RunRecord], heads: list[str]) -> list[str]:
    lines = []
    for head, record in zip(heads, records):
        warnings = record.warnings
        if warnings is None:
            lines.append(f"warnings of {head}: (not recorded by this run's version)")
            continue
        lines.append(f"warnings of {head}:" + ("" if warnings else " none"))
        for w in warnings:
            when = "init check" if w.get("epoch") == 0 else f"epoch {w.get('epoch')}"
            lines.append(f"  {w.get('code')} ({when}): {w.get('message')}")
    return lines
