"""One trial, in a worker: the picklable task and ``run_trial``, which trains it and returns its record.

Each trial is ``experiment.run_fit`` into its own run directory inside the
sweep directory, with its BLAS thread count set explicitly, so a trial gives
the same numbers wherever it runs. Workers get the data set's directory, not
arrays. A trial that raises becomes a ``failed`` record; a diverged one is a
result (``diverged``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlptrain.config import Config
from mlptrain.errors import DivergedError, MlptrainError, RunInterrupted
from mlptrain.runs.files import SUMMARY_FILE, read_json
from mlptrain.sweep.results import failed_record, record_from_summary

Record = dict[str, Any]
STOP_CHECK_SECONDS = 0.5  # how often a Dask trial asks whether the sweep was interrupted


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs for one trial (small and picklable: paths, not arrays)."""

    name: str
    params: dict[str, Any]
    config: Config
    run_dir: Path
    data_dir: Path  # the located data set directory; must be readable where the worker runs
    threads: int
    resume: bool
    command: str


class _QuietReporter:
    """run_fit's reporter inside a worker: silent; asks ``should_stop`` between batches."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self.should_stop, self._checked = should_stop, 0.0

    def init_health(self, rows: list) -> None: ...
    def warning(self, warning: dict[str, Any]) -> None: ...
    def epoch(self, metrics: dict[str, Any], epochs: int) -> None: ...
    def done(self, summary: dict[str, Any]) -> None: ...

    def batch(self, done: int, total: int) -> None:
        if self.should_stop is None or time.monotonic() - self._checked < STOP_CHECK_SECONDS:
            return
        self._checked = time.monotonic()
        if self.should_stop():
            raise KeyboardInterrupt  # run_fit turns it into RunInterrupted, its checkpoint intact


def run_trial(task: TrialTask, should_stop: Callable[[], bool] | None = None) -> Record:
    """Train one trial (or continue it) and return its result record; never raises for a trial's own failure.

    A record with status ``interrupted`` means the sweep was stopped while the
    trial ran: it is not a result, and the next invocation resumes it.
    """
    from mlptrain.data.loading import load_dataset
    from mlptrain.experiment import run_fit
    from mlptrain.threads import blas_threads

    started = time.time()
    if should_stop is not None and should_stop():  # queued when the sweep was stopped: leave it for next time
        return {"trial": task.name, "status": "interrupted"}
    try:
        with blas_threads(task.threads) as n:
            data = load_dataset(task.data_dir, task.config.dataset)
            summary = run_fit(task.config, data, task.data_dir, None if task.resume else task.run_dir,
                              _QuietReporter(should_stop), resume=task.run_dir if task.resume else None,
                              threads=n, command=task.command)
        return record_from_summary(task.name, task.params, summary)
    except DivergedError as exc:  # a result of the study, with its own summary.json
        return record_from_summary(task.name, task.params, read_json(task.run_dir / SUMMARY_FILE), str(exc))
    except RunInterrupted:
        return {"trial": task.name, "status": "interrupted"}
    except MlptrainError as exc:
        return failed_record(task.name, task.params, str(exc), time.time() - started, task.threads)
    except Exception as exc:  # noqa: BLE001 -- one trial's crash must not stop the sweep; it is recorded
        return failed_record(task.name, task.params, f"{type(exc).__name__}: {exc}", time.time() - started,
                             task.threads)
