"""``--overwrite``: replace an existing run or sweep directory, only when it is one and nobody is writing it.

The old directory is locked (so no process is writing it, nor starts to),
moved aside with one ``os.rename`` to a hidden sibling, ``.NAME.replaced-PID``,
and then deleted; the new run or sweep is then made at the path as usual. A
failure before the rename leaves the old directory whole; after it, the path
holds nothing or the new run (which, if cut short, resumes like any). A crash
while deleting leaves the hidden sibling, which holds only the old files and
may be deleted. A directory that is neither a run nor a sweep is never
touched: it could be the user's data.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlptrain.errors import ConfigError, RunDirError, RunDirInUse
from mlptrain.runs.files import CONFIG_FILE, SUMMARY_FILE, SWEEP_FILE
from mlptrain.runs.lock import LOCK_FILE, acquire, holder

KINDS = {"run": "run directory", "sweep": "sweep directory"}
HINT = "wait for it to finish (or stop it), then run the same command again"


def kind_of(path: Path) -> str | None:
    """``sweep``, ``run``, or None for anything else."""
    if (path / SWEEP_FILE).is_file():
        return "sweep"
    if (path / CONFIG_FILE).is_file() or (path / SUMMARY_FILE).is_file():
        return "run"
    return None


def replace_dir(path: Path, kind: str, command: str | None = None) -> bool:
    """Remove the ``kind`` directory at ``path`` so a new one can be made there; False when there was nothing.

    ConfigError if ``path`` holds something else, RunDirInUse while a process writes it (or, for a sweep,
    any of its trials).
    """
    if not path.exists() or (path.is_dir() and not any(p.name != LOCK_FILE for p in path.iterdir())):
        return False
    found = kind_of(path) if path.is_dir() else None
    if found != kind:
        what = f"a {KINDS[found]}" if found else "neither a run nor a sweep directory (it could be your data)"
        raise ConfigError(f"--overwrite replaces only a {KINDS[kind]}, and {path} is {what}; choose another --out")
    with acquire(path, KINDS[kind], HINT, command) as lock:
        if kind == "sweep":
            _check_trials_idle(path)
        aside = path.parent / f".{path.name}.replaced-{os.getpid()}"
        try:
            os.rename(path, aside)
        except OSError as exc:
            raise RunDirError(f"cannot move {path} aside to replace it: {exc.strerror or exc}") from None
        lock.directory = aside  # the held .lock moved with it: let go of it there, not at the path
    shutil.rmtree(aside, ignore_errors=True)
    if aside.exists():
        raise RunDirError(f"replaced {path}, but could not delete its old files in {aside}; delete them by hand")
    return True


def _check_trials_idle(sweep_dir: Path) -> None:
    """RunDirInUse when a trial of the sweep is being written (a Dask worker may outlive its sweep)."""
    for trial in sweep_dir.iterdir():
        owner = holder(trial) if trial.is_dir() else None
        if owner is not None:
            raise RunDirInUse(f"trial {trial.name} of {sweep_dir} is being written by process {owner.get('pid', '?')};"
                              f" {HINT}", owner.get("pid"))
