"""Where trials run: local worker processes, or a Dask cluster; never a scheduler of our own.

Ctrl-C: the local pool's workers ignore SIGINT and are killed by the parent
(atomic writes and resume-from-checkpoint keep their run directories
resumable); Dask trials are asked to stop at their next batch
through a distributed Event, and the cluster's own workers carry on.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

from mlptrain.errors import SweepError
from mlptrain.sweep.results import failed_record
from mlptrain.sweep.trial import STOP_CHECK_SECONDS, Record, TrialTask, run_trial

NANNY_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
# Dask reads DASK_LOGGING__ASYNCIO as its logging.asyncio level when a worker process starts (see _connect).
WORKERS_ASYNCIO_LOG_LEVEL = "distributed.nanny.pre-spawn-environ.DASK_LOGGING__ASYNCIO"
DASK_MISSING = "--cluster/--scheduler need Dask: pip install 'mlptrain[dask]'"
Source = Callable[[], "TrialTask | None"]  # the next task to run, or None when there is none (for now)


class Executor(Protocol):
    """Runs the tasks and hands each record to ``record`` as it arrives; stops cleanly on KeyboardInterrupt.

    Used as a context manager: entering connects (so that an unreachable
    cluster is reported before anything is written), leaving lets go.
    """

    description: str

    def __enter__(self) -> Executor: ...
    def __exit__(self, *exc: object) -> None: ...
    def run(self, tasks: list[TrialTask], record: Callable[[Record], None]) -> None: ...
    def slots(self) -> int: ...
    def stream(self, source: Source, record: Callable[[Record], None], slots: int) -> None: ...


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
        self.stream(iter(tasks).__next__ if tasks else _none, record, max(1, len(tasks)))

    def slots(self) -> int:
        return self.workers

    def stream(self, source: Source, record: Callable[[Record], None], slots: int) -> None:
        """Keep up to ``slots`` tasks from ``source`` running (it returns None, or raises StopIteration, when it
        has no more); ``record`` each result as it arrives, then ask ``source`` for the next."""
        import multiprocessing

        pool = ProcessPoolExecutor(max_workers=min(self.workers, slots),
                                   mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
        running: dict[Future, TrialTask] = {}
        more = True
        try:
            while True:
                with _children_ignore_sigint():  # the pool starts its processes in submit
                    while more and len(running) < slots:
                        task = _next(source)
                        more = task is not None
                        if more:
                            running[pool.submit(run_trial, task)] = task
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    record(_outcome(future, running.pop(future)))
        except BaseException:
            _terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _none() -> None:
    return None


def _next(source: Source) -> TrialTask | None:
    try:
        return source()
    except StopIteration:
        return None


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
            self.stream(iter(tasks).__next__, record, len(tasks))

    def slots(self) -> int:
        """The trials that run at once: the workers' threads (each trial is single-threaded in Dask's eyes)."""
        workers = self._client.scheduler_info().get("workers", {}) if self.address else {}
        return sum(w.get("nthreads", 1) for w in workers.values()) or self.workers

    def stream(self, source: Source, record: Callable[[Record], None], slots: int) -> None:
        """As LocalPool.stream, on the cluster."""
        self._run(import_distributed(), self._client, source, record, slots)

    def _connect(self, distributed: Any) -> tuple[Any, Any]:
        if self.address is None:
            import dask

            # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 to hand memory back sooner; it also
            # turns off glibc's adaptive mmap threshold, and every large temporary array then costs fresh pages:
            # trials run markedly slower. Our own cluster does without it (see docs/sweeps.md for workers started
            # by hand). On Ctrl-C a worker's event loop can stop while a batched send still waits on a timeout;
            # asyncio then prints "Future exception was never retrieved ... TimeoutError: Timeout" among our lines,
            # now and then. Our workers' asyncio reports are Dask's, so they are silenced.
            quiet = {NANNY_MALLOC_TRIM: None, WORKERS_ASYNCIO_LOG_LEVEL: "critical"}
            with _children_ignore_sigint(), dask.config.set(quiet):
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

    def _run(self, distributed: Any, client: Any, source: Source, record: Callable[[Record], None],
             slots: int) -> None:
        tag = uuid.uuid4().hex[:8]
        stop = DaskStop(f"mlptrain-sweep-stop-{tag}")
        event = distributed.Event(stop.name, client=client)
        futures: dict[Any, TrialTask] = {}
        pending = distributed.as_completed()

        def fill() -> None:
            while pending.count() < slots and (task := _next(source)) is not None:
                future = client.submit(run_trial, task, stop, key=f"mlptrain-trial-{tag}-{task.name}", pure=False)
                futures[future] = task
                pending.add(future)

        try:
            fill()
            for future in pending:
                record(_outcome(future, futures[future]))
                fill()
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
