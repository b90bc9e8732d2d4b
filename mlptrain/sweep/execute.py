"""Running a sweep: the sweep directory, which trials are left, and the results kept current.

Re-running skips trials whose run has a finished ``summary.json``, resumes
those with a checkpoint, and redoes the rest. The trials themselves run on an
``Executor`` (``sweep.executors``); each is ``sweep.trial.run_trial``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mlptrain.config import build_config
from mlptrain.errors import ConfigError, MlptrainError, RunDirError, SweepInterrupted, Terminated
from mlptrain.runs.files import CONFIG_FILE, SUMMARY_FILE, make_new_dir, read_config, read_json, write_json, write_text
from mlptrain.sweep.executors import Executor
from mlptrain.sweep.results import (
    FINISHED,
    SPEC_COPY,
    SWEEP_FILE,
    failed_record,
    record_from_summary,
    write_results,
)
from mlptrain.sweep.spec import SweepPlan, Trial, sweep_record
from mlptrain.sweep.trial import Record, TrialTask


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
