"""fit --resume RUN --epochs N on a finished run: trained on in place, equal to a run started with --epochs N."""

from __future__ import annotations

import importlib
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


class Killed(Exception):
    """The process dying at one step of a run's end (the steps before it are on disk, the rest are not)."""


def crash_at(monkeypatch: pytest.MonkeyPatch, target: str, after: int = 0) -> None:
    """Make ``target`` (``module.name``) raise Killed from its ``after + 1``-th call on."""
    module, name = target.rsplit(".", 1)
    real, calls = getattr(importlib.import_module(module), name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            raise Killed(target)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, dying)


# The end of a run, in order: the weights, the summary, the last checkpoint kept as state.npz.
END_STEPS = ["mlptrain.experiment.save_weights", "mlptrain.experiment.write_json",
             "mlptrain.experiment.keep_final_state"]


@pytest.mark.parametrize("extending", [False, True], ids=["first-run", "extension"])
@pytest.mark.parametrize("step", END_STEPS, ids=lambda s: s.rsplit(".", 1)[1])
def test_a_run_killed_at_any_step_of_its_end_can_be_finished_and_trained_on(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, extending: bool) -> None:
    assert fit(tiny, "--epochs", "5", "--out", str(tmp_path / "whole")).exit_code == 0
    run = tmp_path / "run"
    if extending:  # killed at the end of `--resume RUN --epochs 3`, whose state.npz is still epoch 2's
        assert fit(tiny, "--epochs", "2", "--out", str(run)).exit_code == 0
    with monkeypatch.context() as patch:
        crash_at(patch, step)
        args = ["--resume", str(run), "--epochs", "3"] if extending else ["--epochs", "3", "--out", str(run)]
        assert isinstance(fit(tiny, *args).exception, Killed)
    third = (run / "metrics.jsonl").read_text().splitlines()[2]  # with its time: a retrained epoch differs
    again = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--quiet"])
    assert again.exit_code == 0 or "is already complete (3 epochs)" in again.stderr, again.output
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 3
    result = CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    (whole_rows, whole_w), (rows, weights) = history_and_weights(tmp_path / "whole"), history_and_weights(run)
    assert rows == whole_rows and (run / "metrics.jsonl").read_text().splitlines()[2] == third
    for key in whole_w:
        np.testing.assert_array_equal(whole_w[key], weights[key])
    assert (run / "state.npz").exists() and not (run / "checkpoint.npz").exists()


def test_a_run_killed_while_being_reopened_is_finished_by_resume_then_trained_on(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fit(tiny, "--epochs", "5", "--out", str(tmp_path / "whole")).exit_code == 0
    run = tmp_path / "run"
    assert fit(tiny, "--epochs", "2", "--out", str(run)).exit_code == 0
    with monkeypatch.context() as patch:
        # The reopening's last step, the new config.yaml's rename (its second): the summary is gone already.
        crash_at(patch, "os.replace", after=1)
        assert isinstance(fit(tiny, "--resume", str(run), "--epochs", "5").exception, Killed)
    assert not (run / "summary.json").exists()
    assert CliRunner().invoke(cli, ["fit", "--resume", str(run), "--quiet"]).exit_code == 0
    assert CliRunner().invoke(cli, ["fit", "--resume", str(run), "--epochs", "5", "--quiet"]).exit_code == 0
    (whole_rows, whole_w), (rows, weights) = history_and_weights(tmp_path / "whole"), history_and_weights(run)
    assert rows == whole_rows
    for key in whole_w:
        np.testing.assert_array_equal(whole_w[key], weights[key])


# Warnings at the init check, at epoch 1 (one cleared later) and not-learning, checked after epoch 2.
UNHEALTHY = ["--init-range", "0.01", "--lr", "0.05"]


def warnings_and_weights(run: Path) -> tuple[list[dict], dict]:
    with np.load(run / "weights.npz") as npz:
        return json.loads((run / "summary.json").read_text())["warnings"], {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("first", [1, 2])
def test_a_run_trained_on_or_resumed_records_the_warnings_of_a_run_in_one_go(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: int) -> None:
    assert fit(tiny, "--epochs", "4", *UNHEALTHY, "--out", str(tmp_path / "whole")).exit_code == 0
    whole_warnings, whole_w = warnings_and_weights(tmp_path / "whole")
    assert {"not-learning", "vanishing-signal"} <= {w["code"] for w in whole_warnings}
    assert any(w["cleared"] for w in whole_warnings)  # the comparison covers `cleared` too
    extended, cut = tmp_path / "extended", tmp_path / "cut"
    assert fit(tiny, "--epochs", str(first), *UNHEALTHY, "--out", str(extended)).exit_code == 0
    assert CliRunner().invoke(cli, ["fit", "--resume", str(extended), "--epochs", "4", "--quiet"]).exit_code == 0
    with monkeypatch.context() as patch:
        crash_at(patch, "mlptrain.experiment.save_checkpoint", after=first)  # killed during epoch first + 1
        assert isinstance(fit(tiny, "--epochs", "4", *UNHEALTHY, "--out", str(cut)).exception, Killed)
    assert CliRunner().invoke(cli, ["fit", "--resume", str(cut), "--quiet"]).exit_code == 0
    for run in (extended, cut):
        warnings, weights = warnings_and_weights(run)
        assert warnings == whole_warnings, run.name
        for key in whole_w:
            np.testing.assert_array_equal(whole_w[key], weights[key])
