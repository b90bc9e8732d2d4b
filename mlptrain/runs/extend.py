"""Training a finished run on for more epochs: ``mlptrain fit --resume RUN_DIR --epochs N``, in place.

A finished run keeps its training state after the last epoch in ``state.npz``
(the last checkpoint, renamed when the run completes). Continuing it is a
transaction on the run directory. First everything is read and checked, and
nothing is changed: ``config.yaml`` (still what the run was trained with, as
``summary.json`` records it), the summary, and the final state (loadable,
finite, and put into the trainer, so a state that does not fit fails here).
Then the new files are written beside the old under temporary names, and
only then do renames change the run: the state becomes ``checkpoint.npz``,
``summary.json`` goes, the new ``config.yaml`` replaces the old, in that
order, with Ctrl-C and SIGTERM held until the three are done. Stopped before
the renames the run is as it was (temporary files aside, which the next
``--resume`` deletes); stopped between them (``kill -9``) it is a completed
run, or an unfinished one that ``fit --resume`` finishes as it was, after
which ``--epochs N`` trains it on. The history in ``metrics.jsonl`` is kept.

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
from typing import Any

import numpy as np

from mlptrain.config import Config, build_config
from mlptrain.errors import ConfigError, RunDirError
from mlptrain.fsutil import signals_deferred, write_beside
from mlptrain.nn.schedules import lr_at
from mlptrain.runs.files import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    config_text,
    load_state,
    read_checkpoint_config,
    read_json,
)
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
    check_as_trained(run_dir, stored, summary.get("config"), run_dir / SUMMARY_FILE)
    _check_schedule(stored, requested, done)


def check_as_trained(run_dir: Path, stored: Config, recorded: Any, record: Path, epochs_may_differ: bool = False
                     ) -> None:
    """RunDirError unless ``config.yaml`` (``stored``) still says what the run was trained with, as ``record``
    (``summary.json``, or the checkpoint) has it: a hand-edited lr would make the continued run a different
    one, under the same name. ``recorded`` None: a file written before it was recorded, nothing to compare."""
    if recorded is None:
        return
    try:
        trained = build_config(recorded)
    except (ConfigError, TypeError, ValueError, AttributeError):
        raise RunDirError(f"{record} does not record a valid config: the run directory is damaged; start a "
                          "new run") from None
    old, new = trained.to_dict(), stored.to_dict()
    edited = [f"{key} (trained with {old[key]!r}, config.yaml has {new[key]!r})" for key in old
              if old[key] != new[key] and not (key == "epochs" and epochs_may_differ)]
    if edited:
        raise RunDirError(f"{run_dir / CONFIG_FILE} was changed after the run was trained: {'; '.join(edited)}. "
                          f"--resume continues the run as it was trained: put those values back ({record.name} "
                          "has them), or start a new run with the new ones")
    if epochs_may_differ and old["epochs"] != new["epochs"]:
        _check_schedule(trained, stored, 0)


def check_recorded_config(run_dir: Path, config: Config) -> None:
    """RunDirError unless ``config`` (``config.yaml``'s, or with --epochs changed) is what the run records it was
    trained with: in ``summary.json`` once complete, else in its checkpoint. Called before the config meets the
    data, so that a damaged ``config.yaml`` is named, not blamed on the data; ``--resume`` checks again under
    the run's lock."""
    summary, checkpoint = run_dir / SUMMARY_FILE, run_dir / CHECKPOINT_FILE
    if summary.exists():
        record = read_json(summary)
        check_as_trained(run_dir, config, record.get("config") if isinstance(record, dict) else "", summary, True)
    elif checkpoint.exists():
        check_as_trained(run_dir, config, read_checkpoint_config(checkpoint), checkpoint, True)


def extension_state(run_dir: Path, stored: Config, requested: Config) -> tuple[Path, dict[str, np.ndarray]]:
    """Everything an extension needs, read and checked, nothing changed: the final state's file and arrays."""
    check_extendable(run_dir, stored, requested)
    path = final_state(run_dir)
    assert path is not None  # check_extendable said so
    return path, load_state(path, f"the run is complete and unchanged; to train longer, start a new run with "
                                  f"--epochs {requested.epochs}")


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
    """Turn a finished run back into an unfinished one of ``config`` (read and checked by ``extension_state``):
    the new files beside the old, then the renames (see the module)."""
    staged: list[Path] = []
    summary = run_dir / SUMMARY_FILE
    try:
        if final_state(run_dir) == run_dir / STATE_FILE:  # else the final state is already the checkpoint
            with open(run_dir / STATE_FILE, "rb") as state:
                staged.append(write_beside(run_dir / CHECKPOINT_FILE, lambda f: shutil.copyfileobj(state, f)))
        new_config = write_beside(run_dir / CONFIG_FILE, lambda f: f.write(config_text(config.to_dict()).encode()))
        staged.append(new_config)
        with signals_deferred():
            if len(staged) == 2:
                os.replace(staged[0], run_dir / CHECKPOINT_FILE)
            summary.unlink()
            os.replace(new_config, run_dir / CONFIG_FILE)
    except OSError as exc:
        now = ("the run is complete as it was: run the same command again" if summary.exists() else
               f"the run is unfinished at its old epoch count: finish it with mlptrain fit --resume {run_dir}, then "
               f"train it on with --epochs {config.epochs}")
        raise RunDirError(f"cannot reopen {run_dir} for more epochs: {exc.filename or run_dir}: "
                          f"{exc.strerror or exc}; nothing was lost: {now}, once the cause is fixed") from None
    finally:
        for path in staged:
            path.unlink(missing_ok=True)  # no-ops once renamed
