"""Training-health diagnostics: each warning from a constructed case, none on a healthy run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY, get_initializer
from mlptrain.nn.network import init_network
from mlptrain.train.diagnostics import (
    check_init,
    gradient_warnings,
    layer_health,
    learning_warnings,
    output_warnings,
    signal_warnings,
    unit_warnings,
)

from synthetic import write_dataset


def net_and_probe(activation: str = "relu", init: str = "he-normal", sizes=(64, 32, 32, 3), r=None, seed=0):
    rng = np.random.default_rng(seed)
    net = init_network(list(sizes), activation, get_initializer(init), rng, init_range=r)
    x = rng.random((200, sizes[0]), dtype=np.float32)
    return net, x, rng.integers(0, sizes[-1], 200)


def codes(warnings) -> set[str]:
    return {w.code for w in warnings}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_default_inits_pass_the_init_check(activation: str) -> None:
    init = DEFAULT_INIT_FOR_FAMILY[ACTIVATIONS[activation].family]
    _, warnings = check_init(*net_and_probe(activation, init))
    assert warnings == []


def test_tiny_relu_init_is_a_vanishing_signal() -> None:
    net, x, y = net_and_probe(init="uniform", r=1e-4)
    _, warnings = check_init(net, x, y)
    assert codes(warnings) == {"vanishing-signal"}
    assert "--init he-normal, or an --init-range near 0.31 for 64 inputs" in warnings[0].message
    assert warnings[0].cause == "init-scale" and warnings[0].evidence["recommended"] == "he-normal"


def test_huge_relu_init_is_an_exploding_signal() -> None:
    _, warnings = check_init(*net_and_probe(init="uniform", r=2.0))
    assert "exploding-signal" in codes(warnings)


def test_large_logistic_init_saturates_rather_than_explodes() -> None:
    net, x, y = net_and_probe("logistic", "uniform", r=3.0)
    rows, warnings = check_init(net, x, y)
    assert "saturated-units" in codes(warnings) and "exploding-signal" not in codes(warnings)
    assert rows[0].saturated > 0.5


def test_negative_biases_kill_relu_units() -> None:
    net, x, y = net_and_probe()
    net.biases[1][...] = -100.0
    rows, warnings = check_init(net, x, y)
    assert rows[1].dead == 1.0 and [(w.code, w.layer) for w in unit_warnings(net, rows, 0)] == [
        ("dead-units", "hidden2")]


def test_constant_logits_are_input_ignored_and_collapsed() -> None:
    logits = np.tile(np.array([0.1, 0.3, 0.2], np.float32), (100, 1))
    assert codes(output_warnings(logits, 1)) == {"input-ignored", "collapsed-predictions"}
    varied = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    assert output_warnings(varied, 1) == []


def test_deep_logistic_net_has_vanishing_gradients() -> None:
    net, x, y = net_and_probe("logistic", "uniform", sizes=(64, 32, 32, 32, 32, 3), r=0.05)
    rows, _ = layer_health(net, x, y)
    assert codes(gradient_warnings(rows, 0)) == {"vanishing-gradients"}


def test_not_learning_at_the_check_epoch_only() -> None:
    assert codes(learning_warnings(2.2, 10, 2, 10)) == {"not-learning"}
    assert learning_warnings(2.2, 10, 3, 10) == [] and learning_warnings(0.5, 10, 2, 10) == []
    assert codes(learning_warnings(1.0, 3, 1, 1)) == {"not-learning"}  # a one-epoch run checks epoch 1


def test_trained_output_layer_may_amplify_but_hidden_layers_are_still_checked() -> None:
    net, x, y = net_and_probe()
    rows, _ = layer_health(net, x, y)
    rows[-1].gain = 1000.0  # confident logits after training
    assert signal_warnings(net, rows, epoch=3) == []
    assert codes(signal_warnings(net, rows, epoch=0)) == {"exploding-signal"}
    rows[0].gain = 1e-3
    assert codes(signal_warnings(net, rows, epoch=3)) == {"vanishing-signal"}


# --- through the CLI ---------------------------------------------------------------------


FIT = ["--hidden", "16", "--epochs", "3", "--val-size", "30", "--batch-size", "32", "--quiet"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


def test_healthy_run_has_no_warnings_and_records_layer_health(tiny: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--lr", "0.1", "--out",
                                      str(tmp_path / "run"), "--strict"])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["warnings"] == [] and [r["layer"] for r in summary["init_health"]] == ["hidden1", "logits"]
    layers = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["layers"]
    assert set(layers[0]) >= {"dead", "saturated", "act_mean", "act_std", "grad_rms", "weight_rms", "update_ratio"}


def test_tiny_init_warns_on_stderr_in_summary_and_fails_strict(tiny: Path, tmp_path: Path) -> None:
    args = ["fit", "--dataset", str(tiny), *FIT, "--hidden", "16,16,16", "--init-range", "1e-4", "--out"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "run"), "-v"])
    assert result.exit_code == 0, result.output
    assert "init check (probe batch" in result.stderr and "total gain input -> logits" in result.stderr
    assert "warning: vanishing-signal: the signal shrinks" in result.stderr
    assert "warning: input-ignored:" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    found = {w["code"] for w in summary["warnings"]}
    assert {"vanishing-signal", "input-ignored", "collapsed-predictions", "not-learning"} <= found
    assert all(set(w) == {"code", "epoch", "layer", "message", "cleared", "cause", "evidence"}
               for w in summary["warnings"])
    assert {w["cause"] for w in summary["warnings"]} == {"init-scale"}
    strict = CliRunner().invoke(cli, [*args, str(tmp_path / "run2"), "--strict"])
    assert strict.exit_code == 3 and "--strict: the run raised" in strict.stderr
    assert (tmp_path / "run2" / "summary.json").exists()  # the gate fails after everything is written


def test_huge_lr_diverges_cleanly_and_keeps_the_last_good_weights(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["fit", "--dataset", str(tiny), "--hidden", "16", "--epochs", "4", "--val-size", "30", "--quiet",
            "--activation", "identity", "--lr", "10", "--momentum", "0.99", "--epochs", "30", "--out", str(run)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "Error: diverged in epoch" in result.stderr and "lower --lr" in result.stderr
    assert "warning: diverged:" in result.stderr and "Traceback" not in result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["test"] is None
    assert summary["warnings"][-1]["code"] == "diverged" and summary["warnings"][-1]["cause"] == "learning-rate"
    assert summary["warnings"][-1]["evidence"]["diverged"].startswith("the ")  # what went NaN or inf, and when
    if summary["epochs_run"]:  # diverged after a good epoch: its weights are kept and finite
        with np.load(run / "weights.npz") as npz:
            assert all(np.isfinite(npz[k]).all() for k in npz.files if k.startswith(("W", "b")))
    else:
        assert not (run / "weights.npz").exists()


# --- inspect and plot ---------------------------------------------------------------------


def test_inspect_reports_config_outcome_warnings_and_layer_health(tiny: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--hidden", "16,16", "--init-range", "1e-4",
                        "--out", str(run)])
    result = runner.invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "status   complete: completed all 3 epochs" in out
    assert "network  16-16 relu, init uniform r=0.0001" in out
    assert "vanishing-signal (init check" in out and "input-ignored (epoch 1" in out
    assert out.count("\n    3 ") == 1  # one row per epoch; epoch 3 is the last
    assert "hidden1:   dead satur." in out and "hidden2:" in out and "logits:" in out


def test_inspect_an_unfinished_run_and_a_missing_one(tmp_path: Path) -> None:
    run = tmp_path / "cut"
    run.mkdir()
    (run / "config.yaml").write_text("dataset: mnist\nhidden: [8]\nactivation: relu\ninit: he-normal\n")
    result = CliRunner().invoke(cli, ["inspect", str(run)])
    assert result.exit_code == 0 and "incomplete: no summary.json" in result.output
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_writes_valid_pngs_and_a_comparison(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    for name, extra in (("a", []), ("b", ["--activation", "logistic"])):
        assert runner.invoke(cli, ["fit", "--dataset", str(tiny), *FIT, "--out", str(tmp_path / name), *extra]
                             ).exit_code == 0
    runner.invoke(cli, ["eval", str(tmp_path / "a")])
    monkeypatch.chdir(tmp_path)  # where the comparison goes without --out
    result = runner.invoke(cli, ["plot", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    for path in [tmp_path / "a" / "curves.png", tmp_path / "a" / "health.png", tmp_path / "a" / "confusion.png",
                 tmp_path / "b" / "curves.png", tmp_path / "comparison.png"]:
        assert _is_png(path), path
    assert not (tmp_path / "b" / "confusion.png").exists()  # b was never evaluated
    for png in tmp_path.rglob("*.png"):
        png.unlink()
    result = runner.invoke(cli, ["plot", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0 and result.output == f"wrote {tmp_path / 'c.png'}\n", result.output
    assert _is_png(tmp_path / "c.png") and list(tmp_path.rglob("*.png")) == [tmp_path / "c.png"]  # only what --out asks


def test_plot_refuses_a_run_without_epochs(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "config.yaml").write_text("dataset: mnist\n")
    result = CliRunner().invoke(cli, ["plot", str(run)])
    assert result.exit_code == 1 and "no finished epoch" in result.stderr
