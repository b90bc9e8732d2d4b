"""Advice that follows the cause: one case per cause x activation, the init-check rules (init scale or
architecture), the seed's own symptom (shrinking weights), and the numbers behind each warning on screen."""

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
from mlptrain.train.advice import CAUSES, Context, Diagnosis, advise, explain, recommended_init
from mlptrain.train.causes import diagnose_epoch, diagnose_init
from mlptrain.train.diagnostics import (
    HealthWarning,
    LayerHealth,
    check_init,
    learning_warnings,
    unit_warnings,
    weight_warnings,
)

from synthetic import write_dataset

SIZES = (784, 256, 256, 10)
SCALE = Diagnosis("init-scale", {"found": "vanishing-signal", "gain": 1e-5, "recommended": "he-normal",
                                 "recommended_gain": 0.93})
# One diagnosis per cause, with the evidence its rule records.
EXAMPLES = {
    "init-scale": SCALE,
    "architecture": Diagnosis("architecture", {"found": "vanishing-gradients", "gain": 0.5,
                                               "recommended": "glorot-uniform", "recommended_gain": 0.6,
                                               "recommended_found": "vanishing-gradients", "hidden_layers": 8}),
    "learning-rate": Diagnosis("learning-rate", {"direction": "too large", "lr": 10.0, "epoch": 1, "layer": "hidden1",
                                                 "weight_growth": 5700.0, "growth_limit": 5.0}),
    "weight-decay": Diagnosis("weight-decay", {"layer": "hidden1", "weight_shrink": 12.0, "epoch": 1, "loss": 2.3,
                                               "decay_per_step": 0.05}),
    "inputs": Diagnosis("inputs", {"found": "inverted-inputs", "mean": 0.87, "std": 0.31, "border": 0.99,
                                   "brightest": 1.0, "constant": 0.085}),
    "unknown": Diagnosis("unknown", {"init_gain": 0.9, "weight_growth": 1.4, "loss_max": 2.4, "update_ratio": 0.3}),
}


def suggested_inits(text: str) -> set[str]:
    return set(re.findall(r"--init ([a-z-]+)", text))


def test_every_cause_has_an_example_and_a_rule() -> None:
    from mlptrain.train.causes import RULES

    assert set(EXAMPLES) == set(CAUSES) == set(RULES)


