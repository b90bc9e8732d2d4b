"""Changes to a run directory are transactions: `fit --resume RUN --epochs N` reads and checks everything first,
then changes files in an order where a failure or a kill at any point leaves the run as it was, or resumable to
the very end an uninterrupted extension reaches.

The points are every call that changes a file (``os.replace``, ``os.unlink``, ``os.fsync`` -- each atomic write
flushes once), counted in a clean extension: a failure is injected at each one in turn (a full disk, SIGTERM),
and a `kill -9` of a real process at a seeded random few of them.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from mlptrain.cli import cli
from mlptrain.errors import Terminated

from faultkit import one_error, tree_hashes
from synthetic import write_dataset

FIT = ["--hidden", "8", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--init", "he-normal",
       "--threads", "1", "--quiet"]
EPOCHS, MORE = 2, 3
TESTS = Path(__file__).resolve().parent
CHANGES = ("replace", "unlink", "fsync")  # the os calls through which mlptrain changes a file


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete 2-epoch run (never modified: copy it)."""
    root = tmp_path_factory.mktemp("finished")
    tiny = write_dataset(root / "tiny")
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", str(EPOCHS),
                                      "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


def end_state(run: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """What a run ended with: its history (without timings) and its weights."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with np.load(run / "weights.npz") as npz:
        weights = {key: npz[key] for key in npz.files}
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows], weights


@pytest.fixture(scope="module")
def extended(finished: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The end an uninterrupted `fit --resume RUN --epochs 3` reaches."""
    run = Path(shutil.copytree(finished, tmp_path_factory.mktemp("extended") / "run"))
    assert extend(run).exit_code == 0
    return end_state(run)


def extend(run: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", str(MORE), "--quiet", "--threads", "1",
                                    *extra])


