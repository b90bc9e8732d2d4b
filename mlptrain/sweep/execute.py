"""Running a sweep: the sweep directory, which trials are left, and the results kept current.

Re-running skips trials whose run has a finished ``summary.json``, resumes
those with a checkpoint, and redoes the rest. The trials themselves run on an
``Executor`` (``sweep.executors``); each is ``sweep.trial.run_trial``. One
``mlptrain sweep`` at a time owns a sweep directory (its ``.lock``); each
trial locks its own run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mlptrain.errors import ConfigError, MlptrainError, SweepInterrupted, Terminated
from mlptrain.runs.files import read_json, write_json, write_text
from mlptrain.runs.lock import DirLock, acquire, claim_new_dir
from mlptrain.sweep.executors import Executor
from mlptrain.sweep.grow import check_growth
from mlptrain.sweep.results import OWNED, SPEC_COPY, SWEEP_FILE, read_sweep, write_results
from mlptrain.sweep.spec import SweepPlan, sweep_record
from mlptrain.sweep.summary import write_summaries
from mlptrain.sweep.trial import Record, TrialTask, finished_record

SWEEP_HINT = "wait for that sweep to finish (or stop it), then run the same command again"


def prepare_sweep_dir(plan: SweepPlan, sweep_dir: Path, spec_text: str, command: str | None = None) -> DirLock:
    """Lock the sweep directory, creating it with ``sweep.json`` and a copy of the spec, or checking it holds
    this sweep or one this spec grows (then the new spec is recorded); RunDirInUse if another ``mlptrain
    sweep`` holds it."""
    record = sweep_record(plan, spec_text)
    if (sweep_dir / SWEEP_FILE).exists():
        lock = acquire(sweep_dir, "sweep directory", SWEEP_HINT, command)
    else:
        lock = claim_new_dir(sweep_dir, "sweep directory", "a sweep directory", SWEEP_HINT, command)
    try:
        if (sweep_dir / SWEEP_FILE).exists():
            raw = read_json(sweep_dir / SWEEP_FILE)
            if isinstance(raw, dict) and raw.get("kind") == "search":  # before read_sweep: a search has no grid
                raise ConfigError(f"{sweep_dir} holds a search, not a grid sweep; choose a new --out, or delete that "
                                  "directory to start over")
            old = read_sweep(sweep_dir)  # RunDirError naming it when damaged
            if old.get("spec") == record["spec"] and old.get("trials") == record["trials"]:
                return lock
            check_growth(sweep_dir, old, record)  # only more trials: the earlier ones are kept and skipped
            record["grown_from"] = [*old.get("grown_from", []), len(old["trials"])]
        write_text(sweep_dir / SPEC_COPY, spec_text)
        write_json(sweep_dir / SWEEP_FILE, record)  # last: a directory with sweep.json is a whole sweep directory
    except BaseException:
        lock.release()
        raise
    return lock


@dataclass
class SweepOutcome:
    """The records of every trial that finished, in the plan's order, and how many were run now.

    ``owned``: the records of trials another process was running (their run
    directory was locked), which ended without a result here.
    """

    records: list[Record]
    skipped: int
    ran: int
    owned: list[Record] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r["status"] == "failed"]


def plan_tasks(plan: SweepPlan, sweep_dir: Path, data_dirs: dict[str, Path], threads: int,
               command: str, cache_dir: Path | None = None) -> tuple[dict[str, Record], list[TrialTask]]:
    """The records of trials finished earlier (reread) and the tasks of the rest.

    Only a hint: each task decides again under its run directory's lock.
    """
    done, tasks = {}, []
    for trial in plan.trials:
        run_dir = sweep_dir / trial.name
        try:
            finished = finished_record(trial.name, trial.params, run_dir)
        except MlptrainError:
            finished = None  # a damaged summary: the task reports it
        if finished is not None:
            done[trial.name] = finished
            continue
        tasks.append(TrialTask(trial.name, trial.params, trial.config, run_dir, data_dirs[trial.config.dataset],
                               threads, f"{command} (trial {trial.name})", cache_dir))
    return done, tasks


def run_sweep(plan: SweepPlan, sweep_dir: Path, spec_text: str, data_dirs: dict[str, Path], executor: Executor,
              threads: int, command: str, on_start: Callable[[int, int], None] | None = None,
              on_record: Callable[[Record], None] | None = None, cache_dir: Path | None = None) -> SweepOutcome:
    """Run every unfinished trial on ``executor``, keeping the results files current after each one.

    The sweep directory is locked throughout (one ``mlptrain sweep`` at a
    time). ``on_start(finished, total)`` is called once the earlier trials are
    known; ``on_record`` with each new record. ``cache_dir``: the data directory
    whose cache the trials load decoded and prepared arrays from. Raises SweepInterrupted on
    Ctrl-C or SIGTERM, with every finished trial recorded.
    """
    with prepare_sweep_dir(plan, sweep_dir, spec_text, command):
        done, tasks = plan_tasks(plan, sweep_dir, data_dirs, threads, command, cache_dir)
        results = _Results(plan, sweep_dir, dict(done), on_record)
        results.save()
        if on_start is not None:
            on_start(len(done), len(plan.trials))
        try:
            executor.run(tasks, results.add)
        except KeyboardInterrupt as exc:
            raise SweepInterrupted(sweep_dir, len(results.records), len(plan.trials),
                                   isinstance(exc, Terminated)) from None
        owned = results.settle_owned()
        return SweepOutcome(results.ordered(), len(done), len(tasks), owned)


class _Results:
    """The records so far, one per trial, and the results files that show them."""

    def __init__(self, plan: SweepPlan, sweep_dir: Path, records: dict[str, Record],
                 on_record: Callable[[Record], None] | None) -> None:
        self.plan, self.sweep_dir, self.records, self.on_record = plan, sweep_dir, records, on_record
        self.owned: dict[str, Record] = {}

    def ordered(self) -> list[Record]:
        return [self.records[t.name] for t in self.plan.trials if t.name in self.records]

    def save(self) -> None:
        write_results(self.sweep_dir, self.plan.varying, self.ordered())
        write_summaries(self.sweep_dir, self.plan.varying, self.ordered())

    def add(self, result: Record) -> None:
        """Keep a trial's record; an ``interrupted`` or ``owned`` one is not a result and changes nothing."""
        if result["status"] == "interrupted":
            return  # resumed next time
        if result["status"] == OWNED:
            self.owned[result["trial"]] = result  # the copy that holds the directory delivers the result
            return
        self.records[result["trial"]] = result  # keyed by trial: a second copy's record replaces, never adds
        self.save()
        if self.on_record is not None:
            self.on_record(result)

    def settle_owned(self) -> list[Record]:
        """Reread the trials other processes were running: those that finished meanwhile become rows."""
        for trial in self.plan.trials:
            if trial.name in self.owned and trial.name not in self.records:
                finished = finished_record(trial.name, trial.params, self.sweep_dir / trial.name)
                if finished is not None:
                    self.add(finished)
        return [r for name, r in self.owned.items() if name not in self.records]


def data_names(plan: SweepPlan) -> list[str]:
    """The data sets the trials train on (usually one), in first-use order."""
    return list(dict.fromkeys(t.config.dataset for t in plan.trials))
