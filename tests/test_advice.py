"""Advice that follows the cause: one case per warning code x activation family, the seed's own symptom
(shrinking weights), and the numbers behind each warning on screen."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import build_config, default_init
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import DEFAULT_INIT_FOR_FAMILY, get_initializer
from mlptrain.nn.network import init_network
from mlptrain.train.advice import ADVICE, Context, advise, describe_cause
from mlptrain.train.diagnostics import (
    LayerHealth,
    check_init,
    context_for,
    layer_health,
    learning_warnings,
    unit_warnings,
    weight_warnings,
)

from synthetic import write_dataset

SIZES = (784, 256, 256, 10)
CAUSE = describe_cause("vanishing-signal", 1e-5, 0)
# The warnings that follow from a bad init scale when the init check found one.
FOLLOW_THE_SCALE = ("dead-units", "input-ignored", "collapsed-predictions", "not-learning", "shrinking-weights")


def suggested_inits(text: str) -> set[str]:
    return set(re.findall(r"--init ([a-z-]+)", text))


@pytest.mark.parametrize("code", sorted(ADVICE))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_advice_never_suggests_the_runs_own_activation_or_the_other_familys_init(code: str, activation: str) -> None:
    for cause in (None, CAUSE):
        text = advise(code, Context(activation, SIZES, 0.0, cause))
        assert f"--activation {activation}" not in text and f"or {activation} " not in text, text
        own = DEFAULT_INIT_FOR_FAMILY[ACTIVATIONS[activation].family]
        # Another family's init is offered only together with a switch to that family's units.
        other = suggested_inits(text) - {own}
        relu_init = DEFAULT_INIT_FOR_FAMILY["relu"]
        assert other <= {relu_init} and (not other or f"--activation relu with --init {relu_init}" in text), text


@pytest.mark.parametrize("code", FOLLOW_THE_SCALE + ("diverged",))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_with_an_init_scale_cause_the_advice_names_it_first(code: str, activation: str) -> None:
    cause = describe_cause("exploding-signal", 5.2e3, 0) if code == "diverged" else CAUSE
    text = advise(code, Context(activation, SIZES, 0.005, cause))
    assert "init scale" in text and cause in text and "lower --lr" not in text, text
    assert f"--init {DEFAULT_INIT_FOR_FAMILY[ACTIVATIONS[activation].family]}" in text


def test_without_a_cause_divergence_and_dead_units_point_at_the_step_size() -> None:
    assert advise("diverged", Context("relu", SIZES)).startswith("lower --lr")
    dead = advise("dead-units", Context("relu", SIZES))
    assert "lower --lr" in dead and "--activation leaky-relu or elu" in dead
    assert "--activation elu" in advise("dead-units", Context("leaky-relu", SIZES))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_advice_recommends_the_init_the_default_chooses(activation: str) -> None:
    chosen = default_init(build_config({"activation": activation})).init
    assert suggested_inits(advise("vanishing-signal", Context(activation, SIZES))) == {chosen}


def test_the_init_range_in_the_advice_is_the_recommended_inits_for_the_first_layer() -> None:
    assert "an --init-range near 0.087 for 784 inputs" in advise("vanishing-signal", Context("relu", SIZES))
    glorot = math.sqrt(6 / (784 + 256))
    assert f"an --init-range near {glorot:.2g} for 784 inputs" in advise("vanishing-signal", Context("tanh", SIZES))


def net(activation: str, init: str, sizes=(64, 32, 32, 32, 3), r=None, seed=0):
    rng = np.random.default_rng(seed)
    network = init_network(list(sizes), activation, get_initializer(init), rng, init_range=r)
    x = rng.random((200, sizes[0]), dtype=np.float32)
    return network, x, rng.integers(0, sizes[-1], 200)


def test_a_deep_logistic_net_gets_glorot_from_every_warning() -> None:
    _, warnings = check_init(*net("logistic", "uniform", r=0.01))
    assert {w.code for w in warnings} >= {"vanishing-signal", "vanishing-gradients"}
    for w in warnings:
        he = DEFAULT_INIT_FOR_FAMILY["relu"]
        assert "--init glorot-uniform" in w.message and f"--init {he}, or" not in w.message, w.message


def test_leaky_relu_dead_units_under_a_vanishing_signal_blame_the_scale() -> None:
    network, x, y = net("leaky-relu", "uniform", r=1e-4)
    rows, _ = layer_health(network, x, y)
    rows[1].dead = 0.98  # as a stuck net's deepest layer after an epoch
    ctx = context_for(network, 0.0, CAUSE)
    [dead] = unit_warnings(network, rows[:2] + rows[-1:], 1, ctx)
    assert dead.code == "dead-units" and "leaky-relu" not in dead.message and "lower --lr" not in dead.message
    assert "the cause is the init scale (vanishing-signal, 1e+05x at the init check)" in dead.message


def test_not_learning_prints_the_threshold_it_used() -> None:
    [w] = learning_warnings(1.983, 10, 2, 10, Context("relu", SIZES))
    assert "the training loss is 1.983, above 1.957 (0.85 x log(10); log(10) = 2.303" in w.message
    assert learning_warnings(1.95, 10, 2, 10, Context("relu", SIZES)) == []


def rows_with(weight_rms: list[float]) -> list[LayerHealth]:
    return [LayerHealth(f"hidden{i + 1}", 0, 0, 0, 0, 0, 0, 0, w, 0) for i, w in enumerate(weight_rms)]


def test_shrinking_weights_needs_a_shrink_and_a_loss_near_log_c() -> None:
    init = [{"weight_rms": 0.00577}, {"weight_rms": 0.00577}]
    ctx = Context("relu", (784, 256, 10), 0.005, CAUSE)
    [w] = weight_warnings(rows_with([0.00196, 0.00197]), init, 2.302, 10, 1, ctx)
    assert w.code == "shrinking-weights" and "fell 2.9x or more in 2 of 2 layers" in w.message
    assert "hidden1: 0.00577 at init, 0.00196 now" in w.message and "--weight-decay 0.005" in w.message
    assert weight_warnings(rows_with([0.00196, 0.00197]), init, 0.3, 10, 1, ctx) == []  # learning: decay is fine
    assert weight_warnings(rows_with([0.0050, 0.0057]), init, 2.302, 10, 1, ctx) == []  # frozen, not shrinking


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "tiny")


STUCK = ["--hidden", "16,16,16", "--init-range", "0.001", "--epochs", "3", "--val-size", "30", "--quiet"]


def test_the_seeds_symptom_with_weight_decay_warns_shrinking_weights(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "decay"
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--weight-decay", "0.3",
                                      "--batch-size", "16", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "warning: shrinking-weights: the weights shrink towards zero" in result.stderr
    frozen = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(tmp_path / "frozen")])
    assert "shrinking-weights" not in frozen.stderr and "not-learning" in frozen.stderr


def test_every_warning_of_a_stuck_run_says_the_same_init(tiny: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(tmp_path / "run")])
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) >= 3 and all("--init he-normal" in line for line in lines), lines
    assert not any("lower --lr" in line for line in lines), lines


def test_an_interrupted_run_shows_its_warnings_in_inspect(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(run)]).exit_code == 0
    (run / "summary.json").unlink()  # as if it had been stopped after its last epoch
    out = CliRunner().invoke(cli, ["inspect", str(run)]).output
    assert "warnings: (so far)" in out and "vanishing-signal (init check)" in out and "not-learning (epoch" in out
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    assert diagnostics["n_classes"] == 3 and [r["layer"] for r in diagnostics["init_health"]][-1] == "logits"


def test_inspect_shows_signal_and_gain_with_the_init_row(tiny: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--epochs", "12", "--out", str(run)])
    out = CliRunner().invoke(cli, ["inspect", str(run)]).output
    header = next(line for line in out.splitlines() if line.startswith("logits:"))
    assert header.split() == ["logits:", "dead", "satur.", "signal", "gain", "grad", "rms", "w", "rms", "upd/w"]
    rows = [line for line in out.split("logits:")[1].splitlines()[1:] if line.strip()]
    assert rows[0].split()[0] == "init" and rows[-1].split()[:2] == ["epoch", "12"]
    assert len({len(row) for row in rows}) == 1 and len(rows[0]) == len(header)  # columns line up, epoch 12 too
    assert "act std" not in out


def test_the_pictures_are_honest_about_a_stuck_run(tiny: Path, tmp_path: Path) -> None:
    from mlptrain.plots.run import curves_figure, health_figure
    from mlptrain.runs.report import load_run

    run = tmp_path / "run"
    CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(run)])
    record = load_run(run)
    loss_ax, acc_ax = curves_figure([record]).axes
    low, high = loss_ax.get_ylim()
    assert high / low >= 10 and acc_ax.get_ylim() == (0, 1)  # a loss flat at log(3) must look flat
    assert any(list(line.get_ydata()) == [math.log(3)] * 2 for line in loss_ax.get_lines())
    panels = {ax.get_title(): ax for ax in health_figure(record).axes}
    gain = panels["gain product from the input (the warnings' measure)"]
    assert gain.patches and gain.get_lines()[0].get_xdata()[0] == 0  # the band, and the init check as epoch 0
    assert not any("activation std" in title for title in panels)