def assert_as_it_was_or_resumable(run: Path, before: dict[str, str], extended: tuple) -> str:
    """The run is byte for byte what it was, or `fit --resume` (then `--epochs 3` if it completed short of it)
    reaches the uninterrupted extension's end. Returns which."""
    visible = {name: digest for name, digest in tree_hashes(run).items() if not name.startswith(".")}
    if visible == before:
        return "as it was"
    summary = run / "summary.json"
    if not summary.exists():
        result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])
        assert result.exit_code == 0, result.output
    if json.loads(summary.read_text())["epochs_run"] < MORE:
        assert extend(run).exit_code == 0
    rows, weights = end_state(run)
    assert rows == extended[0]
    assert weights.keys() == extended[1].keys()
    for key in weights:
        np.testing.assert_array_equal(weights[key], extended[1][key])
    # Temporaries were cleaned up (a dead owner's .lock may stay: docs/locking.md).
    assert not [p for p in run.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    return "resumable"


# --- the case: a failed extension changed the run before it failed ---------------------


@pytest.mark.parametrize("damage, fragment", [
    ("truncated state", "{run}/state.npz is unreadable or not an .npz file"),
    ("non-finite state", "{run}/state.npz: param1 holds NaN or infinite values"),
    ("state of another shape", "{run}/state.npz: param1 has shape (3, 3), but this run's network needs (8,)"),
    ("config.yaml with another lr", "{run}/config.yaml was changed after the run was trained: lr (trained with 0.1, "
                                    "config.yaml has 0.2)"),
    ("config.yaml with other layers", "{run}/config.yaml was changed after the run was trained: hidden"),
    ("summary without its config", "{run}/summary.json does not record a valid config"),
])
def test_a_failed_extension_changes_nothing(finished: Path, tmp_path: Path, damage: str, fragment: str) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    state, config, summary = run / "state.npz", run / "config.yaml", run / "summary.json"
    if damage == "truncated state":
        state.write_bytes(state.read_bytes()[:3000])
    elif damage in ("non-finite state", "state of another shape"):
        with np.load(state) as npz:
            arrays = {key: npz[key] for key in npz.files}
        arrays["param1"] = np.full((3, 3), np.nan if damage == "non-finite state" else 0.5, np.float32)
        np.savez(state, **arrays)
    elif damage == "summary without its config":
        record = json.loads(summary.read_text())
        record["config"] = "gone"
        summary.write_text(json.dumps(record))
    else:
        old, new = ("lr: 0.1", "lr: 0.2") if "lr" in damage else ("- 8", "- 9")
        assert old in config.read_text()
        config.write_text(config.read_text().replace(old, new))
    before = tree_hashes(run)
    result = extend(run)
    assert result.exit_code == 1, result.output
    one_error(result, fragment.format(run=run))
    assert tree_hashes(run) == before


def test_an_unfinished_run_whose_config_was_edited_is_not_resumed(finished: Path, tmp_path: Path) -> None:
    """The checkpoint records the config it was trained with: a hand-edited lr is not taken silently."""
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    assert extend(run, "--epochs", "4").exit_code == 0
    os.replace(run / "state.npz", run / "checkpoint.npz")  # as if cut after its last epoch: resumable
    (run / "summary.json").unlink()
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.1", "lr: 0.3"))
    before = tree_hashes(run)
    result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--quiet", "--threads", "1"])
    assert result.exit_code == 1, result.output
    one_error(result, f"{config} was changed after the run was trained: lr (trained with 0.1, config.yaml has 0.3)",
              "checkpoint.npz has them")
    assert tree_hashes(run) == before


# --- a failure at every step ------------------------------------------------------------------


@contextmanager
def failing_at(step: int | None, exc: BaseException | None) -> Iterator[list[str]]:
    """Count the file-changing calls (``CHANGES``); the call number ``step`` raises ``exc`` instead.

    An unlink of a temporary file never fails here: a full disk does not stop one, and the cleanup of
    temporaries is what the last check looks at.
    """
    calls: list[str] = []
    real = {name: getattr(os, name) for name in CHANGES}

    def counting(name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            target = {"fsync": "fd", "replace": str(args[-1])}.get(name, str(args[0]))
            temporary = name == "unlink" and Path(target).name.startswith(".")
            if not temporary:
                calls.append(f"{name} {Path(target).name}")
                if len(calls) == step:
                    raise exc
            return real[name](*args, **kwargs)
        return call

    with pytest.MonkeyPatch.context() as mp:
        for name in CHANGES:
            mp.setattr(os, name, counting(name))
        yield calls


@pytest.fixture(scope="module")
def steps(finished: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file-changing calls of a clean extension, in order."""
    run = Path(shutil.copytree(finished, tmp_path_factory.mktemp("count") / "run"))
    with failing_at(None, None) as calls:
        assert extend(run).exit_code == 0
    assert "unlink summary.json" in calls and "replace config.yaml" in calls, calls
    return calls


def test_the_steps_are_counted(steps: list[str]) -> None:
    """The transaction's renames, in the order that keeps every prefix usable; the new files written first."""
    renames = [s for s in steps if s in ("replace checkpoint.npz", "unlink summary.json", "replace config.yaml")]
    assert renames[:3] == ["replace checkpoint.npz", "unlink summary.json", "replace config.yaml"]
    first_rename = steps.index("replace checkpoint.npz")
    assert steps[:first_rename] == ["fsync fd", "fsync fd"]  # both new files whole before any rename


@pytest.mark.parametrize("kind", ["disk full", "SIGTERM"])
def test_a_failure_at_every_step_leaves_the_run_as_it_was_or_resumable(
        finished: Path, extended: tuple, steps: list[str], tmp_path: Path, kind: str) -> None:
    outcomes = {}
    # Every step up to the end of the first epoch's writes, then every third: the later ones are the plain
    # training loop, which test_robustness kills too.
    first_epoch_done = steps.index("replace metrics.jsonl", steps.index("replace config.yaml") + 3) + 1
    points = list(range(1, first_epoch_done + 1)) + list(range(first_epoch_done + 1, len(steps) + 1, 3))
    for step in points:
        run = Path(shutil.copytree(finished, tmp_path / f"run{step}"))
        before = {name: digest for name, digest in tree_hashes(run).items()}
        exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) if kind == "disk full" else Terminated()
        with failing_at(step, exc):
            result = extend(run)
        assert result.exit_code == (1 if kind == "disk full" else 143), (step, steps[step - 1], result.output)
        one_error(result)
        outcomes[f"{step} {steps[step - 1]}"] = assert_as_it_was_or_resumable(run, before, extended)
        shutil.rmtree(run)
    assert "as it was" in outcomes.values() and "resumable" in outcomes.values(), outcomes


# --- kill -9 of a real process at random steps ------------------------------------------------

CHILD = r"""
import os, signal, sys
from pathlib import Path

step, calls = int(sys.argv[1]), []
real = {name: getattr(os, name) for name in ("replace", "unlink", "fsync")}

def counting(name):
    def call(*args, **kwargs):
        if not (name == "unlink" and Path(str(args[0])).name.startswith(".")):
            calls.append(name)
            if len(calls) == step:
                os.kill(os.getpid(), signal.SIGKILL)
        return real[name](*args, **kwargs)
    return call

for name in real:
    setattr(os, name, counting(name))
sys.argv = ["mlptrain", *sys.argv[2:]]
from mlptrain.cli.main import main
main()
"""


def test_kill_9_at_random_steps(finished: Path, extended: tuple, steps: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")])
    chosen = sorted(random.Random(20261207).sample(range(1, len(steps) + 1), 4))
    transaction = steps.index("unlink summary.json") + 1
    for step in sorted({*chosen, transaction, transaction + 1}):  # and right inside the renames, each time
        run = Path(shutil.copytree(finished, tmp_path / f"run{step}"))
        before = tree_hashes(run)
        child = subprocess.run([sys.executable, "-c", CHILD, str(step), "fit", "--resume", str(run), "--epochs",
                                str(MORE), "--quiet", "--threads", "1"], env=env, capture_output=True, text=True,
                               timeout=300)
        assert child.returncode == -signal.SIGKILL, (step, child.stderr[-2000:])
        assert_as_it_was_or_resumable(run, before, extended)
        shutil.rmtree(run)
