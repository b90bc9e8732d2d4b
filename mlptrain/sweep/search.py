"""Running a search: trials asked from the study as slots free, resumed ones first; results and ``best.yaml``.

The results files are a grid sweep's (``results.csv``/``.jsonl``, ``summary.*``,
one row per trial, ``pruned`` a status of its own), rebuilt from the study and
the trials' run directories at the start and rewritten after every trial.
``best.yaml`` is the best trial's whole config, ready for ``fit --config``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from mlptrain.errors import ConfigError, SweepInterrupted, Terminated
from mlptrain.runs.files import write_text
from mlptrain.sweep.execute import SweepOutcome
from mlptrain.sweep.executors import Executor
from mlptrain.sweep.results import OWNED, failed_record, pruned_record, write_results
from mlptrain.sweep.space import SearchPlan, values_from_params
from mlptrain.sweep.study import StudyLink, ask, open_study, prepare_search_dir, trial_name
from mlptrain.sweep.summary import write_summaries
from mlptrain.sweep.trial import Record, TrialTask, finished_record

BEST_FILE = "best.yaml"


def run_search(plan: SearchPlan, sweep_dir: Path, spec_text: str, data_dirs: dict[str, Path], executor: Executor,
               threads: int, command: str, on_start: Callable[[int, int], None] | None = None,
               on_record: Callable[[Record], None] | None = None, cache_dir: Path | None = None) -> SweepOutcome:
    """Run the search's remaining trials on ``executor``, keeping the results and ``best.yaml`` current.

    ``on_start(finished, total)`` once the study is read; ``on_record`` with
    each new record. SweepInterrupted on Ctrl-C or SIGTERM: the unfinished
    trials stay RUNNING in the study and are resumed by the next run.
    """
    with prepare_search_dir(plan, sweep_dir, spec_text, command):
        slots = executor.slots()
        study = open_study(plan, sweep_dir)
        results = _Results(plan, sweep_dir, on_record)
        unfinished = []
        for frozen in study.trials:
            if frozen.state.is_finished():
                results.records[frozen.number] = _reread(plan, sweep_dir, frozen)
            else:
                unfinished.append(frozen)
        done = len(results.records)
        results.save()
        if on_start is not None:
            on_start(done, max(plan.trials, len(study.trials)))
        source = _Source(plan, study, sweep_dir, data_dirs, threads, command, unfinished, slots > 1, results.add)
        source.cache_dir = cache_dir  # where the trials find the data prepared by the parent
        try:
            executor.stream(source, results.add, slots)
        except KeyboardInterrupt as exc:
            raise SweepInterrupted(sweep_dir, len(results.records), plan.trials, isinstance(exc, Terminated)) from None
        owned = [r for n, r in results.owned.items() if n not in results.records]
        return SweepOutcome(results.ordered(), done, source.started, owned)


class _Source:
    """The next trial to run: the unfinished ones first, then new ones asked while trials and time remain."""

    def __init__(self, plan: SearchPlan, study: Any, sweep_dir: Path, data_dirs: dict[str, Path], threads: int,
                 command: str, unfinished: list[Any], parallel: bool, on_invalid: Callable[[Record], None]) -> None:
        self.plan, self.study, self.sweep_dir, self.data_dirs = plan, study, sweep_dir, data_dirs
        self.threads, self.command, self.unfinished = threads, command, list(unfinished)
        self.left = max(0, plan.trials - len(study.trials))
        self.deadline = time.monotonic() + plan.time_budget if plan.time_budget else None
        self.started, self.parallel, self.on_invalid = 0, parallel, on_invalid
        self.cache_dir: Path | None = None

    def __call__(self) -> TrialTask | None:
        while True:
            if self.unfinished:
                frozen = self.unfinished.pop(0)
            elif self.left > 0 and (self.deadline is None or time.monotonic() < self.deadline):
                frozen = ask(self.study, self.plan, self.parallel)
                self.left -= 1
            else:
                return None
            self.started += 1
            try:
                return self._task(frozen._trial_id, frozen.number, frozen.params)
            except ConfigError as exc:  # values that clash inside the space (its edges were checked): a failed trial
                self._invalid(frozen, str(exc))

    def _invalid(self, frozen: Any, error: str) -> None:
        record = failed_record(trial_name(frozen.number), trial_params(self.plan, frozen.params), error, 0.0, None)
        plan = self.plan
        StudyLink(self.sweep_dir, frozen._trial_id, frozen.number, plan.pruner, plan.max_epochs,
                  plan.prune_after).finish(record)
        self.on_invalid(record)

    def _task(self, trial_id: int, number: int, params: dict[str, Any]) -> TrialTask:
        plan = self.plan
        config = plan.config(values_from_params(plan, params))
        name = trial_name(number)
        link = StudyLink(self.sweep_dir, trial_id, number, plan.pruner, plan.max_epochs, plan.prune_after)
        return TrialTask(name, trial_params(plan, params), config, self.sweep_dir / name,
                         self.data_dirs[config.dataset], self.threads, f"{self.command} (trial {name})",
                         self.cache_dir, study=link)


def trial_params(plan: SearchPlan, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's row values: the searched keys' config values, and the seed."""
    return {**values_from_params(plan, params), "seed": plan.seed}


