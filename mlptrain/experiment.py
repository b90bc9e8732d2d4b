"""The library half of ``fit`` and ``eval``: train or evaluate, and record it in the run directory.

Order of writes in ``run_fit``: ``config.yaml`` first; after every epoch
``checkpoint.npz`` then ``metrics.jsonl``; then ``weights.npz``, and
``summary.json`` last, so a directory with a summary is a finished run and one
without is not (and can be resumed).
"""

from __future__ import annotations

import dataclasses
import platform
import re
import sys
import time
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from mlptrain import __version__
from mlptrain.config import FIELDS, Config, build_config
from mlptrain.data.loading import Dataset
from mlptrain.data.parts import Preparation
from mlptrain.errors import DataError, DivergedError, RunDirError, RunInterrupted, Terminated
from mlptrain.fsutil import signals_deferred
from mlptrain.nn.blas import kernel_name
from mlptrain.nn.initializers import describe_init
from mlptrain.runs.extend import (
    check_as_trained,
    check_recorded_config,
    extension_state,
    is_complete,
    keep_final_state,
    reopen_for_more_epochs,
)
from mlptrain.runs.files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    EVAL_FILE,
    RESUME_HINT,
    SUMMARY_FILE,
    WEIGHTS_FILE,
    checkpoint_config,
    class_names,
    config_record,
    create_run_dir,
    load_checkpoint,
    load_weights,
    read_config,
    read_json,
    remove_stale_temporaries,
    save_augmented,
    save_checkpoint,
    save_weights,
    write_config,
    write_diagnostics,
    write_json,
    write_metrics,
)
from mlptrain.runs.lock import DirLock, acquire
from mlptrain.runs.tensorboard import EventWriter, TensorBoardReporter, require_tensorboard
from mlptrain.threads import cpu_model
from mlptrain.train.diagnostics import HealthWarning, LayerHealth
from mlptrain.train.evaluate import Evaluation, evaluate
from mlptrain.train.trainer import Trainer

AUGMENT_PREVIEW = (8, 5)  # training images shown in augmented.npz, and distortions of each


class Reporter(Protocol):
    def init_health(self, rows: list[LayerHealth]) -> None: ...
    def warning(self, warning: dict[str, Any]) -> None: ...
    def batch(self, done: int, total: int) -> None: ...
    def epoch(self, metrics: dict[str, Any], epochs: int) -> None: ...
    def done(self, summary: dict[str, Any]) -> None: ...


def run_fit(
    config: Config, data: Dataset, directory: Path, out: Path | None, reporter: Reporter,
    resume: Path | None = None, threads: int | None = None, command: str | None = None,
    lock: DirLock | None = None,
) -> dict[str, Any]:
    """Train ``config`` on ``data`` into a new run directory (or continue ``resume``); returns the summary.

    The run directory is locked for the whole run (RunDirInUse if another
    process holds it); ``lock`` is a lock the caller already holds on it (a
    sweep trial, ``fit --resume``), which is left held. After every epoch the trainer's whole
    state goes to ``checkpoint.npz`` (atomically), then the metrics; an
    interrupted run continues from its last checkpoint with ``resume`` and ends
    exactly as if it had never stopped. A run whose loss or weights become
    NaN/inf keeps its last good epoch's weights, records ``status: diverged``
    and raises DivergedError. ``command`` is recorded in the summary and the
    lock (default: this process's command line).
    """
    started = time.time()
    command = command or " ".join(["mlptrain", *sys.argv[1:]])
    if config.tensorboard:
        require_tensorboard()  # a missing extra is one line now, before the run directory exists
    if resume is not None and resume.is_dir():
        check_recorded_config(resume, config)  # a damaged config.yaml named before the data could be blamed
    trainer = Trainer(config, data)  # checks config against data before the directory exists
    with _claim(config, out, resume, command, lock) as held, ExitStack() as stack:
        run_dir = _start(trainer, config, held.directory, resume is not None, reporter)
        if config.tensorboard:  # after config.yaml: a directory with files but no config is not a run
            reporter = _with_events(trainer, config, run_dir, reporter, stack)
        record = _Record(config, data, directory, run_dir, started, resume is not None, threads, command)
        try:
            return _train(trainer, record, reporter)
        except DivergedError:
            if isinstance(reporter, TensorBoardReporter):  # a diverged trial belongs in the HParams view too
                reporter.events.finish(read_json(run_dir / SUMMARY_FILE))
            raise


