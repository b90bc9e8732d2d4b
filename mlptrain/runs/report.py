"""Read a run directory back (finished or not) and describe it: ``mlptrain inspect`` and ``plot`` use this."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.errors import RunDirError
from mlptrain.nn.initializers import describe_init
from mlptrain.nn.norms import NormLayers
from mlptrain.runs.files import (
    DIAGNOSTICS_FILE,
    EVAL_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    load_weights,
    read_config,
    read_json,
)
from mlptrain.runs.lock import holder
from mlptrain.runs.schema import DIAGNOSTICS, EVAL, METRICS, SUMMARY, checked

# Per-layer statistics shown by inspect and health.png. ``signal`` and ``gain`` are what the warnings measure;
# ``act_std`` is not shown: it includes the spread of the biases across units, so a layer whose output no longer
# depends on the input can still show a large one.
HEALTH_COLUMNS = ("dead", "saturated", "signal", "gain", "grad_rms", "weight_rms", "update_ratio")


@dataclass
class RunRecord:
    """Everything a run directory says about its run."""

    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any] | None  # None: the run did not finish
    evaluation: dict[str, Any] | None  # eval.json, when `mlptrain eval` has been run
    diagnostics: dict[str, Any] | None = None  # diagnostics.json: kept current while the run trains

    @property
    def warnings(self) -> list[dict[str, Any]] | None:
        """Every warning so far (None: a run from before diagnostics.json that has not finished)."""
        return (self.summary or self.diagnostics or {}).get("warnings")

    @property
    def init_health(self) -> list[dict[str, Any]]:
        return (self.summary or self.diagnostics or {}).get("init_health") or []

    @property
    def inputs(self) -> dict[str, float]:
        """The data check's statistics of the training images (empty for runs from before the data check)."""
        return (self.summary or self.diagnostics or {}).get("inputs") or {}

    @property
    def n_classes(self) -> int | None:
        if self.summary is not None:
            return self.summary.get("dataset", {}).get("n_classes")
        return (self.diagnostics or {}).get("n_classes")

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def init(self) -> str:
        """The run's init as every report names it: ``he-normal``, ``uniform r=0.01``."""
        c = self.config
        return describe_init(c.get("init"), c.get("init_range"), c.get("init_std"))

    def layer_series(self) -> dict[str, dict[str, list[float]]]:
        """layer -> column -> one value per epoch (from metrics.jsonl's ``layers``)."""
        series: dict[str, dict[str, list[float]]] = {}
        for metrics in self.history:
            for row in metrics.get("layers", []):
                columns = series.setdefault(row["layer"], {c: [] for c in HEALTH_COLUMNS})
                for column in HEALTH_COLUMNS:
                    columns[column].append(row[column])
        return series


# What to do about each damaged file (runs/schema.py checks their shapes).
REMEDIES = {
    METRICS_FILE: "the run's history is lost: re-run fit",
    SUMMARY_FILE: "the run's record is damaged: re-run fit (its weights.npz may still be evaluated with mlptrain eval)",
    EVAL_FILE: "delete it and run mlptrain eval again",
    DIAGNOSTICS_FILE: "delete it: fit --resume writes it again, and a finished run's summary.json holds the same",
}


