"""A search on Optuna: the study in the sweep directory, trials asked one at a time, told by the trials.

The study lives in ``study.journal`` (Optuna's journal file storage, safe for
several processes on one file system). The sweep asks for a trial when a slot
frees (so TPE learns from every finished trial) and runs it on the same
executors as a grid; the trial itself reports each epoch's validation accuracy
to the study, asks the pruner, and tells the study how it ended. So the study
holds every outcome the moment it happens, whoever was waiting for it.

Resume: a trial left RUNNING by an interrupted sweep (Ctrl-C, a crash) runs
again with the same parameters and continues from its checkpoint: no trial is
lost, none runs twice, and a finished study re-run adds nothing. ``trials``
may grow on a re-run; anything else in the spec must stay the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlptrain.errors import ConfigError, MissingDependency
from mlptrain.runs.files import read_json, write_json, write_text
from mlptrain.runs.lock import DirLock, acquire, claim_new_dir
from mlptrain.sweep.execute import SWEEP_HINT
from mlptrain.sweep.results import SPEC_COPY, SWEEP_FILE
from mlptrain.sweep.space import DEPTH_WIDTH, PRUNERS, SAMPLERS, SearchPlan, encode
from mlptrain.sweep.spec import SPEC_FORMAT
from mlptrain.sweep.trial import Record, TrialPruned

STUDY_FILE, STUDY_NAME = "study.journal", "mlptrain-search"
OPTUNA_MISSING = "a search needs Optuna: pip install 'mlptrain[search]'"
MEDIAN_STARTUP = 3  # trials that finish before the median pruner stops any


def import_optuna() -> Any:
    """``optuna`` (quiet), or MissingDependency saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise MissingDependency(OPTUNA_MISSING) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its per-trial lines are ours to print
    return optuna


def make_sampler(name: str, seed: int, parallel: bool) -> Any:
    """SAMPLERS' entry ``name``, seeded; TPE with a constant liar when trials run side by side."""
    optuna = import_optuna()
    table = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, constant_liar=parallel),
             "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    assert set(table) == set(SAMPLERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # constant_liar
        return table[name]()


def make_pruner(name: str, max_epochs: int, after: int = 1) -> Any:
    """PRUNERS' entry ``name``, stopping no trial before its epoch ``after``; a trial's steps are its epochs."""
    optuna = import_optuna()
    table = {"none": optuna.pruners.NopPruner,
             # a step is reported after each epoch, numbered from 1: steps below n_warmup_steps are never pruned
             "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=after),
             "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=after,
                                                                 max_resource=max(max_epochs, after + 1))}
    assert set(table) == set(PRUNERS)
    return table[name]()


def distributions(plan: SearchPlan) -> dict[str, Any]:
    """The space as Optuna distributions, one per parameter (hidden as depth x width is two)."""
    optuna = import_optuna()
    d = optuna.distributions
    out: dict[str, Any] = {}
    for dim in plan.space:
        if dim.kind == DEPTH_WIDTH:
            out[f"{dim.key}_depth"] = d.IntDistribution(dim.args[0], dim.args[1])
            out[f"{dim.key}_width"] = d.IntDistribution(dim.args[2], dim.args[3], log=True)
        elif dim.kind == "choice":
            out[dim.key] = d.CategoricalDistribution([encode(v) for v in dim.args])
        elif dim.kind == "int":
            out[dim.key] = d.IntDistribution(*dim.args)
        else:
            out[dim.key] = d.FloatDistribution(*dim.args, log=dim.kind == "log-uniform")
    return out


def trial_name(number: int) -> str:
    return f"trial-{number:04d}"


def storage(sweep_dir: Path) -> Any:
    """The study's journal in the sweep directory (an open-file lock: works where symlinks do not)."""
    optuna = import_optuna()
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(sweep_dir / STUDY_FILE)
    return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


_STUDY: dict[tuple, Any] = {}  # per worker process, one entry: the study its trials report to


