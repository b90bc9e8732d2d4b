"""The tuning tools: fit --dry-run, init-scan, lr-find, gradcheck, and the filters.png of mlptrain plot."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli
from mlptrain.config import Config, build_config, default_init
from mlptrain.data.loading import load_dataset
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import INITIALIZERS
from mlptrain.nn.network import forward, init_network
from mlptrain.nn.optimizers import OPTIMIZERS
from mlptrain.train.diagnostics import gain_products, layer_health, total_gain
from mlptrain.train.objective import Objective, training_objective
from mlptrain.train.trainer import Trainer, initial_network
from mlptrain.tune.gradcheck import EPS, TOLERANCE, gradcheck
from mlptrain.tune.initscan import (
    band_position,
    equivalent_r,
    gain_position,
    healthy_bands,
    log_grid,
    scan_init,
)
from mlptrain.tune.lrfind import lr_find

from synthetic import write_dataset

SMALL = ["--val-size", "30", "--quiet"]
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def data(tiny: Path):
    return load_dataset(tiny, str(tiny))


def config(tiny: Path, **values) -> Config:
    return default_init(build_config({"dataset": str(tiny), "val_size": 30, **values}))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


# --- fit --dry-run -------------------------------------------------------------------------


def test_dry_run_prints_the_init_table_and_a_verdict_and_writes_nothing(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("fit", "--dataset", str(tiny), "--hidden", "16", "--val-size", "30", "--dry-run", "--out", "run")
    assert list(tmp_path.iterdir()) == []  # no run directory, no runs/, nothing
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "dry run of 64-16-3 relu he-normal, sgd at lr 0.05, batch 128: nothing is written"
    assert lines[1].startswith("data check (training images, scaled to [0, 1]): pixel mean 0.4")
    assert lines[2] == "init check (probe batch of training images):"
    assert [line.split()[0] for line in lines[4:6]] == ["hidden1", "logits"]
    assert lines[-1].startswith("verdict: ready to train: the data and init checks passed and the step lowered the "
                                "loss; one step at lr 0.05: batch loss ")
    assert result.stderr.startswith("init: he-normal")


def test_dry_run_with_a_tiny_init_warns_and_fails_strict_without_writing(
        tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--dataset", str(tiny), "--hidden", "16,16", "--init-range", "1e-4", *SMALL, "--dry-run"]
    lenient, strict = invoke(*args), invoke(*args, "--strict")
    assert list(tmp_path.iterdir()) == []
    assert lenient.exit_code == 0 and strict.exit_code == 3, strict.output
    for result in (lenient, strict):
        assert "warning: vanishing-signal: the signal shrinks" in result.stderr
        assert result.stdout.splitlines()[-1].startswith(
            "verdict: fix before training: 1 warning(s) (vanishing-signal; cause: init-scale); one step at lr 0.05")


def test_dry_run_is_the_runs_init_check_and_first_step(tiny: Path, data) -> None:
    from mlptrain.tune.dryrun import dry_run

    cfg = config(tiny, hidden=[16])
    result = dry_run(cfg, data)
    trainer = Trainer(cfg, data)
    assert [vars(r) for r in result.rows] == [vars(r) for r in trainer.check_init()]
    first = trainer.shuffle_rng.permutation(trainer.split.train)[:cfg.batch_size]
    assert result.loss_before == trainer.train_batch(first, cfg.lr)  # the step's loss is the loss before it
    assert result.loss_after < result.loss_before


@pytest.mark.parametrize("command", [
    ["fit", "--dry-run"], ["fit", "--epochs", "1", "--out", "run"], ["gradcheck", "--per-array", "5"],
    ["lr-find", "--steps", "5", "--out", "lrf"], ["init-scan", "--per-decade", "1", "--out", "scan.png"],
], ids=lambda command: " ".join(command[:2]))
def test_the_default_init_is_announced_but_not_under_quiet(tiny: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    args = [*command, "--dataset", str(tiny), "--hidden", "8", "--val-size", "30"]
    loud = invoke(*args)
    assert loud.exit_code == 0, loud.output
    assert loud.stderr.startswith("init: he-normal (the default for relu; choose another with --init or --init-range)")
    for path in tmp_path.iterdir():  # the outputs again: --out must be new
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    quiet = invoke(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert "init:" not in quiet.stderr


def test_dry_run_refuses_resume(tiny: Path, tmp_path: Path) -> None:
    result = invoke("fit", "--dataset", str(tiny), "--dry-run", "--resume", str(tmp_path))
    assert result.exit_code == 2 and "--dry-run checks a new run; drop --resume" in result.stderr


# --- init-scan -------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gain_product_is_the_init_checks_total_gain(activation: str) -> None:
    rng = np.random.default_rng(1)
    net = init_network([64, 32, 32, 3], activation, INITIALIZERS["glorot-uniform"], rng)
    x = rng.random((100, 64), dtype=np.float32)
    rows, _ = layer_health(net, x, rng.integers(0, 3, 100))
    assert gain_products([net, net], x) == [total_gain(rows)] * 2


def test_healthy_bands_interpolate_between_grid_points() -> None:
    # log-log linear: from 0.2 to 3.2 over one decade of r the gain passes 0.5 and 2 in between
    low, high = (0.1 * 10 ** (math.log(g / 0.2) / math.log(16)) for g in (0.5, 2.0))
    assert healthy_bands([0.1, 1.0], [0.2, 3.2], 2.0) == [pytest.approx((low, high))]
    start = 0.01 * 10 ** (math.log(1.25) / math.log(2.5))
    assert healthy_bands([0.01, 0.1, 1.0], [0.4, 1.0, 0.0], 2.0) == [pytest.approx((start, 0.1))]  # 0: off the log
    assert healthy_bands([0.01, 0.1, 1.0], [1e-3, 1e-2, 1e3], 2.0) != []
    assert healthy_bands([0.01, 0.1], [1e-3, 1e-2], 2.0) == []
    assert band_position([(0.1, 0.2)], 0.01) == "10x below the band" and band_position([(0.1, 0.2)], 0.15) == "inside"


def test_scan_band_for_the_default_relu_net_holds_he_and_not_a_tiny_r(tiny: Path, data) -> None:
    cfg = config(tiny)  # the default net: 256, 256 relu
    scan = scan_init(cfg, data, ["relu"])
    (low, high), = scan.curves[0].bands
    assert low <= scan.init_radii["he-uniform"] <= high and low <= scan.init_radii["he-normal"] <= high
    assert not low <= 0.001 <= high
    assert scan.yours == "he-normal" and scan.yours_r == scan.init_radii["he-normal"]
    # the config's own init is measured exactly as the trainer's init check measures it
    assert scan.yours_gain["relu"] == total_gain(Trainer(cfg, data).check_init())


@pytest.mark.realdata
@pytest.mark.skipif(not MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_scan_band_on_mnist_for_the_default_and_the_original_problem(tmp_path: Path) -> None:
    from mlptrain.data.loading import locate

    mnist = load_dataset(locate("mnist", tmp_path, str(MNIST)), "mnist")
    scan = scan_init(default_init(Config()), mnist, ["relu"])
    (low, high), = scan.curves[0].bands
    assert low <= scan.init_radii["he-uniform"] <= high and not low <= 0.001 <= high
    deep = scan_init(Config(hidden=(256,) * 4, init_range=0.01, init="uniform"), mnist, ["relu"])
    assert band_position(deep.curves[0].bands, 0.01).endswith("below the band")
    assert band_position(deep.curves[0].bands, deep.init_radii["he-uniform"]) == "inside"


def test_equivalent_r_of_the_plain_schemes_is_their_own_scale() -> None:
    assert equivalent_r([784, 256, 10], "uniform", init_range=0.01) == pytest.approx(0.01)
    assert equivalent_r([784, 256, 10], "normal", init_std=0.1) == pytest.approx(0.1 * 3 ** 0.5)
    assert equivalent_r([256, 256], "he-uniform") == pytest.approx((6 / 256) ** 0.5)
    assert len(log_grid(1e-4, 10, 4)) == 21


def test_init_scan_cli_prints_bands_and_writes_the_plot(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "scan.png"
    result = invoke("init-scan", "--dataset", str(tiny), "--hidden", "32,32", *SMALL, "--activations",
                    "relu,tanh", "--init-range", "0.001", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("init-scale scan of 64-32-32-3 on the probe batch: total gain input -> logits for "
                               "U(-r, r), r = 0.0001 .. 10 (21 points); healthy: within 2x of 1")
    assert [line.split(":")[0] for line in lines if not line.startswith(" ")][1:-1] == ["relu", "tanh"]
    yours = [line for line in lines if "yours (uniform r=0.001)" in line]
    assert len(yours) == 2 and all("below: the signal vanishes" in line for line in yours)
    assert lines[-1] == f"wrote {out}" and out.read_bytes()[:4] == b"\x89PNG"


# Nets of the synthetic data where an initializer's equivalent r lies inside the activation's r band while
# the gain it measured lies outside the healthy range: r places an init against the band only for ReLU-like
# units (and not even there for a normal draw against the uniform curve).
MISPLACED = [("8,8,8", "tanh", "glorot-normal", "below"), ("32", "identity", "he-normal", "above")]
VERDICTS = {"below": "vanishes", "above": "grows"}


@pytest.mark.parametrize("hidden, activation, init, verdict", MISPLACED)
def test_init_scan_judges_each_init_from_the_gain_it_measured(
        tiny: Path, data, tmp_path: Path, hidden: str, activation: str, init: str, verdict: str) -> None:
    scan = scan_init(config(tiny, hidden=[int(h) for h in hidden.split(",")]), data, [activation])
    (curve,) = scan.curves
    assert band_position(curve.bands, scan.init_radii[init]) == "inside"  # the case the old label got wrong
    assert not 0.5 <= curve.inits[init] <= 2
    result = invoke("init-scan", "--dataset", str(tiny), "--hidden", hidden, *SMALL, "--activations", activation,
                    "--out", str(tmp_path / "scan.png"))
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert f"{curve.inits[init]:.3g}  {verdict}: the signal {VERDICTS[verdict]}" in rows[init]
    for name, gain in curve.inits.items():  # every row follows its own gain
        expected = "inside" if 0.5 <= gain <= 2 else "below" if gain < 0.5 else "above"
        assert f"{gain:.3g}  {expected}" in rows[name], rows[name]


@pytest.mark.realdata
@pytest.mark.skipif(not MNIST.is_dir(), reason="needs ../shared/data/mnist")
def test_init_scan_labels_of_the_issue_on_mnist(tmp_path: Path) -> None:
    result = invoke("init-scan", "--hidden", "64,64", "--activations", "tanh,elu,softplus", "--mirror", str(MNIST),
                    "--data-dir", str(tmp_path / "data"), "--quiet", "--out", str(tmp_path / "scan.png"))
    assert result.exit_code == 0, result.output
    tables = result.stdout.split("\nelu:")[1].split("\nsoftplus:")
    elu, softplus = ({line.split()[0]: line for line in t.splitlines() if line.startswith("  ")} for t in tables)
    assert "above: the signal grows" in elu["he-uniform"]
    assert "below: the signal vanishes" in softplus["glorot-uniform"]


def test_gain_position_is_judged_against_the_factor() -> None:
    assert [gain_position(g, 2.0) for g in (0.5, 1.0, 2.0)] == ["inside"] * 3
    assert [gain_position(g, 2.0) for g in (0.0, 0.499, 1e-9)] == ["below"] * 3
    assert [gain_position(g, 2.0) for g in (2.01, math.inf, math.nan)] == ["above"] * 3  # NaN: inf / inf
    assert gain_position(1.6, 1.5) == "above" and gain_position(0.7, 1.5) == "inside"


def test_init_scan_plot_marks_an_init_hollow_when_its_gain_is_outside(tiny: Path, data) -> None:
    from mlptrain.plots.tune import init_scan_figure

    scan = scan_init(config(tiny, hidden=[8, 8, 8]), data, ["tanh", "relu"])
    figure = init_scan_figure(scan)
    marks = {(float(line.get_xdata()[0]), float(line.get_ydata()[0])): line.get_markerfacecolor()
             for line in figure.axes[0].lines if len(line.get_xdata()) == 1}
    hollow = 0
    for curve in scan.curves:
        for name, gain in curve.inits.items():
            outside = marks[(scan.init_radii[name], gain)] == "white"
            assert outside == (gain_position(gain, scan.factor) != "inside"), (curve.activation, name, gain)
            hollow += outside
    assert hollow  # tanh's glorot-normal at least


def test_init_scan_refuses_activation_and_activations_together(tiny: Path) -> None:
    result = invoke("init-scan", "--dataset", str(tiny), "--activation", "tanh", "--activations", "relu")
    assert result.exit_code == 2 and "not both" in result.stderr


# --- lr-find ---------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_lr_find_runs_every_optimizer_and_is_deterministic_per_seed(tiny: Path, data, optimizer: str) -> None:
    cfg = config(tiny, hidden=[16], optimizer=optimizer, batch_size=32)
    first, again = (lr_find(cfg, data, steps=60) for _ in range(2))
    assert first.losses == again.losses and first.lrs == again.lrs and len(first.losses) >= 10
    other = lr_find(dataclasses.replace(cfg, seed=1), data, steps=60)
    assert other.losses != first.losses
    assert first.lrs[0] == 1e-7 and all(b > a for a, b in zip(first.lrs, first.lrs[1:]))


def test_lr_find_stops_when_the_smoothed_loss_blows_up(tiny: Path, data) -> None:
    result = lr_find(config(tiny, hidden=[16], batch_size=32), data, 1e-4, 1e4, steps=100)
    assert result.stop_reason.startswith("the smoothed loss ")
    assert len(result.smoothed) < 100 and result.smoothed[-1] > 4 * min(result.smoothed)
    assert all(s <= 4 * min(result.smoothed[:i + 1]) for i, s in enumerate(result.smoothed[:-1]))
    steep, low = result.steepest(), result.minimum_over_10()
    assert steep is not None and 1e-7 < steep < result.lrs[-1] and low == result.lrs[np.argmin(result.smoothed)] / 10


def test_lr_find_stops_on_a_loss_that_is_no_longer_finite(tiny: Path, data) -> None:
    cfg = config(tiny, hidden=[16], batch_size=32, activation="tanh")
    result = lr_find(cfg, data, 1e-3, 1e38, steps=100, stop_factor=1e300)  # the smoothed-loss test never fires
    assert result.stop_reason.startswith("the loss became NaN or infinite at lr ")
    assert len(result.losses) < 100 and all(math.isfinite(v) for v in result.losses)


def test_lr_find_cli_writes_json_and_png_and_no_weights(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "lrf"
    result = invoke("lr-find", "--dataset", str(tiny), "--hidden", "16", "--batch-size", "32", *SMALL,
                    "--steps", "80", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["lr-find.json", "lr-find.png"]
    report = json.loads((out / "lr-find.json").read_text())
    assert report["steps_planned"] == 80 and report["steps_run"] == len(report["points"])
    assert report["config"]["hidden"] == [16] and report["stop_reason"] in result.stdout
    steep = report["suggestion"]["steepest"]
    assert f"suggestion: --lr {steep:.3g} (steepest descent of the smoothed loss)" in result.stdout
    again = invoke("lr-find", "--dataset", str(tiny), *SMALL, "--out", str(out))
    assert again.exit_code == 2 and "already exists" in again.stderr
    bad = invoke("lr-find", "--dataset", str(tiny), *SMALL, "--start-lr", "1", "--end-lr", "0.1", "--out",
                 str(tmp_path / "x"))
    assert bad.exit_code == 2 and "--start-lr 1 must be positive and below --end-lr 0.1" in bad.stderr
    assert not (tmp_path / "x").exists()


# --- gradcheck -------------------------------------------------------------------------------

SCALES = {"uniform": {"init_range": 0.5}, "normal": {"init_std": 0.3}}


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradcheck_passes_for_every_activation_and_initializer(tiny: Path, data, activation: str, init: str) -> None:
    cfg = config(tiny, hidden=[6, 5], activation=activation, init=init, **SCALES.get(init, {}))
    checks = gradcheck(cfg, data, samples=3, per_array=10_000).arrays
    assert [c.name for c in checks] == ["W0", "b0", "W1", "b1", "W2", "b2"]
    assert all(c.checked + c.skipped == c.size for c in checks)  # a small net: every parameter
    assert sum(c.checked for c in checks) > 0.9 * sum(c.size for c in checks)
    assert all(c.passed for c in checks), [(c.name, c.max_error) for c in checks]


def test_gradcheck_includes_the_l2_term(tiny: Path, data) -> None:
    result = gradcheck(config(tiny, hidden=[5], weight_decay=0.1), data, samples=2)
    assert result.loss == "cross-entropy, plus the L2 term of weight decay 0.1"
    assert all(c.passed for c in result.arrays)


@pytest.mark.parametrize("activation, wrong", [
    ("relu", lambda z, a: np.ones_like(z)),  # the slope of the negative side forgotten
    ("tanh", lambda z, a: 1.0 - a),  # 1 - a instead of 1 - a^2
])
def test_gradcheck_fails_on_a_wrong_derivative(tiny: Path, monkeypatch: pytest.MonkeyPatch, activation, wrong) -> None:
    monkeypatch.setitem(ACTIVATIONS, activation, dataclasses.replace(ACTIVATIONS[activation], derivative=wrong))
    result = invoke("gradcheck", "--dataset", str(tiny), "--hidden", "8,8", "--activation", activation, *SMALL)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1].startswith("FAIL: W0, b0")
    assert f"the backward pass or the {activation} derivative is wrong" in result.stdout


def _forgets_the_smoothing(real):
    """softmax_cross_entropy with a gradient wrong only under label smoothing: plain cross-entropy's."""
    def broken(logits, labels, smoothing=0.0):
        return real(logits, labels, smoothing)[0], real(logits, labels)[1]
    return broken