def _with_events(trainer: Trainer, config: Config, run_dir: Path, reporter: Reporter, stack: ExitStack) -> Reporter:
    """``reporter``, also writing TensorBoard events into ``run_dir`` (closed with ``stack``)."""
    events = stack.enter_context(EventWriter(run_dir))
    events.config(config.to_dict())
    return TensorBoardReporter(reporter, events, lambda: (trainer.batch_loss, trainer.optimizer.steps))


def _claim(config: Config, out: Path | None, resume: Path | None, command: str,
           lock: DirLock | None) -> AbstractContextManager[DirLock]:
    """The lock on the run directory: a new one (``out``, or a fresh name), ``resume``'s, or the caller's."""
    if lock is not None:
        return nullcontext(lock)
    if resume is None:
        return create_run_dir(out, config.activation, _init_label(config), command=command)
    if not resume.is_dir():
        raise RunDirError(f"run directory {resume} does not exist")
    return acquire(resume, "run directory", RESUME_HINT, command)  # _start checks the run again under it


def _train(trainer: Trainer, record: _Record, reporter: Reporter) -> dict[str, Any]:
    """The epochs, each checkpointed; then the weights and the summary."""
    run_dir, config = record.run_dir, record.config
    try:
        while not trainer.finished:
            metrics = trainer.run_epoch(reporter.batch)
            with signals_deferred():  # the checkpoint and the metrics always describe the same epoch
                save_checkpoint(run_dir, {**trainer.state_arrays(), **config_record(config.to_dict())})
                write_metrics(run_dir, trainer.progress.history)
                _write_diagnostics(run_dir, trainer)
            reporter.epoch(metrics, config.epochs)
            _report_warnings(trainer, reporter)
    except DivergedError as exc:
        _record_divergence(trainer, record, exc)
        _report_warnings(trainer, reporter)
        raise
    except KeyboardInterrupt as exc:  # the checkpoint on disk is whole: writes are atomic
        raise RunInterrupted(run_dir, trainer.progress.epoch, isinstance(exc, Terminated)) from None
    net = trainer.final_network()
    save_weights(run_dir / WEIGHTS_FILE, net, _weights_meta(record.data))
    summary = record.summary(trainer, "complete", evaluate(net, record.data.test_images, record.data.test_labels))
    keep_final_state(run_dir)
    reporter.done(summary)
    return summary


def _start(trainer: Trainer, config: Config, run_dir: Path, resumed: bool, reporter: Reporter) -> Path:
    """Write the config and run the init check, or pick up a run where its checkpoint left it."""
    if not resumed:
        write_config(run_dir, config.to_dict())
        if config.augment:
            preview = trainer.batches.preview(trainer.split.train[:AUGMENT_PREVIEW[0]], AUGMENT_PREVIEW[1])
            save_augmented(run_dir, preview, trainer.data.image_shape, config.augment)
        reporter.init_health(trainer.check_init())
        _write_diagnostics(run_dir, trainer)
        _report_warnings(trainer, reporter)
        return run_dir
    remove_stale_temporaries(run_dir)  # safe: we hold the lock, so no other writer has temporaries here
    if is_complete(run_dir):  # trained on for more epochs: only if that is the run --epochs N would give
        # Checked again here, under the lock: another process may have finished or trained on the run since.
        # Everything is read, checked and restored before reopening changes a file (runs/extend.py).
        stored = build_config(read_config(run_dir), {key: str(run_dir / CONFIG_FILE) for key in FIELDS})
        state_file, saved = extension_state(run_dir, stored, config)
        _restore(trainer, saved, state_file)
        reopen_for_more_epochs(run_dir, config)
    elif (saved := load_checkpoint(run_dir)) is None:
        trainer.check_init()  # cut before its first epoch: the run starts over in place
    else:
        check_as_trained(run_dir, config, checkpoint_config(saved), run_dir / CHECKPOINT_FILE, epochs_may_differ=True)
        _restore(trainer, saved, run_dir / CHECKPOINT_FILE)
    trainer.new_warnings()  # already shown when they first happened
    write_metrics(run_dir, trainer.progress.history)
    _write_diagnostics(run_dir, trainer)
    return run_dir