def load_run(run_dir: Path) -> RunRecord:
    """Read config, metrics, summary and eval results; RunDirError when it is not a run directory, or one of
    them is damaged."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; give the directory fit wrote (runs/<run>)")
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    return RunRecord(run_dir, read_config(run_dir), _read_metrics(run_dir / METRICS_FILE),
                     _optional_json(run_dir / SUMMARY_FILE, SUMMARY),
                     _checked_eval(run_dir / EVAL_FILE),
                     _optional_json(run_dir / DIAGNOSTICS_FILE, DIAGNOSTICS))


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is unreadable or not JSON lines: {exc}") from None
    checked(rows, [METRICS], path, REMEDIES[METRICS_FILE])
    validation = [{key: row[key] for key in ("val_loss", "val_acc") if key in row} for row in rows]
    if any(v.keys() != validation[0].keys() or None in v.values() for v in validation):
        raise RunDirError(f"{path} is damaged: its epochs do not all have the same validation metrics; "
                          f"{REMEDIES[METRICS_FILE]}")
    return rows


def _optional_json(path: Path, shape: Any) -> dict[str, Any] | None:
    return checked(read_json(path), shape, path, REMEDIES[path.name]) if path.exists() else None


def _checked_eval(path: Path) -> dict[str, Any] | None:
    """eval.json, its confusion matrix square and one row per class."""
    evaluation = _optional_json(path, EVAL)
    if evaluation is not None:
        n = len(evaluation["per_class_accuracy"])
        if n == 0 or len(evaluation["confusion"]) != n or any(len(row) != n for row in evaluation["confusion"]):
            raise RunDirError(f"{path} is damaged: its confusion matrix is not one row and one column per class; "
                              f"{REMEDIES[EVAL_FILE]}")
    return evaluation


def format_run(record: RunRecord) -> str:
    """The ``inspect`` report: config, outcome, warnings, the epochs and per-layer health."""
    return "\n".join([*_header(record), "", *_warnings(record), "", *_epochs(record), *_health(record),
                      *_norm_parameters(record)])


def _header(record: RunRecord) -> list[str]:
    c, s = record.config, record.summary
    status = "incomplete: no summary.json (interrupted; resume with mlptrain fit --resume)"
    owner = holder(record.run_dir) if s is None else None
    if owner is not None:
        where = f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
        status = f"incomplete: no summary.json (running now: {where})"
    if s is not None:
        status = f"{s['status']}: {s['stop_reason']}"
    lines = [
        f"run {record.run_dir}",
        f"status   {status}",
        f"data     {c.get('dataset')}, {_val_size(c.get('val_size'))} validation images, seed {c.get('seed')}",
        f"network  {'-'.join(map(str, c.get('hidden') or []))} {c.get('activation')}, init {record.init}"
        + (f", {c['norm']} norm" if c.get("norm", "none") != "none" else ""),
        f"training {c.get('optimizer')} lr {c.get('lr')} ({c.get('lr_schedule')}), batch {c.get('batch_size')}, "
        f"{c.get('epochs')} epoch{'' if c.get('epochs') == 1 else 's'}",
    ]
    if record.inputs:
        i = record.inputs
        lines.append(f"inputs   pixel mean {i['mean']:.3f}, std {i['std']:.3f}, border {i['border']:.3f}, brightest "
                     f"{i['brightest']:.3f}, constant pixels {i['constant']:.1%} (the data check)")
    if s is not None and s.get("test"):
        best = (s.get("best") or {}).get("val_acc")
        lines.append(f"result   test accuracy {s['test']['accuracy']:.2%}, loss {s['test']['loss']:.4f}; "
                     f"best epoch {s['best_epoch']} (val acc {'-' if best is None else f'{best:.2%}'}); "
                     f"weights from epoch {s['weights_from_epoch']}")
    return lines


def _warnings(record: RunRecord) -> list[str]:
    warnings = record.warnings
    if warnings is None:
        return ["warnings: (this run predates diagnostics.json; they are in summary.json when the run ends)"]
    if not warnings:
        return ["warnings: none" + ("" if record.summary else " so far")]
    lines = ["warnings:" + ("" if record.summary else " (so far)")]
    for w in warnings:
        when = "init check" if w["epoch"] == 0 else f"epoch {w['epoch']}"
        cleared = f", cleared by epoch {w['cleared']}" if w.get("cleared") else ""
        lines.append(f"  {w['code']} ({when}{cleared}): {w['message']}")
    return lines


def _epochs(record: RunRecord) -> list[str]:
    lines = [f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'lr':>9} {'s':>6} "
             f"{'max batch loss':>14} {'spikes':>6}"]
    for m in record.history:
        val = (f"{m['val_loss']:>9.4f} {m['val_acc']:>8.2%}" if "val_acc" in m else f"{'-':>9} {'-':>8}")
        evidence = f"{_cell(m.get('loss_max'), 14, '.4g')} {_cell(m.get('loss_spikes'), 6, 'd')}"
        lines.append(f"{m['epoch']:>5} {m['train_loss']:>10.4f} {m['train_acc']:>9.2%} {val} {m['lr']:>9.3g} "
                     f"{m['seconds']:>6.1f} {evidence}")
    return lines


HEALTH_HEADER = (("dead", 6, ".0%"), ("satur.", 6, ".0%"), ("signal", 9, ".3g"), ("gain", 7, ".3g"),
                 ("grad rms", 9, ".2g"), ("w rms", 8, ".3g"), ("upd/w", 8, ".2g"))


def _health(record: RunRecord) -> list[str]:
    """Per layer, a row for the init check and one per epoch: the warnings' measures (signal, gain) among them."""
    series, init = record.layer_series(), {row["layer"]: row for row in record.init_health}
    if not series and not init:
        return []
    lines = ["", "per-layer health on the probe batch (signal: how much the output varies with the input; gain: "
             "a layer's signal over its input's, healthy near 1)"]
    label_width = max(len("epoch 00"), *(len(layer) + 1 for layer in series or init))
    for layer in series or init:
        lines += ["", f"{layer + ':':<{label_width}} " + " ".join(f"{name:>{w}}" for name, w, _ in HEALTH_HEADER)]
        rows = ([("init", init[layer])] if layer in init else []) + [
            (f"epoch {i + 1}", {c: values[i] for c, values in series.get(layer, {}).items()})
            for i in range(len(series.get(layer, {}).get("dead", [])))]
        for label, row in rows:
            cells = [_cell(row.get(column), width, spec)
                     for column, (_, width, spec) in zip(HEALTH_COLUMNS, HEALTH_HEADER)]
            lines.append(f"{label:>{label_width}} " + " ".join(cells))
    return lines


