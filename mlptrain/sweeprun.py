"""Running a sweep's trials: on local worker processes, or on a Dask cluster; never a scheduler of our own.

Each trial is ``experiment.run_fit`` into its own run directory inside the
sweep directory, with its BLAS thread count set explicitly, so a trial gives
the same numbers wherever it runs. Workers get the data set's directory, not
arrays. A trial that raises becomes a ``failed`` record; a diverged one is a
result (``diverged``). Re-running skips trials whose run has a finished
``summary.json``, resumes those with a checkpoint, and redoes the rest.

Ctrl-C: the local pool's workers ignore SIGINT and are killed by the parent
(atomic writes and resume-from-checkpoint keep their run directories
resumable); Dask trials are asked to stop at their next batch
through a distributed Event, and the cluster's own workers carry on.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
import uuid
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from mlptrain.config import Config, build_config
from mlptrain.errors import (
    ConfigError,
    DivergedError,
    MlptrainError,
    RunDirError,
    RunInterrupted,
    SweepError,
    SweepInterrupted,
    Terminated,
)
from mlptrain.runs import (
    CONFIG_FILE,
    SUMMARY_FILE,
    make_new_dir,
    read_config,
    read_json,
    write_json,
    write_text,
)
from mlptrain.sweep import SweepPlan, Trial, sweep_record
from mlptrain.sweepresults import (
    FINISHED,
    SPEC_COPY,
    SWEEP_FILE,
    failed_record,
    record_from_summary,
    write_results,
)

Record = dict[str, Any]
STOP_CHECK_SECONDS = 0.5  # how often a Dask trial asks whether the sweep was interrupted
NANNY_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
DASK_MISSING = "--cluster/--scheduler need Dask: pip install 'mlptrain[dask]'"


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


# --- one trial, in a worker -------------------------------------------------------------


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
    from mlptrain.data import load_dataset
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


# --- the sweep directory ---------------------------------------------------------------------


def prepare_sweep_dir(plan: SweepPlan, sweep_dir: Path, spec_text: str) -> None:
    """Create the sweep directory with ``sweep.json`` and a copy of the spec, or check it holds this sweep."""
    record = sweep_record(plan, spec_text)
    if (sweep_dir / SWEEP_FILE).exists():
        old = read_json(sweep_dir / SWEEP_FILE)
        if not isinstance(old, dict) or old.get("spec") != record["spec"] or old.get("trials") != record["trials"]:
            raise ConfigError(f"{sweep_dir} holds another sweep (its {SWEEP_FILE} was made from a different spec); "
                              "choose a new --out, or delete that directory to start over")
        return
    make_new_dir(sweep_dir, "sweep", "a sweep directory")
    write_text(sweep_dir / SPEC_COPY, spec_text)
    write_json(sweep_dir / SWEEP_FILE, record)  # last: a directory with sweep.json is a whole sweep directory


def finished_record(trial: Trial, run_dir: Path) -> Record | None:
    """The record of a trial that finished in an earlier invocation, reread from its ``summary.json``."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = read_json(path)
    if not isinstance(summary, dict) or summary.get("status") not in FINISHED:
        return None
    error = next((w["message"] for w in summary.get("warnings", []) if w.get("code") == "diverged"), None)
    return record_from_summary(trial.name, trial.params, summary, error)


def _resumable(trial: Trial, run_dir: Path) -> bool:
    """Whether an unfinished run directory can be continued (True) or the trial starts afresh (False).

    A directory without ``config.yaml`` was cut before its run began: only
    temporary files can be in it, and it is emptied. One whose config differs
    from the trial's is not ours to overwrite: RunDirError.
    """
    if not run_dir.exists():
        return False
    if not (run_dir / CONFIG_FILE).exists():
        leftovers = [p for p in run_dir.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]
        if leftovers:
            raise RunDirError(f"{run_dir} holds files that are not an mlptrain run; move them away and re-run")
        shutil.rmtree(run_dir)
        return False
    stored = build_config(read_config(run_dir))
    if stored != trial.config:
        raise RunDirError(f"{run_dir} holds a run of another config; delete it to redo the trial {trial.name}")
    return True


# --- executors ----------------------------------------------------------------------------------


