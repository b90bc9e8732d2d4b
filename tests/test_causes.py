"""The diagnosis names the right cause: a matrix of small runs, each made to fail one way, and the cause that
every warning of it must carry. Tiny nets on tiny synthetic data: the whole table trains in seconds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlptrain.config import build_config, default_init
from mlptrain.data.loading import load_dataset
from mlptrain.errors import DivergedError
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.train.advice import CAUSES, WARNING_CODES
from mlptrain.train.diagnostics import HealthWarning
from mlptrain.train.trainer import Trainer
from mlptrain.tune.dryrun import dry_run

from synthetic import make_images, write_dataset, write_images, write_strokes


def _faint(directory: Path) -> Path:
    """Strokes stored as 0-15 instead of 0-255, as scikit-learn's 8x8 digits (0-16) are."""
    write_strokes(directory)
    from mlptrain.data.idx import read_idx, write_idx

    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        write_idx(directory / name, read_idx(directory / name) // 16)
    return directory


def _constant(directory: Path) -> Path:
    """Only a 4x4 patch in the middle of 10x10 images varies: 84% of the pixels are always 0."""
    rng = np.random.default_rng(0)
    splits = []
    for n in (300, 100):
        labels = (np.arange(n) % 3).astype(np.uint8)
        images = np.zeros((n, 10, 10), np.uint8)
        images[:, 3:7, 3:7] = make_images(labels, (4, 4), 3, rng)
        splits.append((images, labels))
    return write_images(directory, *splits)


def _random_labels(directory: Path) -> Path:
    """Noise images (0-199: a dark border) whose labels have nothing to do with them."""
    rng = np.random.default_rng(0)
    splits = []
    for n in (300, 100):
        labels = rng.integers(0, 3, n).astype(np.uint8)
        splits.append((rng.integers(0, 200, (n, 8, 8)).astype(np.uint8), labels))
    return write_images(directory, *splits)


DATA: dict[str, Callable[[Path], Path]] = {
    "bands": write_dataset,  # faint class bands over strong noise (tests/synthetic.py)
    "strokes": write_strokes,  # light strokes on black, like MNIST
    "dark-on-light": lambda d: write_strokes(d, dark_on_light=True),
    "faint": _faint,
    "constant": _constant,
    "random-labels": _random_labels,
}


@dataclass(frozen=True)
class Scenario:
    """A run made to fail one way: its data, its settings, and the cause every warning must name."""

    name: str
    data: str
    settings: dict[str, Any]
    cause: str | None  # None: a healthy run, no warning at all
    codes: tuple[str, ...] = ()  # warnings it must raise (it may raise more, all with ``cause``)
    dry_run: bool = False  # fit --dry-run instead of training
    causes: dict[str, str] = field(default_factory=dict)  # code -> cause, where a run has two causes


BASE = {"hidden": [16], "epochs": 2, "val_size": 30, "batch_size": 32, "lr": 0.1}
HEALTHY_LR = {"logistic": {"lr": 0.5}}  # logistic units learn slowly: at 0.1, 20 steps leave the loss near log(3)

SCENARIOS = [
    # healthy: every activation at its default init
    *[Scenario(f"healthy {a}", "strokes", {"activation": a} | HEALTHY_LR.get(a, {}), None)
      for a in sorted(ACTIVATIONS)],
    Scenario("healthy adam", "bands", {"optimizer": "adam", "lr": 0.01}, None),
    # init-scale: the init check fails, the family's recommended init would not
    Scenario("relu U(±1e-4), 3 layers", "bands", {"hidden": [16, 16, 16], "init_range": 1e-4, "epochs": 3},
             "init-scale", ("vanishing-signal", "input-ignored", "collapsed-predictions", "not-learning")),
    Scenario("relu U(±3)", "bands", {"hidden": [32, 32], "init_range": 3.0}, "init-scale", ("exploding-signal",)),
    Scenario("logistic U(±0.001): the init, not the activation", "bands",
             {"activation": "logistic", "hidden": [16, 16, 16], "init_range": 0.001}, "init-scale",
             ("vanishing-signal", "vanishing-gradients")),
    Scenario("tanh U(±5) saturates", "bands", {"activation": "tanh", "init_range": 5.0}, "init-scale",
             ("saturated-units",)),
    Scenario("relu bias -5 kills units", "bands", {"bias_init": -5.0}, "init-scale", ("dead-units",)),
    Scenario("relu U(±1e-4) with decay: shrinking weights", "bands",
             {"hidden": [16, 16, 16], "init_range": 1e-4, "weight_decay": 0.3, "epochs": 3}, "init-scale",
             ("shrinking-weights",)),
    # architecture: the recommended init fails too
    Scenario("12 logistic layers at glorot", "bands", {"activation": "logistic", "hidden": [16] * 12},
             "architecture", ("vanishing-gradients",)),
    # learning-rate: too large after a clean init check
    Scenario("relu lr 10 kills units", "strokes", {"hidden": [32], "lr": 10.0}, "learning-rate",
             ("dead-units", "collapsed-predictions")),
    Scenario("logistic lr 3 saturates", "strokes", {"activation": "logistic", "hidden": [32, 32], "lr": 3.0},
             "learning-rate", ("saturated-units",)),
    Scenario("leaky-relu adam lr 1", "bands", {"activation": "leaky-relu", "optimizer": "adam", "lr": 1.0},
             "learning-rate", ("dead-units", "not-learning")),
    Scenario("tanh lr 3 saturates", "strokes", {"activation": "tanh", "hidden": [32, 32], "lr": 3.0},
             "learning-rate", ("saturated-units", "not-learning")),
    Scenario("identity lr 10 diverges", "bands", {"activation": "identity", "lr": 10.0, "momentum": 0.99,
                                                 "epochs": 30}, "learning-rate", ("diverged",)),
    Scenario("identity U(±2) diverges: the init", "bands", {"activation": "identity", "hidden": [32, 32],
                                                            "init_range": 2.0, "lr": 0.5, "epochs": 30},
             "init-scale", ("exploding-signal", "diverged")),
    # learning-rate: too small
    Scenario("softplus lr 1e-6: nothing moves", "strokes", {"activation": "softplus", "lr": 1e-6},
             "learning-rate", ("not-learning",)),
    # weight-decay
    Scenario("elu decay 1.0", "strokes", {"activation": "elu", "hidden": [16, 16], "init": "he-uniform",
                                          "weight_decay": 1.0, "epochs": 3}, "weight-decay",
             ("shrinking-weights", "not-learning")),
    # inputs
    Scenario("dark on light", "dark-on-light", {}, "inputs", ("inverted-inputs",)),
    Scenario("faint pixels", "faint", {}, "inputs", ("faint-inputs",)),
    Scenario("constant pixels", "constant", {}, "inputs", ("constant-inputs",)),
    # unknown
    Scenario("labels unrelated to the images", "random-labels", {"epochs": 2}, "unknown", ("not-learning",)),
    # the dry run's step
    Scenario("dry run at lr 10", "bands", {"hidden": [32], "lr": 10.0}, "learning-rate", ("rising-loss",),
             dry_run=True),
    Scenario("dry run on dark-on-light images", "dark-on-light", {"lr": 2.0}, "inputs",
             ("inverted-inputs", "rising-loss"), dry_run=True),
]


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("causes")
    return {name: make(root / name) for name, make in DATA.items()}


def run_scenario(scenario: Scenario, directory: Path) -> list[dict[str, Any]]:
    """Train (or dry-run) the scenario as ``fit`` would; the warnings it recorded."""
    config = default_init(build_config(BASE | scenario.settings | {"dataset": str(directory)}))
    data = load_dataset(directory, scenario.data)
    if scenario.dry_run:
        return dry_run(config, data).warnings
    trainer = Trainer(config, data)
    trainer.check_init()
    try:
        while not trainer.finished:
            trainer.run_epoch()
    except DivergedError as exc:  # as experiment.run_fit records it
        trainer.add_warning(HealthWarning("diverged", exc.epoch, None, str(exc), cause=exc.cause,
                                          evidence=exc.evidence))
    return trainer.progress.warnings


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_warning_names_the_scenarios_cause(scenario: Scenario, data_dirs: dict[str, Path]) -> None:
    warnings = run_scenario(scenario, data_dirs[scenario.data])
    found = {w["code"]: w["cause"] for w in warnings}
    assert set(scenario.codes) <= set(found), found
    expected = {code: scenario.causes.get(code, scenario.cause) for code in found}
    assert found == expected, [w["message"] for w in warnings]
    for w in warnings:  # the evidence is there, and the message says the cause with it
        assert w["evidence"] and f"cause: {w['cause']} (" in w["message"], w


def test_the_matrix_covers_every_cause_code_and_family() -> None:
    causes = {s.cause for s in SCENARIOS} | {c for s in SCENARIOS for c in s.causes.values()}
    assert causes - {None} == set(CAUSES)
    assert {code for s in SCENARIOS for code in s.codes} == set(WARNING_CODES)
    families = {ACTIVATIONS[s.settings.get("activation", "relu")].family for s in SCENARIOS if s.cause}
    assert families == {a.family for a in ACTIVATIONS.values()}


def test_a_run_whose_init_check_passed_is_never_told_the_init_scale(data_dirs: dict[str, Path]) -> None:
    for scenario in SCENARIOS:
        if scenario.cause in (None, "init-scale") or scenario.dry_run:
            continue
        warnings = run_scenario(scenario, data_dirs[scenario.data])
        assert "init-scale" not in {w["cause"] for w in warnings}, scenario.name


# --- the evidence, as a run records it --------------------------------------------------------


def test_loss_stats_count_the_spikes_over_the_running_median() -> None:
    from mlptrain.train.causes import SPIKE_FACTOR, SPIKE_WINDOW, loss_stats

    losses = np.full(4 * SPIKE_WINDOW, 0.5)
    losses[SPIKE_WINDOW + 5] = 0.5 * SPIKE_FACTOR * 1.01  # a spike
    losses[SPIKE_WINDOW + 9] = 0.5 * SPIKE_FACTOR * 0.99  # not quite
    losses[3] = 100.0  # in the first window: no median to compare with yet, but the largest loss
    assert loss_stats(losses, 3) == {"loss_max": 100.0, "loss_spikes": 1}
    losses[3 * SPIKE_WINDOW:] = 0.01
    losses[-1] = 0.5  # 50x the median, but a loss a healthy net has at its start: below log(3) / 2
    assert loss_stats(losses, 3)["loss_spikes"] == 1
    assert loss_stats(np.array([2.3, 2.2]), 10)["loss_spikes"] == 0


def test_epoch_evidence_reads_growth_shrink_and_the_largest_batch_loss() -> None:
    from mlptrain.train.causes import epoch_evidence

    init = [{"layer": "hidden1", "weight_rms": 0.05}, {"layer": "logits", "weight_rms": 0.1}]
    history = [
        {"epoch": 1, "train_loss": 2.0, "loss_max": 30.0,
         "layers": [{"layer": "hidden1", "weight_rms": 0.5, "update_ratio": 0.9},
                    {"layer": "logits", "weight_rms": 0.1, "update_ratio": 0.2}]},
        {"epoch": 2, "train_loss": 2.3,
         "layers": [{"layer": "hidden1", "weight_rms": 0.01, "update_ratio": 0.3},
                    {"layer": "logits", "weight_rms": 0.1, "update_ratio": 0.0}]},
    ]
    first, second = epoch_evidence(history, init)
    assert (first.growth, first.growth_layer, first.update_ratio, first.loss_max) == (10.0, "hidden1", 0.9, 30.0)
    assert (second.shrink, second.shrink_layer) == (5.0, "hidden1") and np.isnan(second.loss_max)  # an older run
    assert second.growth == 1.0 and second.growth_layer == "logits"  # against epoch 1, not the init


# --- through the CLI: fit, its dry run and inspect ------------------------------------------

FIT = ["--epochs", "2", "--val-size", "30", "--batch-size", "32", "--quiet"]


def test_dark_on_light_images_are_flagged_with_their_fix_in_fit_inspect_and_the_dry_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlptrain.cli import cli

    light = write_strokes(tmp_path / "light", dark_on_light=True)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(light), *FIT, "--out", str(run)])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if line.startswith("warning: inverted-inputs:")]
    assert "cause: inputs (the data check found inverted-inputs: " in line and "x -> 1 - x" in line
    summary = json.loads((run / "summary.json").read_text())
    [flagged] = [w for w in summary["warnings"] if w["code"] == "inverted-inputs"]
    assert flagged["cause"] == "inputs" and flagged["evidence"]["border"] > 0.5 and flagged["epoch"] == 0
    assert summary["inputs"]["border"] == pytest.approx(flagged["evidence"]["border"], rel=1e-3)
    assert json.loads((run / "diagnostics.json").read_text())["inputs"] == summary["inputs"]
    out = CliRunner().invoke(cli, ["inspect", str(run)]).output
    assert "inputs   pixel mean 0.8" in out and "inverted-inputs (init check): " in out and "cause: inputs" in out
    dry = CliRunner().invoke(cli, ["fit", "--dataset", str(light), *FIT, "--dry-run", "--strict"])
    assert dry.exit_code == 3 and "warning: inverted-inputs:" in dry.stderr
    assert "verdict: fix before training:" in dry.stdout and "cause: inputs)" in dry.stdout
    dark = write_strokes(tmp_path / "dark")  # the same strokes, light on dark: nothing to say
    clean = CliRunner().invoke(cli, ["fit", "--dataset", str(dark), *FIT, "--dry-run", "--strict"])
    assert clean.exit_code == 0 and "warning:" not in clean.stderr, clean.output


