"""One owner per run directory (mlptrain/runs/lock.py), with real processes: racing fits, two resumes,
two sweeps, a trial run twice at once as a Dask retry would, and an owner killed with SIGKILL.

Every second process must fail at once with exit status 2 and one ``Error:`` line naming the
directory and the owner's process id, and leave the owner's run whole. The processes meet at
barriers (a file, the owner's pid in ``.lock``, SIGSTOP) rather than after sleeps.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.errors import ConfigError, RunDirError, RunDirInUse
from mlptrain.runs import files, lock
from mlptrain.runs.lock import LOCK_FILE, acquire, claim_new_dir
from mlptrain.runs.report import load_run
from mlptrain.sweep.execute import plan_tasks, run_sweep
from mlptrain.sweep.spec import load_spec
from mlptrain.sweep.trial import TrialTask, run_trial

from synthetic import write_dataset

HOST = socket.gethostname()
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}, "PYTHONWARNINGS": "ignore"}
FIT = ["--hidden", "32", "--val-size", "100", "--batch-size", "16", "--init", "he-normal", "--threads", "1",
       "--quiet"]
# A finished run, nothing else (no .lock):
RUN_FILES = ["config.yaml", "diagnostics.json", "metrics.jsonl", "state.npz", "summary.json", "weights.npz"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLPTRAIN_MIRROR", "MLPTRAIN_DATA_DIR", "MLPTRAIN_THREADS", lock.UNLOCKED_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny", n_train=2000)


def mlptrain(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlptrain", *args]


def wait_for_owner(directory: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until ``process`` holds ``directory``'s lock: its pid is in ``.lock`` (a dead owner's file may be there)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if json.loads((directory / LOCK_FILE).read_text()).get("pid") == process.pid:
                return
        except (OSError, ValueError):
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{process.args} did not lock {directory}"
        time.sleep(0.005)


def in_use_line(stderr: str, what: str, directory: Path, pid: int, hint: str) -> str:
    """The single ``Error:`` line of a refused second process, checked word for word up to the command."""
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    line = errors[0]
    assert line.startswith(f"Error: {what} {directory} is in use by process {pid} on {HOST} (mlptrain "), line
    assert line.endswith(f" UTC); {hint}"), line
    return line


def assert_whole_run(run: Path, seed: int, epochs: int) -> dict:
    """A finished run of exactly one process: its files only, all from the run with ``seed``."""
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    record = load_run(run)
    summary = record.summary
    assert summary is not None and summary["status"] == "complete" and summary["epochs_run"] == epochs
    assert record.config["seed"] == summary["seed"] == seed and f"--seed {seed}" in summary["command"]
    assert [m["epoch"] for m in record.history] == list(range(1, epochs + 1))
    assert record.history[-1]["train_loss"] == summary["final"]["train_loss"]
    files.load_weights(run / "weights.npz")
    return summary


def stopped(process: subprocess.Popen):
    """SIGSTOP ``process`` for the block (a held lock stays held), then SIGCONT."""
    class _Stopped:
        def __enter__(self) -> None:
            process.send_signal(signal.SIGSTOP)

        def __exit__(self, *exc: object) -> None:
            process.send_signal(signal.SIGCONT)

    return _Stopped()


# --- two fits racing for one --out ---------------------------------------------------------------

# Runs `mlptrain fit`, but waits at a barrier just before claiming the run directory, so that two
# processes claim it within the same millisecond.
RACE_CHILD = r"""
import sys, time
from pathlib import Path
from mlptrain import experiment
from mlptrain.cli import main

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
real = experiment.create_run_dir

def at_the_barrier(*args, **kwargs):
    ready.touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        pass
    return real(*args, **kwargs)

