"""The library half of ``fit`` and ``eval``: train or evaluate, and record it in the run directory.

Order of writes in ``run_fit``: ``config.yaml`` first, ``metrics.jsonl`` after
every epoch, then ``weights.npz``, and ``summary.json`` last, so a directory
with a summary is a finished run and one without is not.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from mlptrain import __version__
from mlptrain.config import Config
from mlptrain.data import Dataset
from mlptrain.errors import DataError, RunDirError
from mlptrain.runs import (
    EVAL_FILE,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    create_run_dir,
    load_weights,
    save_weights,
    write_config,
    write_json,
    write_metrics,
)
from mlptrain.train import Evaluation, check_fits_data, evaluate, fit


class Reporter(Protocol):
    def batch(self, done: int, total: int) -> None: ...
    def epoch(self, metrics: dict[str, float], epochs: int) -> None: ...
    def done(self, summary: dict[str, Any]) -> None: ...


def run_fit(config: Config, data: Dataset, directory: Path, out: Path | None, reporter: Reporter) -> dict[str, Any]:
    """Train ``config`` on ``data`` into a new run directory; returns the summary."""
    check_fits_data(config, data)  # before the directory exists: a refused run leaves nothing
    started = time.time()
    run_dir = create_run_dir(out, config.activation, config.init or "auto")
    write_config(run_dir, config.to_dict())
    history: list[dict[str, float]] = []

    def on_epoch(metrics: dict[str, float]) -> None:
        history.append(metrics)
        write_metrics(run_dir, history)
        reporter.epoch(metrics, config.epochs)

    result = fit(config, data, on_epoch=on_epoch, on_batch=reporter.batch)
    save_weights(run_dir / WEIGHTS_FILE, result.network, _weights_meta(data))
    test = evaluate(result.network, data.test_images, data.test_labels)
    summary = _summary(config, data, directory, run_dir, history, test, time.time() - started)
    write_json(run_dir / SUMMARY_FILE, summary)
    reporter.done(summary)
    return summary


def _weights_meta(data: Dataset) -> dict[str, Any]:
    return {"dataset": data.name, "image_shape": list(data.image_shape), "n_classes": data.n_classes}


def _summary(
    config: Config, data: Dataset, directory: Path, run_dir: Path,
    history: list[dict[str, float]], test: Evaluation, seconds: float,
) -> dict[str, Any]:
    return {
        "status": "complete",
        "run_dir": str(run_dir),
        "command": " ".join(["mlptrain", *sys.argv[1:]]),
        "config": config.to_dict(),
        "seed": config.seed,
        "epochs_run": len(history),
        "final": history[-1],
        "test": {"loss": test.loss, "accuracy": test.accuracy},
        "wall_seconds": round(seconds, 3),
        "dataset": _dataset_record(data, directory),
        "versions": {
            "mlptrain": __version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
        },
    }


def _dataset_record(data: Dataset, directory: Path) -> dict[str, Any]:
    return {
        "name": data.name,
        "directory": str(directory.resolve()),
        "n_train": len(data.train_images),
        "n_test": len(data.test_images),
        "image_shape": list(data.image_shape),
        "n_classes": data.n_classes,
        "sha256": data.files,
    }


def evaluate_run(run_dir: Path, dataset: str | None, load: Callable[[str], Dataset]) -> dict[str, Any]:
    """Evaluate a run's weights on a data set's test split and write ``eval.json``.

    ``dataset`` defaults to the one the run trained on; ``load`` fetches a data
    set by name or directory. A failure to write ``eval.json`` (say, a read-only
    run directory) is reported in the result, not raised: the numbers stand.
    """
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    net, meta = load_weights(run_dir / WEIGHTS_FILE)
    data = load(dataset or str(meta.get("dataset", "mnist")))
    _check_compatible(net.sizes, data)
    result = evaluate(net, data.test_images, data.test_labels, n_classes=net.sizes[-1])
    report = {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "n_samples": len(data.test_images),
        "accuracy": result.accuracy,
        "loss": result.loss,
        "per_class_accuracy": result.per_class_accuracy,
        "confusion": result.confusion.tolist(),
    }
    try:
        write_json(run_dir / EVAL_FILE, report)
    except OSError as exc:
        report["eval_file_error"] = f"could not write {run_dir / EVAL_FILE}: {exc.strerror or exc}"
    return report


def _check_compatible(sizes: list[int], data: Dataset) -> None:
    if sizes[0] != data.n_inputs:
        raise DataError(
            f"the network takes {sizes[0]} inputs but {data.name} images have {data.n_inputs} "
            f"pixels {tuple(data.image_shape)}; evaluate on a data set of the same image size"
        )
    if int(data.test_labels.max()) >= sizes[-1]:
        raise DataError(
            f"{data.name} has label {int(data.test_labels.max())} but the network has only "
            f"{sizes[-1]} outputs"
        )