@pytest.mark.parametrize("cause", sorted(CAUSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_advice_never_suggests_the_runs_own_activation_or_the_other_familys_init(cause: str, activation: str) -> None:
    text = advise(EXAMPLES[cause], Context(activation, SIZES, 0.005, 0.05))
    assert text.startswith(f"cause: {cause} (")
    assert f"--activation {activation}" not in text and f"or {activation} " not in text, text
    own = recommended_init(ACTIVATIONS[activation].family)
    # Another family's init is offered only together with a switch to that family's units.
    other = suggested_inits(text) - {own}
    relu = recommended_init("relu")
    assert other <= {relu} and (not other or f"--activation relu with --init {relu}" in text), text


@pytest.mark.parametrize("activation", ["relu", "leaky-relu", "logistic", "tanh", "identity"])
def test_the_advice_follows_the_cause_not_the_warning(activation: str) -> None:
    ctx = Context(activation, SIZES, 0.005, 0.05)
    texts = {advise(d, ctx) for d in EXAMPLES.values()}
    assert len(texts) == len(EXAMPLES)  # each cause its own advice
    scale = advise(SCALE, ctx)
    assert "lower --lr" not in scale and f"--init {recommended_init(ACTIVATIONS[activation].family)}" in scale
    assert "lower --lr (e.g. 10x, to 1, or what lr-find suggests: mlptrain lr-find --out DIR)" in advise(
        EXAMPLES["learning-rate"], ctx)
    assert "lower --weight-decay (e.g. 100x, to 5e-05)" in advise(EXAMPLES["weight-decay"], ctx)
    assert "x -> 1 - x" in advise(EXAMPLES["inputs"], ctx)
    assert "does not decide" in advise(EXAMPLES["unknown"], ctx)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_advice_recommends_the_init_the_default_chooses(activation: str) -> None:
    chosen = default_init(build_config({"activation": activation})).init
    assert suggested_inits(advise(SCALE, Context(activation, SIZES))) == {chosen}


def test_the_init_range_in_the_advice_is_the_recommended_inits_for_the_first_layer() -> None:
    assert "an --init-range near 0.087 for 784 inputs" in advise(SCALE, Context("relu", SIZES))
    glorot = math.sqrt(6 / (784 + 256))
    assert f"an --init-range near {glorot:.2g} for 784 inputs" in advise(SCALE, Context("tanh", SIZES))
    assert advise(SCALE, Context("relu", SIZES, bias_init=-5.0)).endswith(", with --bias-init 0")


def test_explain_appends_the_cause_and_keeps_the_evidence() -> None:
    w = explain(HealthWarning("dead-units", 1, "hidden1", "90% dead"), EXAMPLES["learning-rate"],
                Context("relu", SIZES, lr=10.0))
    assert w.cause == "learning-rate" and w.evidence["weight_growth"] == 5700.0
    assert w.message.startswith("90% dead; cause: learning-rate (steps too large at lr 10: hidden1's weights grew "
                                "5700x in epoch 1 (healthy: under 5x)): lower --lr")
    assert json.loads(json.dumps(w.as_dict())) == w.as_dict()


def test_the_init_check_blames_the_scale_only_when_the_recommended_init_passes() -> None:
    found = ["vanishing-signal"]
    scale = diagnose_init(found, 1e-5, ("he-uniform", 0.93, []), 2, None)
    assert scale.cause == "init-scale" and scale.evidence["recommended_gain"] == 0.93
    deep = diagnose_init(found, 1e-5, ("glorot-uniform", 0.01, ["vanishing-signal"]), 12, None)
    assert deep.cause == "architecture" and deep.evidence["hidden_layers"] == 12
    inputs = Diagnosis("inputs", {"found": "constant-inputs"})
    assert diagnose_init(found, 0.0, ("he-uniform", 0.0, ["vanishing-signal"]), 2, inputs) is inputs


def test_a_cause_found_before_training_stays_the_cause_of_what_follows() -> None:
    assert diagnose_epoch(SCALE, [], 1e-5, 10, Context("relu", SIZES)) is SCALE


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
    rows, found = check_init(network, x, y)
    assert {w.cause for w in found} == {"init-scale"}
    rows[1].dead = 0.98  # as a stuck net's deepest layer after an epoch
    [dead] = unit_warnings(network, rows[:2] + rows[-1:], 1)
    earlier = Diagnosis(found[0].cause, found[0].evidence)
    dead = explain(dead, diagnose_epoch(earlier, [], 1e-5, 3, Context("leaky-relu", (64, 32, 3))),
                   Context("leaky-relu", (64, 32, 3)))
    assert dead.code == "dead-units" and "leaky-relu" not in dead.message and "lower --lr" not in dead.message
    assert "cause: init-scale (vanishing-signal, " in dead.message and "at the init check" in dead.message


def test_not_learning_prints_the_threshold_it_used() -> None:
    [w] = learning_warnings(1.983, 10, 2, 10)
    assert "the training loss is 1.983, above 1.957 (0.85 x log(10); log(10) = 2.303" in w.message
    assert learning_warnings(1.95, 10, 2, 10) == []


def rows_with(weight_rms: list[float]) -> list[LayerHealth]:
    return [LayerHealth(f"hidden{i + 1}", 0, 0, 0, 0, 0, 0, 0, w, 0) for i, w in enumerate(weight_rms)]


def test_shrinking_weights_needs_a_shrink_and_a_loss_near_log_c() -> None:
    init = [{"weight_rms": 0.00577}, {"weight_rms": 0.00577}]
    [w] = weight_warnings(rows_with([0.00196, 0.00197]), init, 2.302, 10, 1)
    assert w.code == "shrinking-weights" and "fell 2.9x or more in 2 of 2 layers" in w.message
    assert "hidden1: 0.00577 at init, 0.00196 now" in w.message
    assert weight_warnings(rows_with([0.00196, 0.00197]), init, 0.3, 10, 1) == []  # learning: decay is fine
    assert weight_warnings(rows_with([0.0050, 0.0057]), init, 2.302, 10, 1) == []  # frozen, not shrinking


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
    summary = json.loads((run / "summary.json").read_text())
    assert {w["cause"] for w in summary["warnings"]} == {"init-scale"}  # the decay only finishes what the init began
    frozen = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(tmp_path / "frozen")])
    assert "shrinking-weights" not in frozen.stderr and "not-learning" in frozen.stderr


def test_every_warning_of_a_stuck_run_says_the_same_init(tiny: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(tiny), *STUCK, "--out", str(tmp_path / "run")])
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) >= 3 and all("cause: init-scale (" in line and "--init he-normal" in line for line in lines)
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