experiment.create_run_dir = at_the_barrier
sys.argv = ["mlptrain", *sys.argv[3:]]
main()
"""


@pytest.mark.parametrize("round_", range(2))
def test_two_fits_racing_for_one_out(tmp_path: Path, tiny: Path, round_: int) -> None:
    run, go = tmp_path / "runs" / "x", tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", RACE_CHILD, str(tmp_path / f"ready{seed}"), str(go), "fit",
                                  "--dataset", str(tiny), *FIT, "--epochs", "20", "--seed", str(seed),
                                  "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=ENV) for seed in (1, 2)]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{seed}").exists() for seed in (1, 2)):
            assert all(c.poll() is None for c in children) and time.monotonic() < deadline, "a child did not start"
            time.sleep(0.005)
        go.touch()
        outputs = [c.communicate(timeout=120) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    codes = sorted(c.returncode for c in children)
    assert codes == [0, 2], outputs
    winner = 0 if children[0].returncode == 0 else 1
    loser = 1 - winner
    assert outputs[loser][0] == ""
    in_use_line(outputs[loser][1], "run directory", run, children[winner].pid,
                "wait for it to finish, or choose another --out")
    assert len(outputs[loser][1].splitlines()) == 1
    assert f"run directory: {run}" in outputs[winner][0]
    assert_whole_run(run, seed=winner + 1, epochs=20)


def test_a_finished_run_is_taken_not_in_use(tmp_path: Path, tiny: Path) -> None:
    """After the owner is done, a second fit gets the usual "already exists" (the lock file is gone)."""
    run = tmp_path / "run"
    first = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(run)])
    assert first.exit_code == 0, first.output
    assert not (run / LOCK_FILE).exists()
    again = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(run)])
    assert again.exit_code == 2
    assert again.stderr == f"Error: --out {run} already exists and is not an empty directory; choose a new --out\n"


# --- --resume: two at once, and after the owner was killed ------------------------------------------


def killed_run(tmp_path: Path, tiny: Path, epochs: int) -> Path:
    """A run whose owner was killed with SIGKILL while it held the lock, after its first checkpoint."""
    run = tmp_path / "run"
    owner = subprocess.Popen(mlptrain("fit", "--dataset", str(tiny), *FIT, "--epochs", str(epochs),
                                      "--out", str(run)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        wait_for_owner(run, owner)
        deadline = time.monotonic() + 60
        while not (run / "checkpoint.npz").exists():
            assert owner.poll() is None and time.monotonic() < deadline, owner.communicate()
            time.sleep(0.002)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert owner.returncode == -signal.SIGKILL
    stale = json.loads((run / LOCK_FILE).read_text())
    assert stale["pid"] == owner.pid  # the dead owner's text is still there: only the flock counts
    return run


def test_resume_after_the_owner_was_killed_with_sigkill(tmp_path: Path, tiny: Path) -> None:
    run = killed_run(tmp_path, tiny, epochs=30)
    (run / LOCK_FILE).write_text("garbage, not even JSON")  # whatever the stale file says, it is not trusted
    resumed = subprocess.run(mlptrain("fit", "--resume", str(run), "--threads", "1", "--quiet"),
                             capture_output=True, text=True, env=ENV, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed"] is True and summary["epochs_run"] == 30
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES  # the stale .lock went with the owner's release


def test_two_resumes_of_one_run_one_refuses(tmp_path: Path, tiny: Path) -> None:
    run = killed_run(tmp_path, tiny, epochs=30)
    first = subprocess.Popen(mlptrain("fit", "--resume", str(run), "--threads", "1", "--quiet"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for_owner(run, first)
        with stopped(first):  # it holds the lock, frozen, however slow the second one is to start
            second = subprocess.run(mlptrain("fit", "--resume", str(run), "--threads", "1", "--quiet"),
                                    capture_output=True, text=True, env=ENV, timeout=120)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2 and second.stdout == ""
    line = in_use_line(second.stderr, "run directory", run, first.pid,
                       "wait for it to finish; only one process at a time may write a run")
    assert len(second.stderr.splitlines()) == 1 and f"(mlptrain fit --resume {run} --threads 1 --quiet, since " in line
    assert first.returncode == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed"] is True and summary["epochs_run"] == 30
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES


@pytest.mark.parametrize("owner_args, ready", [
    (["--epochs", "30", "--out"], "config.yaml"),  # a new run, still training
    (["--resume"], "summary.json"),  # a finished one being extended (--epochs 30): its config.yaml rewritten
], ids=["training", "extending"])
def test_a_resume_asking_for_more_epochs_of_a_run_in_use_is_told_so(tmp_path: Path, tiny: Path,
                                                                      owner_args: list[str], ready: str) -> None:
    """The lock decides before the configs are compared: not "a different config: epochs (run: 30, now: 40)"."""
    run = tmp_path / "run"
    args = [*FIT, "--dataset", str(tiny)]
    if owner_args == ["--resume"]:
        assert CliRunner().invoke(cli, ["fit", *args, "--epochs", "1", "--out", str(run)]).exit_code == 0
        args = ["--epochs", "30", "--threads", "1", "--quiet"]
    owner = subprocess.Popen(mlptrain("fit", *args, *owner_args, str(run)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for_owner(run, owner)
        deadline = time.monotonic() + 60
        while (run / ready).exists() != (ready == "config.yaml"):  # written, or (extending) removed
            assert owner.poll() is None and time.monotonic() < deadline, owner.communicate()
            time.sleep(0.002)
        with stopped(owner):
            second = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", "40", "--quiet"])
        out, err = owner.communicate(timeout=120)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert second.exit_code == 2 and second.stdout == "", second.output
    in_use_line(second.stderr, "run directory", run, owner.pid,
                "wait for it to finish; only one process at a time may write a run")
    assert owner.returncode == 0, err
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 30


def test_a_resume_that_gets_the_lock_after_the_run_finished_refuses(tmp_path: Path, tiny: Path) -> None:
    """The CLI checks before loading data; the lock is checked again under the lock (the run may have ended)."""
    from mlptrain.config import build_config
    from mlptrain.data.loading import load_dataset
    from mlptrain.experiment import run_fit

    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(run)]
                              ).exit_code == 0
    before = (run / "weights.npz").read_bytes()
    config = build_config(files.read_config(run))
    with pytest.raises(ConfigError, match="is already complete"):
        run_fit(config, load_dataset(tiny, config.dataset), tiny, None, None, resume=run)  # type: ignore[arg-type]
    assert (run / "weights.npz").read_bytes() == before and not (run / LOCK_FILE).exists()


# --- two sweeps on one directory ----------------------------------------------------------------------


def write_spec(path: Path, data: Path, epochs: int) -> Path:
    spec = {"base": {"dataset": str(data), "hidden": [8], "epochs": epochs, "val_size": 30, "batch_size": 32,
                     "lr": 0.1, "init": "uniform"}, "grid": {"init_range": [0.1, 0.3]}}
    path.write_text(json.dumps(spec))
    return path


def test_two_sweeps_on_one_directory_one_refuses(tmp_path: Path, tiny: Path) -> None:
    spec, out = write_spec(tmp_path / "s.yaml", tiny, epochs=3), tmp_path / "out"
    command = mlptrain("sweep", str(spec), "--out", str(out), "--quiet", "--workers", "1", "--threads", "1")
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for_owner(out, first)
        with stopped(first):
            second = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
        out_text, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 2 and second.stdout == ""
    lines = second.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"sweep: 2 init_range x 1 seed = 2 trials in {out}; "), lines
    in_use_line(second.stderr, "sweep directory", out, first.pid,
                "wait for that sweep to finish (or stop it), then run the same command again")
    assert first.returncode == 0, err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == ["complete", "complete"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["results.csv", "results.jsonl", "spec.yaml",
                                                             "summary.csv", "summary.md", "sweep.json",
                                                             *[r["trial"] for r in rows]])


# --- one trial run twice at once, as a Dask retry would --------------------------------------------------

TRIAL_CHILD = r"""
import json, pickle, sys
from mlptrain.sweep.trial import run_trial