def test_a_dry_run_whose_step_raised_the_loss_fails_and_names_the_step_size(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlptrain.cli import cli

    bands = write_dataset(tmp_path / "bands")
    args = ["fit", "--dataset", str(bands), "--hidden", "32", "--lr", "10", *FIT, "--dry-run"]
    lenient, strict = CliRunner().invoke(cli, args), CliRunner().invoke(cli, [*args, "--strict"])
    assert lenient.exit_code == 0 and strict.exit_code == 3, strict.output
    assert "warning: rising-loss: the first step raised its batch's loss from " in strict.stderr
    assert "cause: learning-rate (steps too large at lr 10: one step raised the batch loss" in strict.stderr
    verdict = strict.stdout.splitlines()[-1]
    assert verdict.startswith("verdict: fix before training: 1 warning(s) (rising-loss; cause: learning-rate)")


def test_fits_warning_lines_name_the_learning_rate_after_a_clean_init_check(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlptrain.cli import cli

    strokes = write_strokes(tmp_path / "strokes")
    result = CliRunner().invoke(cli, ["fit", "--dataset", str(strokes), "--hidden", "32", "--lr", "10", *FIT,
                                      "--out", str(tmp_path / "run")])
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert lines and all("; cause: learning-rate (steps too large at lr 10: " in line for line in lines), lines
    advice = "lower --lr (e.g. 10x, to 1, or what lr-find suggests: mlptrain lr-find --out DIR)"
    assert all(advice in line and "init" not in line for line in lines), lines


def test_infinite_evidence_is_stored_as_text_and_read_back_as_a_number() -> None:
    from mlptrain.train.advice import Context, Diagnosis, HealthWarning, advise, explain
    from mlptrain.train.causes import earlier_cause

    overflow = Diagnosis("init-scale", {"found": "exploding-signal", "gain": float("inf"),
                                        "recommended": "he-uniform", "recommended_gain": 1.1})
    ctx = Context("relu", (64, 16, 3))
    stored = explain(HealthWarning("exploding-signal", 0, None, "the signal grows"), overflow, ctx).as_dict()
    assert stored["evidence"]["gain"] == "inf" and json.loads(json.dumps(stored, allow_nan=False)) == stored
    again = earlier_cause([stored])
    assert again == overflow and "exploding-signal, infx at the init check" in advise(again, ctx)
