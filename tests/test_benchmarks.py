"""benchmarks/ab.py, the in-process A/B of the training step against a git revision (a smoke test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import write_dataset

ROOT = Path(__file__).resolve().parent.parent


NEEDS_GIT = pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None,
                               reason="needs a git checkout: ab.py compares against a revision of it")


@NEEDS_GIT
def test_ab_against_head_runs_and_reports_the_paired_ratio(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", n_train=600, n_classes=3)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ab.py"), "HEAD", "--rounds", "2", "--burst", "2",
         "--hidden", "8", "--threads", "1", "--data", str(data)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "paired median (this tree ÷ HEAD):" in done.stdout
    assert "bit for bit equal:" in done.stdout


@NEEDS_GIT
def test_ab_names_a_revision_git_does_not_know(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ab.py"), "no-such-revision-xyz"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "git archive no-such-revision-xyz failed" in done.stderr
