"""fit --resume RUN --epochs N on a finished run: trained on in place, equal to a run started with --epochs N."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli

from synthetic import write_dataset

ARGS = ["--hidden", "16", "--val-size", "30", "--batch-size", "32", "--quiet", "--threads", "1"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def fit(tiny: Path, *args: str):
    return CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *ARGS, *args])


def history_and_weights(run: Path) -> tuple[list[dict], dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with np.load(run / "weights.npz") as npz:
        weights = {k: npz[k] for k in npz.files}
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows], weights


@pytest.mark.parametrize("extra", [[], ["--optimizer", "adam", "--lr", "0.01", "--dropout", "0.2"],
                                   ["--lr-schedule", "step", "--lr-step", "2", "--patience", "10"]])
def test_a_finished_run_trained_on_equals_a_run_started_with_more_epochs(tiny: Path, tmp_path: Path,
                                                                         extra: list[str]) -> None:
    assert fit(tiny, "--epochs", "5", *extra, "--out", str(tmp_path / "whole")).exit_code == 0
    short = tmp_path / "short"
    assert fit(tiny, "--epochs", "2", *extra, "--out", str(short)).exit_code == 0
    assert (short / "state.npz").exists() and not (short / "checkpoint.npz").exists()
    result = CliRunner().invoke(cli, ["fit", "--resume", str(short), "--epochs", "5", *extra, "--quiet"])
    assert result.exit_code == 0, result.output
    (whole_rows, whole_w), (short_rows, short_w) = history_and_weights(tmp_path / "whole"), history_and_weights(short)
    assert short_rows == whole_rows and len(short_rows) == 5
    for key in whole_w:
        np.testing.assert_array_equal(whole_w[key], short_w[key])
    summary = json.loads((short / "summary.json").read_text())
    assert summary["epochs_run"] == 5 and summary["config"]["epochs"] == 5 and summary["resumed"] is True
    assert "epochs: 5" in (short / "config.yaml").read_text()


def test_what_cannot_be_trained_on_is_refused_with_the_reason(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert fit(tiny, "--epochs", "2", "--out", str(run)).exit_code == 0
    cases = [
        ([], "is already complete (2 epochs); to train it on, give more --epochs"),
        (["--epochs", "2"], "is already complete (2 epochs)"),
        (["--epochs", "1"], "has already run 2 epochs; give --epochs above 2"),
        (["--epochs", "4", "--lr", "0.2"], "can only be trained on for more --epochs; " + str(run)),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["fit", "--resume", str(run), *args])
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
    cosine = tmp_path / "cosine"
    assert fit(tiny, "--epochs", "2", "--lr-schedule", "cosine", "--out", str(cosine)).exit_code == 0
    result = CliRunner().invoke(cli, ["fit", "--resume", str(cosine), "--epochs", "4"])
    assert result.exit_code == 2 and "cosine schedule's learning rates depend on the number of epochs" in result.stderr
    (run / "state.npz").unlink()
    result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", "4"])
    assert result.exit_code == 2 and "has no state.npz" in result.stderr
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2  # refusals change nothing


def test_an_early_stopped_run_is_not_trained_on(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert fit(tiny, "--epochs", "30", "--patience", "1", "--min-delta", "0.5", "--out", str(run)).exit_code == 0
    assert json.loads((run / "summary.json").read_text())["stop_reason"].startswith("early stopping")
    result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", "40"])
    assert result.exit_code == 2 and "stopped early" in result.stderr
