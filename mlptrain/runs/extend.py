"""Training a finished run on for more epochs: ``mlptrain fit --resume RUN_DIR --epochs N``, in place.

A finished run keeps its training state after the last epoch in ``state.npz``
(the last checkpoint, renamed when the run completes). Continuing it puts that
state back as ``checkpoint.npz``, removes ``summary.json`` and rewrites
``config.yaml`` with the new epoch count, in that order, so a crash at any
point leaves a run that ``--resume`` finishes; the history in
``metrics.jsonl`` is kept.

A run killed after its summary but before the rename is complete with its
final state still in ``checkpoint.npz`` (and, if it was itself continued, an
older ``state.npz`` beside it). So the final state is ``checkpoint.npz`` when
a completed run has one: it is written after every epoch and only renamed
away at the end, so it is never older than ``state.npz``. Continuing such a
run uses it in place, and the run's end renames it as usual.

The promise is the usual one: the continued run ends with the metrics and
weights of a run started with ``--epochs N``. So only the epoch count may
change, the run must not have stopped early, and the learning rates of the
epochs already run must not depend on the epoch count (a cosine schedule
spans the whole run, so continuing it would not be that run: refused).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlptrain.config import Config
from mlptrain.errors import ConfigError
from mlptrain.nn.schedules import lr_at
from mlptrain.runs.files import CHECKPOINT_FILE, STATE_FILE, SUMMARY_FILE, read_json, write_config
from mlptrain.train.trainer import schedule_params


def is_complete(run_dir: Path) -> bool:
    """Whether the run finished (its last file, ``summary.json``, is there)."""
    return (run_dir / SUMMARY_FILE).exists()


def keep_final_state(run_dir: Path) -> None:
    """The finished run's last checkpoint becomes ``state.npz``: nothing is left to resume, a later
    ``--resume --epochs N`` can still train on."""
    checkpoint = run_dir / CHECKPOINT_FILE
    if checkpoint.exists():
        os.replace(checkpoint, run_dir / STATE_FILE)


def final_state(run_dir: Path) -> Path | None:
    """A completed run's last training state: ``checkpoint.npz`` if the run died before renaming it, else
    ``state.npz``; None when neither is there."""
    for name in (CHECKPOINT_FILE, STATE_FILE):
        if (run_dir / name).exists():
            return run_dir / name
    return None


def config_differences(stored: Config, requested: Config) -> list[str]:
    """``key (run: a, now: b)`` for each key whose value differs."""
    old, new = stored.to_dict(), requested.to_dict()
    return [f"{key} (run: {old[key]!r}, now: {new[key]!r})" for key in old if old[key] != new[key]]


def check_extendable(run_dir: Path, stored: Config, requested: Config) -> None:
    """ConfigError unless ``requested`` continues the finished run in ``run_dir`` exactly (see the module)."""
    summary = read_json(run_dir / SUMMARY_FILE)
    done = summary.get("epochs_run") if isinstance(summary, dict) else None
    if requested.epochs == stored.epochs:
        raise ConfigError(f"{run_dir} is already complete ({done} epochs); to train it on, give more --epochs, "
                          f"e.g. mlptrain fit --resume {run_dir} --epochs {stored.epochs * 2}")
    others = [d for d in config_differences(stored, requested) if not d.startswith("epochs ")]
    if others:
        raise ConfigError(f"a finished run can only be trained on for more --epochs; {run_dir} differs in: "
                          f"{'; '.join(others)}. Drop those flags, or start a new run")
    _check_state(run_dir, summary, done, requested)
    _check_schedule(stored, requested, done)


def _check_state(run_dir: Path, summary: object, done: object, requested: Config) -> None:
    """The summary says complete, not stopped early, fewer epochs than asked; the final state is there."""
    if not isinstance(summary, dict) or not isinstance(done, int):
        raise ConfigError(f"{run_dir / SUMMARY_FILE} is damaged; start a new run")
    if summary.get("status") != "complete":
        raise ConfigError(f"{run_dir} did not complete (its summary says {summary.get('status')!r}); only a "
                          "completed run can be trained on")
    if str(summary.get("stop_reason", "")).startswith("early stopping"):
        raise ConfigError(f"{run_dir} stopped early ({summary['stop_reason']}): training it on would not be "
                          "the run --epochs asks for; start a new run")
    if requested.epochs <= done:
        raise ConfigError(f"{run_dir} has already run {done} epochs; give --epochs above {done}")
    if final_state(run_dir) is None:
        raise ConfigError(f"{run_dir} has no {STATE_FILE} (it finished before mlptrain kept the final state, or "
                          "the file was removed); start a new run with --epochs "
                          f"{requested.epochs}")


def _check_schedule(stored: Config, requested: Config, done: int) -> None:
    old, new = schedule_params(stored), schedule_params(requested)
    if any(lr_at(stored.lr_schedule, e, old) != lr_at(requested.lr_schedule, e, new) for e in range(done)):
        raise ConfigError(f"the {stored.lr_schedule} schedule's learning rates depend on the number of epochs, so "
                          f"the epochs already run would differ from a {requested.epochs}-epoch run's; start a new "
                          f"run with --epochs {requested.epochs}")


def reopen_for_more_epochs(run_dir: Path, config: Config) -> None:
    """Turn a finished run back into an unfinished one of ``config`` (checked by ``check_extendable``)."""
    if final_state(run_dir) == run_dir / STATE_FILE:  # else the final state is already the checkpoint
        temporary = run_dir / f".{CHECKPOINT_FILE}.reopen.tmp"
        shutil.copyfile(run_dir / STATE_FILE, temporary)
        os.replace(temporary, run_dir / CHECKPOINT_FILE)
    (run_dir / SUMMARY_FILE).unlink()
    write_config(run_dir, config.to_dict())