def test_gradcheck_checks_the_smoothed_loss_and_fails_a_wrong_smoothed_gradient(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlptrain.nn import network

    monkeypatch.setattr(network, "softmax_cross_entropy", _forgets_the_smoothing(network.softmax_cross_entropy))
    plain = invoke("gradcheck", "--dataset", str(tiny), "--hidden", "8,8", *SMALL)
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines()[1] == "loss: cross-entropy"
    smoothed = invoke("gradcheck", "--dataset", str(tiny), "--hidden", "8,8", "--label-smoothing", "0.1", *SMALL)
    assert smoothed.exit_code == 1, smoothed.output
    lines = smoothed.stdout.splitlines()
    assert lines[1] == "loss: cross-entropy with label smoothing 0.1"
    assert lines[-1].startswith("FAIL: W0, b0, W1, b1, W2, b2 disagree with the central differences")
    assert lines[-1].endswith("or the loss's gradient (cross-entropy with label smoothing 0.1)")


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_gradcheck_passes_the_smoothed_loss_with_its_l2_term(tiny: Path, data, activation: str) -> None:
    cfg = config(tiny, hidden=[6, 5], activation=activation, label_smoothing=0.1, weight_decay=0.01)
    result = gradcheck(cfg, data, samples=3, per_array=10_000)
    assert result.loss == "cross-entropy with label smoothing 0.1, plus the L2 term of weight decay 0.01"
    assert result.left_out == [] and all(c.passed for c in result.arrays), result.arrays


def test_training_and_gradcheck_take_their_loss_from_one_place(tiny: Path, data) -> None:
    cfg = config(tiny, hidden=[5], label_smoothing=0.2, weight_decay=0.01, optimizer="adamw", dropout=0.5,
                 max_norm=3.0)
    assert Trainer(cfg, data).objective == training_objective(cfg) == Objective(label_smoothing=0.2, l2=0.0)
    result = gradcheck(cfg, data, samples=2)
    assert result.loss == training_objective(cfg).describe() == "cross-entropy with label smoothing 0.2"
    assert result.left_out == ["weight decay 0.01 (adamw applies it in its step, outside the gradient)",
                               "dropout 0.5 (random masks: the check runs without them)",
                               "max-norm 3 (a projection of the weights after each step)"]


@pytest.mark.parametrize("option", [f.name for f in dataclasses.fields(Objective)])
def test_every_loss_option_reaches_both_sides_of_the_check(option: str) -> None:
    """An option of the training loss changes the analytic gradients and the central differences alike."""
    rng = np.random.default_rng(5)
    net = init_network([4, 3, 3], "tanh", INITIALIZERS["glorot-normal"], rng, dtype=np.dtype("float64"))
    x, y = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
    plain, changed = Objective(), dataclasses.replace(Objective(), **{option: 0.1})
    grads = [objective.loss_and_gradients(net, x, y)[1] for objective in (plain, changed)]
    assert not np.allclose(grads[0][0], grads[1][0])
    down = net.weights[0][0, 0]
    logits = []
    for value in (down + EPS, down - EPS):
        net.weights[0][0, 0] = value
        logits.append(forward(net, x).logits)
    net.weights[0][0, 0] = down
    quotients = [objective.difference_quotient(*logits, y, EPS, down) for objective in (plain, changed)]
    assert quotients[0] != pytest.approx(quotients[1], rel=1e-6)
    assert quotients[1] == pytest.approx(grads[1][0][0, 0], rel=1e-6)


def test_gradcheck_cli_passes_and_prints_one_row_per_array(tiny: Path) -> None:
    result = invoke("gradcheck", "--dataset", str(tiny), "--hidden", "8,8", *SMALL, "--per-array", "50")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("gradient check of 64-8-8-3 relu he-normal in float64: 4 probe image(s), "
                        "central differences with delta 1e-05")
    assert lines[1] == "loss: cross-entropy"
    assert [line.split()[:2] for line in lines[3:9]] == [["W0", "hidden1"], ["b0", "hidden1"], ["W1", "hidden2"],
                                                         ["b1", "hidden2"], ["W2", "logits"], ["b2", "logits"]]
    assert lines[3].split()[2:5] == ["50", "of", "512"]
    assert lines[-1].startswith(f"PASS: every checked gradient agrees within {TOLERANCE:g}")


# --- filters.png -----------------------------------------------------------------------------


def test_initial_network_is_the_trainers(tiny: Path, data) -> None:
    cfg = config(tiny, hidden=[16, 8], init="he-uniform", seed=3)
    trainer, net = Trainer(cfg, data), initial_network(cfg, data.n_inputs, data.n_classes)
    assert all(np.array_equal(a, b) for a, b in zip(trainer.net.parameters(), net.parameters()))


def test_plot_writes_filters_with_the_runs_own_initial_weights(tiny: Path, data, tmp_path: Path) -> None:
    from mlptrain.plots.filters import initial_and_trained, mosaic
    from mlptrain.runs.report import load_run

    out = tmp_path / "run"
    fit = invoke("fit", "--dataset", str(tiny), "--hidden", "16", "--epochs", "2", "--seed", "5", *SMALL,
                 "--out", str(out))
    assert fit.exit_code == 0, fit.output
    result = invoke("plot", str(out))
    assert result.exit_code == 0 and f"wrote {out / 'filters.png'}" in result.stdout
    assert (out / "filters.png").read_bytes()[:4] == b"\x89PNG"
    initial, trained, shape = initial_and_trained(load_run(out))
    cfg = config(tiny, hidden=[16], epochs=2, seed=5)
    assert np.array_equal(initial, Trainer(cfg, data).net.weights[0]) and shape == (8, 8)
    assert not np.array_equal(initial, trained)
    grid = mosaic(trained, shape)
    assert grid.shape == (4 * 9 - 1, 4 * 9 - 1) and np.nanmax(np.abs(grid)) == 1.0


@pytest.mark.parametrize("name", ["init-scan", "lr-find", "gradcheck", "fit"])
def test_no_option_of_a_tuning_command_shadows_a_config_flag(name: str) -> None:
    params = cli.get_command(None, name).params
    assert len({p.name for p in params}) == len(params)  # e.g. gradcheck's step is --delta: --eps is Adam's
    flags = [flag for p in params for flag in p.opts]
    assert len(set(flags)) == len(flags)
