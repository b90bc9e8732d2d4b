"""One trial, in a worker: the picklable task and ``run_trial``, which trains it and returns its record.

Each trial is ``experiment.run_fit`` into its own run directory inside the
sweep directory, with its BLAS thread count set explicitly, so a trial gives
the same numbers wherever it runs. Workers get the data set's directory, not
arrays. A trial that raises becomes a ``failed`` record; a diverged one is a
result (``diverged``). The trial holds its run directory's lock while it
decides what to do (skip, resume, start afresh) and while it trains, so a
copy of it running at the same time cannot mix its files in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlptrain.config import Config, build_config
from mlptrain.errors import DivergedError, MlptrainError, RunDirError, RunDirInUse, RunInterrupted
from mlptrain.runs.files import CONFIG_FILE, SUMMARY_FILE, read_config, read_json
from mlptrain.runs.lock import LOCK_FILE, DirLock, acquire
from mlptrain.runs.schema import SUMMARY, checked
from mlptrain.sweep.results import FINISHED, OWNED, failed_record, pruned_record, record_from_summary

Record = dict[str, Any]
STOP_CHECK_SECONDS = 0.5  # how often a Dask trial asks whether the sweep was interrupted
TRIAL_HINT = "another copy of this trial is running it (a Dask retry?); its record is the result"


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs for one trial (small and picklable: paths, not arrays)."""

    name: str
    params: dict[str, Any]
    config: Config
    run_dir: Path
    data_dir: Path  # the located data set directory; must be readable where the worker runs
    threads: int
    command: str
    cache_dir: Path | None = None  # the data directory whose cache holds the decoded and prepared arrays
    study: Any = None  # a search's link to its study (sweep.study.StudyLink): on_epoch(metrics), finish(record)


class TrialPruned(Exception):
    """Raised from a search trial's per-epoch hook when the study's pruner stops it."""