def _write_diagnostics(run_dir: Path, trainer: Trainer) -> None:
    progress = trainer.progress
    write_diagnostics(run_dir, trainer.data.n_classes, progress.init_health, progress.warnings, progress.inputs)


def _init_label(config: Config) -> str:
    """The init part of a default run name: ``he-normal``, ``uniform-r0.01`` (``describe_init``'s compact form)."""
    return describe_init(config.init, config.init_range, config.init_std, compact=True)


def _report_warnings(trainer: Trainer, reporter: Reporter) -> None:
    for warning in trainer.new_warnings():
        reporter.warning(warning)


def _record_divergence(trainer: Trainer, record: _Record, exc: DivergedError) -> None:
    """Go back to the last good checkpoint, save its weights, and write a summary that says what happened."""
    saved = load_checkpoint(record.run_dir)
    if saved is not None:
        _restore(trainer, saved, record.run_dir / CHECKPOINT_FILE)
        save_weights(record.run_dir / WEIGHTS_FILE, trainer.net, _weights_meta(record.data))
    trainer.add_warning(HealthWarning("diverged", exc.epoch, None, str(exc), cause=exc.cause, evidence=exc.evidence))
    _write_diagnostics(record.run_dir, trainer)
    record.summary(trainer, "diverged", None)


def _restore(trainer: Trainer, saved: dict[str, np.ndarray], path: Path) -> None:
    """Put a saved state (``checkpoint.npz`` or ``state.npz`` at ``path``) into the trainer; RunDirError naming it."""
    _check_state_shapes(trainer, saved, path)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing cast is reported below
            trainer.restore(saved)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise RunDirError(f"{path} does not match this run's config or is damaged ({exc}); start a new run") from None
    # Finite in the file, yet too large for the run's float type once put back (1e300 into float32: inf).
    arrays = trainer.state_arrays()
    overflowed = next((name for name, a in arrays.items() if a.dtype.kind == "f" and not np.isfinite(a).all()), None)
    if overflowed is not None:
        raise RunDirError(f"{path}: {overflowed} holds values too large for the run's {trainer.net.dtype}: the file is "
                          "damaged; start a new run")


def _check_state_shapes(trainer: Trainer, saved: dict[str, np.ndarray], path: Path) -> None:
    """Each saved array shaped exactly as the parameter it belongs to: NumPy would broadcast a scalar into all."""
    shapes = [p.shape for p in trainer.net.parameters()]
    for key, array in saved.items():
        found = re.fullmatch(r"(param|best|opt_[a-z_]+?)(\d+)", key)
        if found and int(found[2]) < len(shapes) and array.shape != shapes[int(found[2])]:
            raise RunDirError(f"{path}: {key} has shape {array.shape}, but this run's network needs "
                              f"{shapes[int(found[2])]}; the file is damaged or from another run: start a new run")


def _weights_meta(data: Dataset) -> dict[str, Any]:
    """What ``predict`` and ``export`` need besides the arrays; stored as extra entries, the weights untouched."""
    meta: dict[str, Any] = {"dataset": data.name, "image_shape": list(data.image_shape), "n_classes": data.n_classes,
                            "preprocess": data.preprocess}
    if data.class_names:
        meta["class_names"] = list(data.class_names)
    return meta