def _reread(plan: SearchPlan, sweep_dir: Path, frozen: Any) -> Record:
    """The record of a trial the study says is finished, from its run directory (or the study, if it failed)."""
    name, params = trial_name(frozen.number), trial_params(plan, frozen.params)
    run_dir = sweep_dir / name
    state = frozen.state.name
    wall = (frozen.duration.total_seconds() if frozen.duration else 0.0)
    if state == "PRUNED":
        return pruned_record(name, params, run_dir, wall, None)
    finished = finished_record(name, params, run_dir)
    if finished is not None:
        return finished
    return failed_record(name, params, str(frozen.user_attrs.get("error", "failed")), wall, None)


class _Results:
    """The records so far, keyed by trial number, and the files that show them (results, summaries, best.yaml)."""

    def __init__(self, plan: SearchPlan, sweep_dir: Path, on_record: Callable[[Record], None] | None) -> None:
        self.plan, self.sweep_dir, self.on_record = plan, sweep_dir, on_record
        self.records: dict[int, Record] = {}
        self.owned: dict[int, Record] = {}

    def ordered(self) -> list[Record]:
        return [self.records[n] for n in sorted(self.records)]

    def save(self) -> None:
        records = self.ordered()
        write_results(self.sweep_dir, self.plan.varying, records)
        write_summaries(self.sweep_dir, self.plan.varying, records)
        best = best_record(records)
        if best is not None:
            write_text(self.sweep_dir / BEST_FILE, best_yaml(self.plan, best))

    def add(self, result: Record) -> None:
        number = int(result["trial"].rsplit("-", 1)[1])
        if result["status"] == "interrupted":
            return
        if result["status"] == OWNED:
            self.owned[number] = result
            return
        self.records[number] = result
        self.save()
        if self.on_record is not None:
            self.on_record(result)


def best_record(records: list[Record]) -> Record | None:
    """The trial with the highest objective (best-epoch validation accuracy) among those that ran to the end."""
    ran = [r for r in records if r["status"] in ("complete", "diverged") and r.get("best_val_acc") is not None]
    return max(ran, key=lambda r: r["best_val_acc"], default=None)


def best_yaml(plan: SearchPlan, record: Record) -> str:
    """The best trial's whole config as YAML, with a comment saying where it came from."""
    import yaml

    values = {k: v for k, v in record["params"].items()}
    config = plan.config(values).to_dict()
    head = (f"# {record['trial']} of the search in {plan.spec_file.name}: best validation accuracy "
            f"{100 * record['best_val_acc']:.2f}% (epoch {record['best_epoch']}); "
            f"mlptrain fit --config THIS_FILE\n")
    return head + yaml.safe_dump(config, sort_keys=False)


def format_search(records: list[Record], varying: list[str], shown: int = 10) -> str:
    """The terminal table of a search: the best ``shown`` trials by validation accuracy, and a count by status."""
    from mlptrain.sweep.results import show_value

    ranked = sorted(records, key=lambda r: -(r.get("best_val_acc") or -1.0))
    headers = ["trial", *varying, "status", "epochs", "val acc %", "test acc %"]
    rows = [[r["trial"], *(show_value(r["params"].get(k)) for k in varying), r["status"], str(r.get("epochs_run") or 0),
             _percent(r.get("best_val_acc")), _percent(r.get("test_acc"))] for r in ranked[:shown]]
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    right = {len(headers) - 3, len(headers) - 2, len(headers) - 1}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in [headers, *rows]]
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    more = f"; the best {shown} shown" if len(records) > shown else ""
    lines.append(f"({len(records)} trials: {', '.join(f'{n} {s}' for s, n in counts.items())}{more}; "
                 "val acc: the best epoch's, the objective; test acc: once per finished trial, never searched on)")
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"
