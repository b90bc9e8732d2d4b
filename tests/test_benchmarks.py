"""benchmarks/ab.py, the in-process A/B of the training step against a git revision (smoke tests)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import write_dataset

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None,
                                reason="needs a git checkout: ab.py compares against a revision of it")


def ab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ab.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_ab_against_head_runs_and_reports_the_paired_ratio(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", n_train=600, n_classes=3)
    done = ab("HEAD", "--rounds", "2", "--burst", "2", "--hidden", "8", "--threads", "1", "--data", str(data))
    assert done.returncode == 0, done.stderr
    assert "paired median (this tree ÷ HEAD):" in done.stdout
    assert "bit for bit equal:" in done.stdout


@pytest.mark.parametrize("case", ["unknown revision", "missing data", "burst longer than the data"])
def test_ab_mistakes_get_one_line_and_no_traceback(tmp_path: Path, case: str) -> None:
    small = str(write_dataset(tmp_path / "data", n_train=200, n_classes=3))
    args, expected = {
        "unknown revision": (["no-such-revision-xyz"], "git archive no-such-revision-xyz failed"),
        "missing data": (["HEAD", "--data", str(tmp_path / "none")], "ab.py: dataset"),
        "burst longer than the data": (["HEAD", "--burst", "2", "--hidden", "8", "--data", small], "lower --burst"),
    }[case]
    done = ab(*args)
    assert done.returncode != 0 and expected in done.stderr and "Traceback" not in done.stderr


def drift(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "drift.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_drift_runs_a_short_version_of_each_config_and_reports_drift_and_subnormals(tmp_path: Path) -> None:
    for name in ("mnist", "fashion-mnist"):
        write_dataset(tmp_path / "data" / name, n_train=300, n_classes=3)
    configs = []
    for name, optimizer in (("mnist", "adamw"), ("fashion-mnist", "sgd")):
        configs += ["--config", str(tmp_path / f"{name}.yaml")]
        (tmp_path / f"{name}.yaml").write_text(f"dataset: {name}\nhidden: [8]\noptimizer: {optimizer}\n"
                                               "lr: 0.01\nval_size: 50\nbatch_size: 16\ndropout: 0.2\n")
    done = drift(*configs, "--epochs", "4", "--threads", "1", "--quiet", "--data-root", str(tmp_path / "data"),
                 "--json", str(tmp_path / "drift.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("CPU: ") and "1 BLAS threads" in lines[0]
    for line, name in zip(lines[1:], ("mnist", "fashion-mnist")):
        assert line.startswith(f"{tmp_path / name}.yaml (4 epochs") and ", drift " in line
        assert "subnormals at the end: 0 of " in line and ", 0 in the parameters" in line
    results = json.loads((tmp_path / "drift.json").read_text())["results"]
    assert [len(r["seconds"]) for r in results] == [4, 4] and all(r["drift"] > 0 for r in results)


@pytest.mark.parametrize("args, expected", [(["--epochs", "3"], "--epochs must be at least 4"),
                                            (["--epochs", "4", "--data-root", "/nonexistent"], "drift.py: ")])
def test_drift_mistakes_get_one_line_and_no_traceback(args: list[str], expected: str) -> None:
    done = drift(*args, "--quiet")
    assert done.returncode != 0 and expected in done.stderr and "Traceback" not in done.stderr


def test_norm_benchmark_runs_and_reports_both_ratios(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", n_train=300, n_classes=3)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "norm.py"), "--rounds", "1", "--hidden", "8",
                           "--data", str(data)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "paired median (batch ÷ none):" in done.stdout and "paired median (layer ÷ none):" in done.stdout
