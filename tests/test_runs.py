"""mlptrain runs and compare: the runs table from summaries, filters and sorting, damaged runs, runs side by side."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.runs.table import find_runs

from synthetic import write_dataset

FIT_FAST = ["--hidden", "16", "--epochs", "2", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/relu (3 epochs), runs/logistic (logistic, tiny uniform init), and a sweep of 2 trials."""
    root = tmp_path_factory.mktemp("runs")
    tiny = write_dataset(root / "tiny")
    runner = CliRunner()
    logistic = ["--activation", "logistic", "--init-range", "0.01"]
    for name, extra in (("relu", ["--epochs", "3"]), ("logistic", logistic)):
        out = root / "runs" / name
        result = runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT_FAST, *extra, "--out", str(out)])
        assert result.exit_code == 0, result.output
    spec = {"base": {"dataset": str(tiny), "hidden": [8], "epochs": 1, "val_size": 30, "batch_size": 32},
            "grid": {"lr": [0.05, 0.1]}}
    (root / "spec.yaml").write_text(json.dumps(spec))
    result = runner.invoke(cli, ["sweep", str(root / "spec.yaml"), "--out", str(root / "runs" / "sw"), "--quiet",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    return root


def runs_json(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["runs", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_lists_every_run_and_the_sweep_trials(made: Path) -> None:
    rows = runs_json(str(made / "runs"))
    assert [r["name"] for r in rows] == ["logistic", "relu", "sw/lr=0.05,seed=0", "sw/lr=0.1,seed=0"]
    relu = rows[1]
    summary = json.loads((made / "runs" / "relu" / "summary.json").read_text())
    assert relu["status"] == "complete" and relu["epochs"] == 3 and relu["net"] == "16"
    assert relu["test_acc"] == summary["test"]["accuracy"] and relu["val_acc"] == summary["best"]["val_acc"]
    assert rows[0]["init"] == "uniform r=0.01" and rows[0]["warnings"]  # the tiny logistic init is flagged
    assert [r["name"] for r in runs_json(str(made / "runs"), "--no-trials")] == ["logistic", "relu"]


def test_runs_table_sort_where_and_csv(made: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", str(made / "runs"), "--sort", "test_acc", "-r", "--where",
                                      "activation=relu", "--where", "lr=0.1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["run", "status", "data"]
    assert [line.split()[0] for line in lines[1:]] == ["relu", "sw/lr=0.1,seed=0"] or \
        [line.split()[0] for line in lines[1:]] == ["sw/lr=0.1,seed=0", "relu"]
    accuracies = [float(line.split()[9].rstrip("%")) for line in lines[1:]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [r["name"] for r in runs_json(str(made / "runs"), "--where", "epochs=1")] == [
        "sw/lr=0.05,seed=0", "sw/lr=0.1,seed=0"]
    csv_out = CliRunner().invoke(cli, ["runs", str(made / "runs"), "--csv", "--sort", "lr"]).output
    table = list(csv.DictReader(io.StringIO(csv_out)))
    assert [row["lr"] for row in table] == ["0.05", "0.1", "0.1", "0.1"]


def test_runs_unknown_key_is_one_line_listing_the_keys(made: Path) -> None:
    for args in (["--where", "colour=red"], ["--sort", "colour"]):
        result = CliRunner().invoke(cli, ["runs", str(made / "runs"), *args])
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "unknown key 'colour'" in result.output
        assert "test_acc" in result.output and "config key" in result.output
    result = CliRunner().invoke(cli, ["runs", str(made / "runs"), "--where", "activation"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_damaged_summary_is_listed_as_unreadable_and_the_others_still_are(made: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(made / "runs", root)
    (root / "relu" / "summary.json").write_text('{"status": "complete", "config": {')  # truncated
    edited = json.loads((root / "logistic" / "summary.json").read_text())
    del edited["config"]
    (root / "logistic" / "summary.json").write_text(json.dumps(edited))
    result = CliRunner().invoke(cli, ["runs", str(root)])
    assert result.exit_code == 0, result.output
    assert "relu: unreadable: summary.json is not JSON" in result.output
    assert "logistic: unreadable: summary.json: 'config' is missing" in result.output
    rows = runs_json(str(root))
    assert [r["status"] for r in rows] == ["unreadable", "unreadable", "complete", "complete"]


def test_running_interrupted_and_failed_runs(made: Path, tmp_path: Path) -> None:
    import shutil

    from mlptrain.runs.lock import acquire

    root = tmp_path / "runs"
    shutil.copytree(made / "runs", root)
    for name in ("relu", "logistic"):
        (root / name / "summary.json").unlink()  # as if cut before the end
    (root / "sw" / "results.jsonl").write_text(json.dumps(
        {"trial": "lr=0.05,seed=0", "status": "failed", "error": "boom"}) + "\n")
    (root / "sw" / "lr=0.05,seed=0" / "summary.json").unlink()
    with acquire(root / "relu", "run directory", "wait"):
        rows = {r["name"]: r for r in find_runs([root])}
    assert rows["relu"]["status"] == "running" and rows["relu"]["pid"] == os.getpid()
    assert rows["relu"]["epochs"] == 3 and rows["relu"]["val_acc"] is not None  # from metrics.jsonl
    assert rows["logistic"]["status"] == "interrupted"
    assert rows["sw/lr=0.05,seed=0"]["status"] == "failed" and rows["sw/lr=0.05,seed=0"]["error"] == "boom"


def test_runs_without_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 2 and "mlptrain runs DIR" in result.output
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(cli, ["runs", "file"])
    assert result.exit_code == 2 and "is not a directory" in result.output


def write_fake_runs(root: Path, n: int, template: Path) -> None:
    """``n`` finished runs made by copying one real run's small files (no weights: runs never reads them)."""
    files = {name: (template / name).read_bytes() for name in ("config.yaml", "summary.json", "metrics.jsonl")}
    for i in range(n):
        run = root / f"run-{i:04d}"
        run.mkdir(parents=True)
        for name, data in files.items():
            (run / name).write_bytes(data)


def test_runs_reads_a_thousand_runs(made: Path, tmp_path: Path) -> None:
    """1,000 runs are listed; the time is printed for docs/performance notes, not asserted (shared machines)."""
    write_fake_runs(tmp_path / "many", 1000, made / "runs" / "relu")
    started = time.perf_counter()
    rows = find_runs([tmp_path / "many"])
    seconds = time.perf_counter() - started
    assert len(rows) == 1000 and {r["status"] for r in rows} == {"complete"}
    print(f"\nmlptrain runs: 1000 runs read in {seconds:.3f} s")
    command = [sys.executable, "-m", "mlptrain", "runs", str(tmp_path / "many")]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(f"mlptrain runs (whole command, Python start included): {time.perf_counter() - started:.3f} s")
    assert len(out.splitlines()) == 1001


# --- compare ----------------------------------------------------------------------------------


def test_compare_shows_only_the_differing_keys_results_and_warnings(made: Path, tmp_path: Path) -> None:
    runs = made / "runs"
    result = CliRunner().invoke(cli, ["compare", str(runs / "relu"), str(runs / "logistic"),
                                      "--plot", str(tmp_path / "cmp.png")])
    assert result.exit_code == 0, result.output
    config_rows = result.output.split("\n\nresult")[0].splitlines()[1:]
    assert [row.split()[0] for row in config_rows] == ["activation", "init", "init_range", "epochs"]
    assert config_rows[0].split() == ["activation", "relu", "logistic"]
    summary = json.loads((runs / "relu" / "summary.json").read_text())
    assert f"{summary['test']['accuracy']:.2%}" in result.output.split("test acc")[1].splitlines()[0]
    assert "warnings of relu: none" in result.output
    assert "warnings of logistic:\n  vanishing-signal (init check):" in result.output
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_refuses_what_is_not_a_run(made: Path) -> None:
    runs = made / "runs"
    for other, says in ((runs, "is not a run directory (it has no config.yaml)"),
                        (runs / "sw", "is a sweep directory, not a run"),
                        (runs / "missing", "does not exist")):
        result = CliRunner().invoke(cli, ["compare", str(runs / "relu"), str(other)])
        assert result.exit_code == 1 and says in result.output and result.output.count("\n") == 1, result.output
    result = CliRunner().invoke(cli, ["compare", str(runs / "relu")])
    assert result.exit_code == 2 and "two or more" in result.output
