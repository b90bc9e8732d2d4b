"""benchmarks/ab.py, the in-process A/B of the training step against a git revision (smoke tests)."""

from __future__ import annotations

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