def norm_arrays(norm: NormLayers) -> list[tuple[str, float, list[np.ndarray]]]:
    """The norm's arrays as ``(name, init value, one array (width,) per hidden layer)``: scale, shift, and for
    batch norm the running mean and variance."""
    arrays = [("scale", 1.0, norm.scales), ("shift", 0.0, norm.shifts)]
    if norm.kind.running:
        arrays += [("running mean", 0.0, norm.running_mean), ("running var", 1.0, norm.running_var)]
    return arrays


def _norm_parameters(record: RunRecord) -> list[str]:
    """Per hidden layer, the mean, min and max over units of each of the saved norm's arrays."""
    kind = record.config.get("norm", "none")
    path = record.run_dir / WEIGHTS_FILE
    if kind == "none":
        return []
    if not path.exists():
        return ["", f"{kind} norm parameters: no {WEIGHTS_FILE} yet (written when the run ends)"]
    try:
        norm = load_weights(path)[0].norm
    except RunDirError as exc:
        return ["", f"{kind} norm parameters: unreadable: {exc}"]
    if norm is None:
        return ["", f"{kind} norm parameters: none in {WEIGHTS_FILE} (its net has no hidden layer to normalise)"]
    arrays = norm_arrays(norm)
    inits = ", ".join(f"{name} {init:g}" for name, init, _ in arrays)
    lines = ["", f"{norm.kind.name} norm parameters in {WEIGHTS_FILE} per hidden layer, over its units "
                 f"(at init: {inits}; eps {norm.eps:g})",
             f"{'layer':<8} {'array':<12} {'mean':>10} {'min':>10} {'max':>10}"]
    for layer in range(len(norm.scales)):
        for name, _, values in arrays:
            v = values[layer].astype(np.float64)
            label = f"hidden{layer + 1}" if name == "scale" else ""
            lines.append(f"{label:<8} {name:<12} {v.mean():>10.4g} {v.min():>10.4g} {v.max():>10.4g}")
    return lines


def _cell(value: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def _val_size(value: object) -> str:
    """``5000``, or ``10%`` (of the training images) for a fraction."""
    return f"{value:.0%}" if isinstance(value, float) else str(value)