@dataclass(frozen=True)
class StudyLink:
    """A trial's line to its study, for the worker: report each epoch, ask the pruner, tell the outcome."""

    sweep_dir: Path
    trial_id: int
    number: int
    pruner: str
    max_epochs: int
    prune_after: int = 1

    def _study(self) -> Any:
        """The study, loaded once per worker process and journal file (the inode: a study replaced by
        --overwrite in the same directory is another one to a long-lived Dask worker)."""
        journal = (self.sweep_dir / STUDY_FILE).stat()
        key = (str(self.sweep_dir), journal.st_dev, journal.st_ino, self.pruner, self.max_epochs, self.prune_after)
        if key not in _STUDY:
            _STUDY.clear()
            _STUDY[key] = import_optuna().load_study(study_name=STUDY_NAME, storage=storage(self.sweep_dir),
                                                     pruner=make_pruner(self.pruner, self.max_epochs, self.prune_after))
        return _STUDY[key]

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        """Report the epoch's validation accuracy; TrialPruned if the pruner stops the trial."""
        trial = import_optuna().trial.Trial(self._study(), self.trial_id)
        trial.report(float(metrics["val_acc"]), int(metrics["epoch"]))
        if trial.should_prune():
            raise TrialPruned(metrics["epoch"])

    def finish(self, record: Record) -> None:
        """Tell the study how the trial ended: its objective, pruned, or failed (with the error kept)."""
        state = import_optuna().trial.TrialState
        study = self._study()
        value = record.get("best_val_acc")
        if record["status"] == "pruned":
            study.tell(self.number, state=state.PRUNED, skip_if_finished=True)
        elif record["status"] in ("complete", "diverged") and value is not None:
            study.tell(self.number, value, skip_if_finished=True)
        else:
            import_optuna().trial.Trial(study, self.trial_id).set_user_attr("error", str(record.get("error")))
            study.tell(self.number, state=state.FAIL, skip_if_finished=True)


def open_study(plan: SearchPlan, sweep_dir: Path) -> Any:
    """Create the study in the sweep directory, or load it (its sampler is set per trial: ``ask``)."""
    return import_optuna().create_study(study_name=STUDY_NAME, storage=storage(sweep_dir), direction="maximize",
                                        load_if_exists=True,
                                        pruner=make_pruner(plan.pruner, plan.max_epochs, plan.prune_after))


def ask(study: Any, plan: SearchPlan, parallel: bool) -> Any:
    """A new trial, its parameters drawn by a sampler seeded with sampler_seed + its number.

    Seeding per trial makes a trial's draw depend only on its number and the
    trials finished before it: a search interrupted and resumed draws what it
    would have drawn uninterrupted (exactly so on one worker, where the order is fixed).
    """
    study.sampler = make_sampler(plan.sampler, (plan.sampler_seed + len(study.trials)) % 2**32, parallel)
    return study.ask(distributions(plan))


def prepare_search_dir(plan: SearchPlan, sweep_dir: Path, spec_text: str, command: str) -> DirLock:
    """Lock the sweep directory, creating it, or checking it holds this search (``trials`` may change)."""
    record = search_record(plan, spec_text)
    exists = (sweep_dir / SWEEP_FILE).exists()
    lock = (acquire(sweep_dir, "sweep directory", SWEEP_HINT, command) if exists
            else claim_new_dir(sweep_dir, "sweep directory", "a sweep directory", SWEEP_HINT, command))
    try:
        if exists:
            old = read_json(sweep_dir / SWEEP_FILE)
            old_spec = old.get("spec") if isinstance(old, dict) else None
            if old_spec != record["spec"]:
                raise ConfigError(f"{sweep_dir} holds another sweep: {_differences(old_spec, record['spec'])}. A "
                                  "search may only change trials: and time_budget: on a re-run: choose a new --out, "
                                  "or delete that directory to start over")
        write_text(sweep_dir / SPEC_COPY, spec_text)
        write_json(sweep_dir / SWEEP_FILE, record)
    except BaseException:
        lock.release()
        raise
    return lock


def search_record(plan: SearchPlan, spec_text: str) -> dict[str, Any]:
    """``sweep.json`` of a search: as a grid's, with ``kind: search`` and the trial count."""
    from mlptrain import __version__

    return {"format": SPEC_FORMAT, "mlptrain": __version__, "kind": "search", "spec_file": str(plan.spec_file),
            "spec_text": spec_text, "spec": plan.record(), "varying": plan.varying, "trials_planned": plan.trials,
            "time_budget": plan.time_budget, "trials": []}


def _differences(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict) or "search" not in old:
        return "a grid sweep, not a search"
    changed = [key for key in new if old.get(key) != new[key]]
    return "; ".join(f"{key} is {new[key]!r} (was {old.get(key)!r})" for key in changed)


def param_importances(sweep_dir: Path) -> dict[str, float]:
    """Each parameter's importance for the objective, summing to 1 (Optuna's PED-ANOVA: no scikit-learn needed,
    unlike its fANOVA); empty below two distinct values."""
    optuna = import_optuna()
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage(sweep_dir))
    valued = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(valued) < 2 or len({t.value for t in valued}) < 2:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