with open(sys.argv[1], "rb") as f:
    task = pickle.load(f)  # what Dask ships to a worker
print(json.dumps(run_trial(task)))
"""


def one_task(tmp_path: Path, tiny: Path, epochs: int) -> tuple[TrialTask, Path]:
    spec, sweep_dir = write_spec(tmp_path / "s.yaml", tiny, epochs), tmp_path / "sweep"
    sweep_dir.mkdir()
    plan = load_spec(spec)
    _, tasks = plan_tasks(plan, sweep_dir, {plan.trials[0].config.dataset: tiny}, 1, "mlptrain sweep s.yaml")
    pickled = tmp_path / "task.pickle"
    pickled.write_bytes(pickle.dumps(tasks[0]))
    return tasks[0], pickled


def test_the_same_trial_run_twice_at_once_has_one_writer(tmp_path: Path, tiny: Path) -> None:
    task, pickled = one_task(tmp_path, tiny, epochs=40)
    first = subprocess.Popen([sys.executable, "-c", TRIAL_CHILD, str(pickled)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for_owner(task.run_dir, first)
        with stopped(first):
            second = subprocess.run([sys.executable, "-c", TRIAL_CHILD, str(pickled)], capture_output=True,
                                    text=True, env=ENV, timeout=120)
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 0 and first.returncode == 0, (second.stderr, err)
    owned = json.loads(second.stdout)
    assert owned == {"trial": task.name, "status": "owned", "error": owned["error"]}
    assert owned["error"].startswith(
        f"run directory {task.run_dir} is in use by process {first.pid} on {HOST} ({task.command}, since ")
    assert owned["error"].endswith(" UTC); another copy of this trial is running it (a Dask retry?); its record is "
                                   "the result")
    record = json.loads(out)
    assert record["status"] == "complete" and record["epochs_run"] == 40
    assert sorted(p.name for p in task.run_dir.iterdir()) == RUN_FILES
    # A copy that starts after the first finished rereads its record: the same row, nothing rerun.
    mtime = (task.run_dir / "summary.json").stat().st_mtime_ns
    third = subprocess.run([sys.executable, "-c", TRIAL_CHILD, str(pickled)], capture_output=True, text=True,
                           env=ENV, timeout=120)
    assert third.returncode == 0 and json.loads(third.stdout) == record
    assert (task.run_dir / "summary.json").stat().st_mtime_ns == mtime


class TwiceAtOnce:
    """An executor that runs every trial twice, the second copy while the first holds the run directory
    (as Dask does when it thinks a worker is lost); ``owned_first`` picks whose record arrives first."""

    description = "each trial twice at once"

    def __init__(self, owned_first: bool) -> None:
        self.owned_first = owned_first
        self.seen: list[str] = []

    def __enter__(self) -> TwiceAtOnce:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, tasks: list[TrialTask], record) -> None:
        for task in tasks:
            inside, release = threading.Event(), threading.Event()

            def hold(task: TrialTask = task) -> bool:  # called between batches: wait there, lock held
                if (task.run_dir / "config.yaml").exists():
                    inside.set()
                    release.wait(30)
                return False

            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(run_trial, task, hold)
                assert inside.wait(30)
                second = run_trial(task)
                if self.owned_first:
                    record(second)
                release.set()
                record(first.result())
                if not self.owned_first:
                    record(second)
            self.seen += [second["status"], first.result()["status"]]


@pytest.mark.parametrize("owned_first", [True, False], ids=["owned-record-first", "owned-record-last"])
def test_a_sweep_whose_trials_run_twice_keeps_one_row_each(tmp_path: Path, tiny: Path, owned_first: bool) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, epochs=2)
    plan, out = load_spec(spec), tmp_path / "out"
    executor = TwiceAtOnce(owned_first)
    outcome = run_sweep(plan, out, spec.read_text(), {plan.trials[0].config.dataset: tiny}, executor, 1,
                        "mlptrain sweep s.yaml")
    assert executor.seen == ["owned", "complete"] * 2
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in rows] == [t.name for t in plan.trials] and {r["status"] for r in rows} == {"complete"}
    assert outcome.owned == [] and [r["trial"] for r in outcome.records] == [r["trial"] for r in rows]
    for row in rows:
        assert sorted(p.name for p in (out / row["trial"]).iterdir()) == RUN_FILES


class LostResult:
    """The first copy's record never arrives (its worker was lost) and the retry finds it still running."""

    description = "a lost worker"

    def __init__(self, finishes: bool) -> None:
        self.finishes = finishes

    def __enter__(self) -> LostResult:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, tasks: list[TrialTask], record) -> None:
        for task in tasks:
            task.run_dir.mkdir(exist_ok=True)
            with acquire(task.run_dir, "run directory", "test", "the lost worker"):
                record(run_trial(task))  # the retry: owned
            if self.finishes:
                run_trial(task)  # the lost copy finishes, but its record goes nowhere