class _Record:
    """What the summary needs to know about a run besides the trainer."""

    def __init__(self, config: Config, data: Dataset, directory: Path, run_dir: Path, started: float,
                 resumed: bool, threads: int | None, command: str | None = None) -> None:
        self.config, self.data, self.directory, self.run_dir = config, data, directory, run_dir
        self.started, self.resumed, self.threads = started, resumed, threads
        self.command = command or " ".join(["mlptrain", *sys.argv[1:]])

    def summary(self, trainer: Trainer, status: str, test: Evaluation | None) -> dict[str, Any]:
        """Write ``summary.json`` (the run's last file) and return it."""
        progress, history = trainer.progress, trainer.progress.history
        weights_from = progress.best_epoch if trainer.best_params is not None else len(history)
        summary = {
            "status": status,
            "run_dir": str(self.run_dir),
            "command": self.command,
            "config": self.config.to_dict(),
            "seed": self.config.seed,
            "epochs_run": len(history),
            "stop_reason": progress.stop_reason or status,
            "best_epoch": progress.best_epoch,
            "best": _without_layers(history[progress.best_epoch - 1]) if progress.best_epoch else None,
            "weights_from_epoch": weights_from or None,
            "final": _without_layers(history[-1]) if history else None,
            "test": {"loss": test.loss, "accuracy": test.accuracy} if test else None,
            "warnings": progress.warnings,
            "init_health": progress.init_health,
            "inputs": progress.inputs,
            "resumed": self.resumed,
            "wall_seconds": round(time.time() - self.started, 3),
            "blas_threads": self.threads,
            "cpu_model": cpu_model(),  # epoch times depend on it: name it beside them
            "dataset": _dataset_record(self.data, self.directory),
            "versions": {
                "mlptrain": __version__, "numpy": np.__version__, "blas_kernels": kernel_name(),
                "python": platform.python_version(), "platform": platform.platform(),
            },
        }
        write_json(self.run_dir / SUMMARY_FILE, summary)
        return summary


def _without_layers(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "layers"}


def _dataset_record(data: Dataset, directory: Path) -> dict[str, Any]:
    return {
        "name": data.name,
        "directory": str(directory.resolve()),
        "n_train": len(data.train_images),
        "n_test": len(data.test_images),
        "image_shape": list(data.image_shape),
        "n_classes": data.n_classes,
        "sha256": data.files,
        **data.details,  # the format, its layout, the test split of a set without one, cache use
    }


def evaluate_run(run_dir: Path, dataset: str | None,
                 load: Callable[[str, Preparation, tuple[str, ...]], Dataset]) -> dict[str, Any]:
    """Evaluate a run's weights on a data set's test split and write ``eval.json``.

    ``dataset`` defaults to the one the run trained on; ``load(name, preparation, class_names)`` fetches the test
    split of a data set by name or path, prepared as the run's config says, its labels following the run's class
    names where the data set names its classes. A failure to write ``eval.json`` (say, a read-only run
    directory) is reported in the result, not raised: the numbers stand.
    """
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    net, meta = load_weights(run_dir / WEIGHTS_FILE)
    names = class_names(meta, net.sizes[-1])
    data = load(dataset or str(meta.get("dataset", "mnist")), run_preparation(run_dir, meta), names)
    _check_compatible(net.sizes, data)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, once
        result = evaluate(net, data.test_images, data.test_labels, n_classes=net.sizes[-1])
    if not np.isfinite(result.loss):  # its accuracy would be argmax of NaN: class 0, a number that means nothing
        raise RunDirError(f"the network in {run_dir / WEIGHTS_FILE} gives NaN or infinite outputs on {data.name}: "
                          "its weights are so large that the products overflow; the file is damaged: re-run fit")
    report = {
        "run_dir": str(run_dir),
        "dataset": data.name,
        "n_samples": len(data.test_images),
        "accuracy": result.accuracy,
        "loss": result.loss,
        "per_class_accuracy": result.per_class_accuracy,
        "class_names": list(names),
        "confusion": result.confusion.tolist(),
    }
    try:
        write_json(run_dir / EVAL_FILE, report)
    except RunDirError as exc:  # "cannot write RUN/eval.json: reason; ..."
        report["eval_file_error"] = str(exc).replace("cannot write", "could not write", 1)
    return report


def run_preparation(run_dir: Path, meta: dict[str, Any]) -> Preparation:
    """How the run prepared its data (its config's keys; the defaults without a ``config.yaml``), images prepared
    to the size its network takes."""
    config = build_config(read_config(run_dir)) if (run_dir / CONFIG_FILE).is_file() else Config()
    preparation = config.preparation()
    shape = meta.get("image_shape")
    if isinstance(shape, list) and len(shape) == 2 and shape[0] == shape[1]:
        preparation = dataclasses.replace(preparation, image_size=int(shape[0]))
    return preparation


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
