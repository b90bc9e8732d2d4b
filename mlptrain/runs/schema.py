"""The shapes of the JSON records mlptrain writes and reads back, checked where they are read.

A record read from disk may have been damaged since it was written (an editor, a
full disk, another program). Each file's reader checks its record against the
shape here before anything uses it, so a damaged file is one ``RunDirError``
naming the file, the first part that is wrong and what to do -- never a
KeyError three calls later. A shape is a type (``NUMBER`` for int or float,
never bool), ``[shape]`` (a list of them), ``{key: shape}`` (a mapping holding
at least those keys; more are allowed) or ``Maybe(shape)`` (null or missing, or
that shape; ``Maybe(shape, present=True)``: null, but there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlptrain.errors import RunDirError

NUMBER = (int, float)


@dataclass(frozen=True)
class Maybe:
    """A value that may be null, or missing unless ``present``."""

    shape: Any
    present: bool = False


ANY = object  # anything at all


def mismatch(value: Any, shape: Any, where: str = "") -> str | None:
    """Where ``value`` first departs from ``shape`` (``warnings[2].epoch``, or ``the record``); None if it fits."""
    here = where or "the record"
    if isinstance(shape, Maybe):
        return None if value is None else mismatch(value, shape.shape, where)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return here
        for key, inner in shape.items():
            if key not in value and not (isinstance(inner, Maybe) and not inner.present):
                return f"{where}.{key}" if where else key
            found = mismatch(value.get(key), inner, f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return here
        return next((m for i, item in enumerate(value) if (m := mismatch(item, shape[0], f"{where}[{i}]"))), None)
    kinds = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in kinds:
        return here
    return None if isinstance(value, kinds) else here


def checked(value: Any, shape: Any, path: Path, remedy: str) -> Any:
    """``value`` if it has ``shape``; RunDirError naming ``path``, the part that is wrong and ``remedy`` otherwise."""
    wrong = mismatch(value, shape)
    if wrong is not None:
        part = "it is not the record mlptrain writes" if wrong == "the record" else f"{wrong!r} is missing or wrong"
        raise RunDirError(f"{path} is damaged: {part}; {remedy}")
    return value


WARNING = {"code": str, "epoch": int, "message": str, "layer": Maybe(str), "cleared": Maybe(int)}
# A layer's health at the init check, and after an epoch (which adds how far the step moved the weights).
HEALTH_ROW = {"layer": str, **{column: NUMBER for column in ("dead", "saturated", "signal", "gain", "grad_rms",
                                                             "weight_rms")}}
EPOCH_HEALTH_ROW = {**HEALTH_ROW, "update_ratio": NUMBER}
METRICS = {"epoch": int, "train_loss": NUMBER, "train_acc": NUMBER, "lr": NUMBER, "seconds": NUMBER,
           "val_loss": Maybe(NUMBER), "val_acc": Maybe(NUMBER), "layers": Maybe([EPOCH_HEALTH_ROW])}
EPOCH = {"epoch": int, "val_loss": Maybe(NUMBER), "val_acc": Maybe(NUMBER)}
SUMMARY = {"status": str, "stop_reason": str, "epochs_run": int, "config": dict, "warnings": [WARNING],
           "init_health": Maybe([HEALTH_ROW]), "best_epoch": Maybe(int, present=True),
           "weights_from_epoch": Maybe(int, present=True),
           "best": Maybe(EPOCH), "final": Maybe(EPOCH), "test": Maybe({"loss": NUMBER, "accuracy": NUMBER}),
           "dataset": Maybe({"n_classes": Maybe(int)})}
EVAL = {"dataset": str, "n_samples": int, "accuracy": NUMBER, "loss": NUMBER, "per_class_accuracy": [Maybe(NUMBER)],
        "confusion": [[int]], "class_names": Maybe([str])}
DIAGNOSTICS = {"n_classes": int, "init_health": [HEALTH_ROW], "warnings": [WARNING]}
RESULT = {"trial": str, "status": str, "params": dict, "seed": int, "best_val_acc": Maybe(NUMBER, present=True),
          "test_acc": Maybe(NUMBER, present=True)}
SWEEP = {"varying": [str], "trials": [str], "spec": {"grid": {}, "seeds": [int]}}