class Executor(Protocol):
    """Runs the tasks and hands each record to ``record`` as it arrives; stops cleanly on KeyboardInterrupt.

    Used as a context manager: entering connects (so that an unreachable
    cluster is reported before anything is written), leaving lets go.
    """

    description: str

    def __enter__(self) -> Executor: ...
    def __exit__(self, *exc: object) -> None: ...
    def run(self, tasks: list[TrialTask], record: Callable[[Record], None]) -> None: ...


def _ignore_sigint() -> None:
    """Local workers leave Ctrl-C to the parent, which stops them all in one way (see LocalPool.run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside inherit SIGINT ignored, and Python (and asyncio) leave it so.

    A Ctrl-C at the terminal goes to the whole process group; this way only
    the parent sees it and stops the workers in order, instead of each worker
    dying on its own with a traceback. A Ctrl-C during the block is lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class LocalPool:
    """Trials on ``workers`` local processes (spawned fresh: no state inherited from the parent)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local process{'es' if workers != 1 else ''}"

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, tasks: list[TrialTask], record: Callable[[Record], None]) -> None:
        import multiprocessing

        if not tasks:
            return
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(tasks)),
                                   mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
        futures: dict[Future, TrialTask] = {}
        try:
            with _children_ignore_sigint():  # the pool starts its processes in submit
                futures = {pool.submit(run_trial, task): task for task in tasks}
            for future in as_completed(futures):
                record(_outcome(future, futures[future]))
        except BaseException:
            _terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _outcome(future: Future, task: TrialTask) -> Record:
    """The worker's record, or a failed record when the worker itself died (killed, out of memory)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 -- e.g. BrokenProcessPool: recorded against the trial
        return failed_record(task.name, task.params, f"the worker process died ({type(exc).__name__}: {exc})",
                             0.0, task.threads)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop queued trials and end the running ones now (their run directories stay resumable).

    SIGKILL, not SIGTERM: a trial may hold signals while it writes its
    checkpoint and metrics, and must not outlive the sweep. Killing it is safe
    for the files: every write is atomic, a resumed run rebuilds metrics.jsonl
    from its checkpoint and removes stale temporary files.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)  # forgets the processes: they were taken above
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=10)


class DaskExecutor:
    """Trials as Dask tasks: on the scheduler at ``address``, or on a LocalCluster of ``workers`` processes."""

    def __init__(self, address: str | None, workers: int, connect_timeout: float = 10.0) -> None:
        self.address, self.workers, self.connect_timeout = address, workers, connect_timeout
        self.description = (f"the Dask scheduler at {address}" if address
                            else f"a Dask LocalCluster of {workers} worker process{'es' if workers != 1 else ''}")
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> DaskExecutor:
        self._client, self._cluster = self._connect(import_distributed())
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def run(self, tasks: list[TrialTask], record: Callable[[Record], None]) -> None:
        if tasks:
            self._run(import_distributed(), self._client, tasks, record)

    def _connect(self, distributed: Any) -> tuple[Any, Any]:
        if self.address is None:
            import dask

            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 to hand memory back sooner; it also
            # turns off glibc's adaptive mmap threshold, and every large temporary array then costs fresh pages:
            # trials ran ~35% slower. Our own cluster does without it (see README for workers started by hand).
            with _children_ignore_sigint(), dask.config.set({NANNY_MALLOC_TRIM: None}):
                cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                   silence_logs=logging.ERROR)  # its warnings are not the user's
            return distributed.Client(cluster), cluster
        try:
            client = distributed.Client(self.address, timeout=self.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot reach the Dask scheduler at {self.address} ({exc}); start one with "
                             "`dask scheduler` (and workers with `dask worker ADDRESS`), or check the address"
                             ) from None
        try:
            client.wait_for_workers(1, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            client.close()
            raise SweepError(f"no Dask worker is connected to {self.address} ({type(exc).__name__}); start some "
                             f"with: dask worker {self.address} --nthreads 1") from None
        return client, None

    def _run(self, distributed: Any, client: Any, tasks: list[TrialTask], record: Callable[[Record], None]) -> None:
        tag = uuid.uuid4().hex[:8]
        stop = DaskStop(f"mlptrain-sweep-stop-{tag}")
        event = distributed.Event(stop.name, client=client)
        futures = {client.submit(run_trial, task, stop, key=f"mlptrain-trial-{tag}-{task.name}", pure=False): task
                   for task in tasks}
        try:
            for future in distributed.as_completed(futures):
                record(_outcome(future, futures[future]))
        except BaseException:
            # Running trials stop at their next batch (checkpoints intact), queued ones as they start;
            # cancelling first would leave running trials to be killed mid-write by the cluster's shutdown.
            event.set()
            _wait_quietly(distributed, list(futures), 3 * STOP_CHECK_SECONDS + 5)
            client.cancel(list(futures))
            raise


def _wait_quietly(distributed: Any, futures: list[Any], timeout: float) -> None:
    try:
        distributed.wait(futures, timeout=timeout)
    except Exception:  # noqa: BLE001 -- best effort while stopping
        pass


class DaskStop:
    """``should_stop`` for Dask trials: whether the sweep's distributed Event is set (picklable by name)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self) -> bool:
        from distributed import Event

        try:
            return bool(Event(self.name).is_set())
        except Exception:  # noqa: BLE001 -- the scheduler went away: carry on; the sweep is over anyway
            return False