def test_a_trial_owned_by_a_lost_copy_is_reread_or_reported(tmp_path: Path, tiny: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_spec(tmp_path / "s.yaml", tiny, epochs=2)
    plan, data = load_spec(spec), {load_spec(spec).trials[0].config.dataset: tiny}
    finished = run_sweep(plan, tmp_path / "a", spec.read_text(), data, LostResult(True), 1, "sweep")
    assert [r["status"] for r in finished.records] == ["complete", "complete"] and finished.owned == []

    from mlptrain.cli import sweep as sweep_cli

    monkeypatch.setattr(sweep_cli, "_sweep_executor", lambda *args: LostResult(False))
    result = CliRunner().invoke(cli, ["sweep", str(spec), "--out", str(tmp_path / "b"), "--quiet"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[1].startswith(f"trial {plan.trials[0].name} not recorded: run directory {tmp_path / 'b'}/")
    assert f"is in use by process {os.getpid()} on {HOST} (the lost worker, since " in lines[1]
    assert lines[-1] == (f"Error: 2 of 2 trials were being run by another process and are not in "
                         f"{tmp_path / 'b' / 'results.csv'}; run the same command again once it has finished")
    assert (tmp_path / "b" / "results.jsonl").read_text() == ""


# --- the lock itself, in one process -------------------------------------------------------------------


def test_a_second_claim_names_the_owner_and_the_lock_file_goes_on_release(tmp_path: Path) -> None:
    with claim_new_dir(tmp_path / "d", "run directory", "an empty directory", "do something else", "cmd a") as held:
        text = json.loads((tmp_path / "d" / LOCK_FILE).read_text())
        assert text["pid"] == os.getpid() and text["host"] == HOST and text["command"] == "cmd a"
        with pytest.raises(RunDirInUse) as caught:  # flock: two opens in one process exclude each other too
            acquire(tmp_path / "d", "run directory", "do something else")
        assert caught.value.exit_code == 2 and caught.value.pid == os.getpid()
        assert str(caught.value) == (f"run directory {tmp_path / 'd'} is in use by process {os.getpid()} on {HOST} "
                                     f"(cmd a, since {text['since']}); do something else")
        (tmp_path / "d" / "config.yaml").write_text("x: 1\n")
        with pytest.raises(RunDirInUse):  # not "already exists": it is in use, and the message says by whom
            claim_new_dir(tmp_path / "d", "run directory", "an empty directory", "hint")
        assert held.fd is not None
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["config.yaml"]
    with pytest.raises(ConfigError, match="already exists and is not an empty directory"):
        claim_new_dir(tmp_path / "d", "run directory", "an empty directory", "hint")


def test_an_owner_that_wrote_no_text_is_still_an_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "OWNER_WAIT_SECONDS", 0.05)
    with acquire(tmp_path, "run directory", "hint"):
        (tmp_path / LOCK_FILE).write_text("{not json")
        with pytest.raises(RunDirInUse, match=r"is in use by another process \(its \.lock does not say which\); hint"):
            acquire(tmp_path, "run directory", "hint")


def test_an_empty_directory_with_a_stale_lock_file_is_new(tmp_path: Path, tiny: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text('{"pid": 1, "host": "elsewhere"}\n')  # not held by anyone
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES


def test_a_lock_file_deleted_by_a_releasing_owner_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newcomer opened ``.lock``, then the owner deleted it and let go: the newcomer must lock a new file."""
    real_open, opened = lock._open, []

    def open_then_owner_releases(path: Path) -> int:
        fd = real_open(path)
        if not opened:
            path.unlink()  # what a releasing owner does between our open and our flock
        opened.append(os.fstat(fd).st_ino)
        return fd

    monkeypatch.setattr(lock, "_open", open_then_owner_releases)
    with acquire(tmp_path, "run directory", "hint") as held:
        assert len(opened) == 2 and os.fstat(held.fd).st_ino == (tmp_path / LOCK_FILE).stat().st_ino
        with pytest.raises(RunDirInUse):
            acquire(tmp_path, "run directory", "hint")


def test_auto_named_run_dirs_skip_a_name_another_fit_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.strftime
    monkeypatch.setattr(files.time, "strftime", lambda fmt, *t: "20261201-000000" if fmt == "%Y%m%d-%H%M%S"
                        else real(fmt, *t))
    with files.create_run_dir(None, "relu", "he", root=tmp_path) as first:
        assert first.directory == tmp_path / "20261201-000000-relu-he"
        with files.create_run_dir(None, "relu", "he", root=tmp_path) as second:
            assert second.directory == tmp_path / "20261201-000000-relu-he-2"


def test_a_file_system_without_locks_says_how_to_go_on(tmp_path: Path, tiny: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    args = ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert not (tmp_path / "run").exists()  # nothing half-made
    assert result.stderr == (
        f"Error: cannot lock {tmp_path / 'run' / LOCK_FILE}: No locks available (this file system does not support "
        "locks, e.g. NFS mounted with nolock); set MLPTRAIN_UNLOCKED=1 to run without them (then nothing stops two "
        "processes from writing one directory)\n")
    monkeypatch.setenv(lock.UNLOCKED_ENV, "1")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ("warning: run directories are not locked (MLPTRAIN_UNLOCKED is set); do not start two "
                             "processes on one directory\n")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == RUN_FILES


def test_without_fcntl_or_msvcrt_the_import_works_and_claims_do_not_lock(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['fcntl'] = sys.modules['msvcrt'] = None\n"
            "from pathlib import Path\n"
            "from mlptrain.runs import lock\n"
            "held = lock.claim_new_dir(Path(sys.argv[1]), 'run directory', 'empty', 'hint')\n"
            "again = lock.acquire(Path(sys.argv[1]), 'run directory', 'hint')\n"
            "print(lock.BACKEND, held.fd, again.fd, lock.unlocked_reason())\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True,
                          env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None None None this platform (linux) has neither fcntl nor msvcrt\n"
    assert list((tmp_path / "d").iterdir()) == []


def test_readers_ignore_the_lock_file_of_a_running_run(tmp_path: Path, tiny: Path) -> None:
    """inspect, eval and a sweep's check of leftovers see a run directory with ``.lock`` as they would without."""
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--epochs", "1", "--out", str(run)]
                              ).exit_code == 0
    with acquire(run, "run directory", "hint"):
        assert CliRunner().invoke(cli, ["inspect", str(run)]).exit_code == 0
        (run / "summary.json").rename(run / "summary.away")
        shown = CliRunner().invoke(cli, ["inspect", str(run)])
        assert shown.exit_code == 0
        assert f"status   incomplete: no summary.json (running now: process {os.getpid()} on {HOST})" in shown.stdout
        (run / "summary.away").rename(run / "summary.json")
        assert CliRunner().invoke(cli, ["eval", str(run), "--dataset", str(tiny)]).exit_code == 0
    task, _ = one_task(tmp_path, tiny, epochs=1)
    task.run_dir.mkdir()
    (task.run_dir / LOCK_FILE).write_text("stale")  # a copy killed just after locking
    (task.run_dir / ".config.yaml.abc123.tmp").write_text("half")
    record = run_trial(task)
    assert record["status"] == "complete", record
    assert sorted(p.name for p in task.run_dir.iterdir()) == RUN_FILES
    np.testing.assert_equal(len(load_run(task.run_dir).history), 1)


def test_a_held_lock_blocks_nothing_outside_its_directory(tmp_path: Path) -> None:
    with acquire(tmp_path, "run directory", "hint"):
        (tmp_path / "sub").mkdir()
        with acquire(tmp_path / "sub", "run directory", "hint"):
            pass
    assert not (tmp_path / LOCK_FILE).exists()
    with pytest.raises(RunDirError, match="cannot create the lock file"):
        acquire(tmp_path / "missing", "run directory", "hint")


def test_a_probe_holding_the_lock_for_an_instant_does_not_refuse_a_claim(tmp_path: Path) -> None:
    """``holder`` (another claim's look at a taken directory) locks for microseconds; a claim then waits it out."""
    import fcntl

    (tmp_path / LOCK_FILE).write_text("")
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.03, os.close, [fd]).start()
    with acquire(tmp_path, "run directory", "hint") as held:
        assert held.fd is not None


def test_a_dead_owners_text_is_not_reported_while_the_new_owner_writes_its_own(tmp_path: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with acquire(tmp_path, "run directory", "hint", "new owner") as held:
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(ended.stdout), "host": HOST}) + "\n")
        threading.Timer(0.05, lock._write_owner, [held.fd, "new owner"]).start()  # as just after its flock
        with pytest.raises(RunDirInUse) as caught:
            acquire(tmp_path, "run directory", "hint")
    assert caught.value.pid == os.getpid() and "(new owner, since " in str(caught.value)