class _QuietReporter:
    """run_fit's reporter inside a worker: silent; asks ``should_stop`` between batches."""

    def __init__(self, should_stop: Callable[[], bool] | None,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.should_stop, self.on_epoch, self._checked = should_stop, on_epoch, 0.0

    def init_health(self, rows: list) -> None: ...
    def warning(self, warning: dict[str, Any]) -> None: ...

    def epoch(self, metrics: dict[str, Any], epochs: int) -> None:
        if self.on_epoch is not None:  # after the epoch's checkpoint: a pruned trial stops with its files whole
            self.on_epoch(metrics)
    def done(self, summary: dict[str, Any]) -> None: ...

    def batch(self, done: int, total: int) -> None:
        if self.should_stop is None or time.monotonic() - self._checked < STOP_CHECK_SECONDS:
            return
        self._checked = time.monotonic()
        if self.should_stop():
            raise KeyboardInterrupt  # run_fit turns it into RunInterrupted, its checkpoint intact


def run_trial(task: TrialTask, should_stop: Callable[[], bool] | None = None) -> Record:
    """Train one trial (or continue it) and return its result record; never raises for a trial's own failure.

    The trial's run directory is locked first, so a trial that runs twice at
    once (Dask may run a task again when it loses a worker) has one writer:
    the other copy returns an ``owned`` record, which is not a result. A copy
    that starts after the trial finished returns the finished record, reread.
    A record with status ``interrupted`` means the sweep was stopped while the
    trial ran: it is not a result, and the next invocation resumes it. A search
    trial (``task.study``) reports each epoch to its study, may be ``pruned``,
    and records its outcome in the study itself before returning.
    """
    record = _run_trial(task, should_stop)
    if task.study is not None and record["status"] not in ("interrupted", OWNED):
        try:
            task.study.finish(record)
        except Exception as exc:  # noqa: BLE001 -- unrecorded in the study: it runs (or is reread) next time
            return {"trial": task.name, "status": "interrupted", "error": f"{type(exc).__name__}: {exc}"}
    return record


def _run_trial(task: TrialTask, should_stop: Callable[[], bool] | None) -> Record:
    started = time.time()
    if should_stop is not None and should_stop():  # queued when the sweep was stopped: leave it for next time
        return {"trial": task.name, "status": "interrupted"}
    try:
        with claim_trial_dir(task.run_dir, task.command) as lock:
            return _finished_or_run(task, lock, should_stop)
    except RunDirInUse as exc:
        return {"trial": task.name, "status": OWNED, "error": str(exc)}
    except RunInterrupted:
        return {"trial": task.name, "status": "interrupted"}
    except TrialPruned:
        return pruned_record(task.name, task.params, task.run_dir, time.time() - started, task.threads)
    except MlptrainError as exc:
        return failed_record(task.name, task.params, str(exc), time.time() - started, task.threads)
    except Exception as exc:  # noqa: BLE001 -- one trial's crash must not stop the sweep; it is recorded
        return failed_record(task.name, task.params, f"{type(exc).__name__}: {exc}", time.time() - started,
                             task.threads)


def claim_trial_dir(run_dir: Path, command: str) -> DirLock:
    """Lock a trial's run directory, creating it if needed; RunDirInUse if another copy holds it."""
    try:
        run_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {run_dir}: {exc.strerror or exc}") from None
    return acquire(run_dir, "run directory", TRIAL_HINT, command)


def _finished_or_run(task: TrialTask, lock: DirLock, should_stop: Callable[[], bool] | None) -> Record:
    """Under the trial's lock: the record of a run that already finished, or train (or resume) it now."""
    from mlptrain.data.loading import load_dataset
    from mlptrain.experiment import run_fit
    from mlptrain.threads import blas_threads

    finished = finished_record(task.name, task.params, task.run_dir)
    if finished is not None:
        return finished
    resume = resumable(task.name, task.config, task.run_dir)
    try:
        with blas_threads(task.threads) as n:
            data = load_dataset(task.data_dir, task.config.dataset, task.config.preparation(), task.cache_dir)
            reporter = _QuietReporter(should_stop, task.study.on_epoch if task.study is not None else None)
            summary = run_fit(task.config, data, task.data_dir, None if resume else task.run_dir,
                              reporter, resume=task.run_dir if resume else None,
                              threads=n, command=task.command, lock=lock)
        return record_from_summary(task.name, task.params, summary)
    except DivergedError as exc:  # a result of the study, with its own summary.json
        return record_from_summary(task.name, task.params, read_json(task.run_dir / SUMMARY_FILE), str(exc))


def finished_record(name: str, params: dict[str, Any], run_dir: Path) -> Record | None:
    """The record of a trial that finished earlier, reread from its ``summary.json``; None if it has not."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = checked(read_json(path), SUMMARY, path, f"delete {run_dir} to run the trial again")
    if summary["status"] not in FINISHED:
        return None
    error = next((w["message"] for w in summary.get("warnings", []) if w.get("code") == "diverged"), None)
    return record_from_summary(name, params, summary, error)


def resumable(name: str, config: Config, run_dir: Path) -> bool:
    """Whether the unfinished run in ``run_dir`` can be continued (True) or the trial starts afresh (False).

    Only under the trial's lock. A directory without ``config.yaml`` was cut
    before its run began: only temporary files can be in it, and they go. One
    whose config differs from the trial's is not ours to overwrite: RunDirError.
    """
    if not (run_dir / CONFIG_FILE).exists():
        entries = [p for p in run_dir.iterdir() if p.name != LOCK_FILE]
        if any(not (p.name.startswith(".") and p.name.endswith(".tmp")) for p in entries):
            raise RunDirError(f"{run_dir} holds files that are not an mlptrain run; move them away and re-run")
        for path in entries:
            path.unlink(missing_ok=True)
        return False
    if build_config(read_config(run_dir)) != config:
        raise RunDirError(f"{run_dir} holds a run of another config; delete it to redo the trial {name}")
    return True