def import_distributed() -> Any:
    """``distributed``, or SweepError saying how to install it (Dask is an optional extra)."""
    try:
        import distributed
    except ImportError:
        raise SweepError(DASK_MISSING) from None
    return distributed


# --- the sweep -----------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """The records of every trial that finished, in the plan's order, and how many were run now."""

    records: list[Record]
    skipped: int
    ran: int

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r["status"] == "failed"]


def plan_tasks(plan: SweepPlan, sweep_dir: Path, data_dirs: dict[str, Path], threads: int,
               command: str) -> tuple[dict[str, Record], list[TrialTask], dict[str, Record]]:
    """Finished records (reread), tasks to run, and records of trials that cannot run (their directory is not ours)."""
    done, tasks, broken = {}, [], {}
    for trial in plan.trials:
        run_dir = sweep_dir / trial.name
        try:
            finished = finished_record(trial, run_dir)
            if finished is not None:
                done[trial.name] = finished
                continue
            resume = _resumable(trial, run_dir)
        except MlptrainError as exc:
            broken[trial.name] = failed_record(trial.name, trial.params, str(exc), 0.0, threads)
            continue
        tasks.append(TrialTask(trial.name, trial.params, trial.config, run_dir, data_dirs[trial.config.dataset],
                               threads, resume, f"{command} (trial {trial.name})"))
    return done, tasks, broken


def run_sweep(plan: SweepPlan, sweep_dir: Path, spec_text: str, data_dirs: dict[str, Path], executor: Executor,
              threads: int, command: str, on_start: Callable[[int, int], None] | None = None,
              on_record: Callable[[Record], None] | None = None) -> SweepOutcome:
    """Run every unfinished trial on ``executor``, keeping the results files current after each one.

    ``on_start(finished, total)`` is called once the earlier trials are known;
    ``on_record`` with each new record. Raises SweepInterrupted on Ctrl-C or
    SIGTERM, with every finished trial recorded.
    """
    prepare_sweep_dir(plan, sweep_dir, spec_text)
    done, tasks, broken = plan_tasks(plan, sweep_dir, data_dirs, threads, command)
    records = {**done, **broken}
    order = [t.name for t in plan.trials]

    def save() -> None:
        write_results(sweep_dir, plan.varying, [records[name] for name in order if name in records])

    def record(result: Record) -> None:
        if result["status"] == "interrupted":
            return  # not a result: resumed next time
        records[result["trial"]] = result
        save()
        if on_record is not None:
            on_record(result)

    save()
    if on_start is not None:
        on_start(len(done), len(plan.trials))
    for result in broken.values():
        if on_record is not None:
            on_record(result)
    try:
        executor.run(tasks, record)
    except KeyboardInterrupt as exc:
        raise SweepInterrupted(sweep_dir, len(records), len(plan.trials), isinstance(exc, Terminated)) from None
    return SweepOutcome([records[name] for name in order if name in records], len(done), len(tasks))


def data_names(plan: SweepPlan) -> list[str]:
    """The data sets the trials train on (usually one), in first-use order."""
    return list(dict.fromkeys(t.config.dataset for t in plan.trials))

