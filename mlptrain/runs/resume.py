"""Continuing a run in place (``mlptrain fit --resume RUN_DIR``): its lock first, then the config it goes on with.

The lock comes first. A run that another process is extending has had its
``config.yaml`` rewritten (runs/extend.py), so comparing configs before
knowing who owns the run would tell the user of a config difference where the
truth is that the run is in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mlptrain.config import FIELDS, Config, build_config
from mlptrain.configfile import resolve_config
from mlptrain.errors import ConfigError, RunDirError
from mlptrain.runs.extend import check_extendable, check_recorded_config, config_differences, is_complete
from mlptrain.runs.files import CONFIG_FILE, RESUME_HINT, read_config
from mlptrain.runs.lock import DirLock, acquire


def claim_run(run_dir: Path, command: str | None = None) -> DirLock:
    """Lock the existing run ``run_dir`` for this process; RunDirInUse naming the owner if another holds it."""
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    return acquire(run_dir, "run directory", RESUME_HINT, command)


def resume_config(run_dir: Path, config: str | Path | None = None,
                  flags: Mapping[str, Any] | None = None) -> Config:
    """The config ``run_dir`` goes on with: its own; a config file or flags given must agree with it (a finished
    run: but for more ``epochs``). Take the run's lock (``claim_run``) first.

    A config file given is compared whole (its keys over the defaults); flags
    alone are taken over the run's own config.
    """
    source = str(run_dir / CONFIG_FILE)
    stored = build_config(read_config(run_dir), {key: source for key in FIELDS})
    check_recorded_config(run_dir, stored)  # before the data it names is loaded: a damaged config.yaml is named
    requested = resolve_config(config, flags, base=None if config else stored.to_dict(), base_source=source).config
    if is_complete(run_dir):
        check_extendable(run_dir, stored, requested)
        return requested
    differences = config_differences(stored, requested)
    if differences:
        raise ConfigError(f"cannot resume {run_dir} with a different config: {'; '.join(differences)}. "
                          "Resume without those flags, or start a new run")
    return stored
