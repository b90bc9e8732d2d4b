"""Batch and layer norm through the one core: gradients, training against inference, state on disk, ONNX."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from trainkit import whole_and_resumed

from mlptrain.cli import cli
from mlptrain.config import build_config, default_init
from mlptrain.data.loading import load_dataset
from mlptrain.errors import ConfigError
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import get_initializer
from mlptrain.nn.network import (
    Network,
    Workspace,
    forward,
    init_network,
    loss_and_gradients,
    softmax_cross_entropy,
)
from mlptrain.nn.norms import NORMS
from mlptrain.nn.optimizers import Hyper, make_optimizer
from mlptrain.runs.files import load_weights, save_weights
from mlptrain.train.trainer import Trainer, fit
from mlptrain.tune.gradcheck import gradcheck

from synthetic import write_dataset

FAMILIES = sorted({act.family: name for name, act in ACTIVATIONS.items()}.values())  # one activation a family


def norm_net(norm: str, activation: str = "relu", dtype: type = np.float64, seed: int = 42) -> Network:
    """A 5-4-3-3 net whose scales and shifts are moved off 1 and 0, so their gradients matter."""
    rng = np.random.default_rng(seed)
    net = init_network([5, 4, 3, 3], activation, get_initializer("he-normal"), rng, bias_init=0.1,
                       dtype=dtype, norm=norm)
    for scale, shift in zip(net.norm.scales, net.norm.shifts):
        scale += rng.normal(0, 0.3, scale.shape).astype(dtype)
        shift += rng.normal(0, 0.3, shift.shape).astype(dtype)
    return net


def _train_loss(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    return softmax_cross_entropy(forward(net, x, train=True).logits, y)[0]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("norm", sorted(NORMS))
def test_norm_gradient_matches_central_differences(norm: str, activation: str) -> None:
    """Every parameter, scales and shifts included, in float64 and training mode."""
    net = norm_net(norm, activation)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    _, grads, _ = loss_and_gradients(net, x, y)
    assert len(grads) == len(net.parameters()) == 2 * 3 + 2 * 2
    eps = 1e-6
    for param, grad in zip(net.parameters(), grads):
        numeric = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            plus = _train_loss(net, x, y)
            param[i] = saved - eps
            minus = _train_loss(net, x, y)
            param[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_mode_normalises_with_the_batch_or_the_sample(norm: str, dtype: type) -> None:
    net = init_network([6, 8, 3], "identity", get_initializer("uniform"), np.random.default_rng(1),
                       init_range=1.0, dtype=dtype, norm=norm)
    x = np.random.default_rng(2).normal(3, 2, size=(16, 6)).astype(dtype)
    var = (x @ net.weights[0] + net.biases[0]).astype(np.float64).var(axis=NORMS[norm].axis)
    pre = forward(net, x, train=True).pre[0]
    assert pre.dtype == dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pre.mean(axis=NORMS[norm].axis), 0, atol=tolerance)
    np.testing.assert_allclose(pre.std(axis=NORMS[norm].axis), np.sqrt(var / (var + 1e-5)), rtol=tolerance)


def test_batch_norm_updates_running_statistics_in_training_and_uses_them_in_inference() -> None:
    net = norm_net("batch", dtype=np.float64)
    net.norm.momentum = 0.8
    rng = np.random.default_rng(3)
    x, y = rng.normal(1, 2, size=(10, 5)), rng.integers(0, 3, size=10)
    z = x @ net.weights[0] + net.biases[0]
    forward(net, x, train=True)  # training mode without update: the running statistics stay
    np.testing.assert_array_equal(net.norm.running_mean[0], 0)
    loss_and_gradients(net, x, y, update=True)
    np.testing.assert_allclose(net.norm.running_mean[0], 0.2 * z.mean(axis=0))
    np.testing.assert_allclose(net.norm.running_var[0], 0.8 + 0.2 * z.var(axis=0, ddof=1))
    # inference: the running statistics, so one sample's output does not depend on the others in its batch
    expected = (z - net.norm.running_mean[0]) / np.sqrt(net.norm.running_var[0] + net.norm.eps)
    expected = expected * net.norm.scales[0] + net.norm.shifts[0]
    np.testing.assert_allclose(forward(net, x).pre[0], expected)
    np.testing.assert_allclose(forward(net, x[:1]).logits, forward(net, x).logits[:1])
    assert not np.allclose(forward(net, x, train=True).logits, forward(net, x).logits)


def test_layer_norm_is_the_same_in_training_and_inference() -> None:
    net = norm_net("layer", dtype=np.float64)
    x = np.random.default_rng(4).normal(size=(7, 5))
    np.testing.assert_array_equal(forward(net, x, train=True).logits, forward(net, x).logits)
    assert net.norm.running_mean == [] and len(net.variables()) == len(net.parameters())


def test_a_batch_of_one_is_refused_with_a_clear_line_for_batch_norm(tmp_path: Path) -> None:
    net = norm_net("batch")
    with pytest.raises(ConfigError, match="batch norm needs batches of at least 2 samples"):
        loss_and_gradients(net, np.ones((1, 5)), np.array([0]))
    assert np.isfinite(forward(net, np.ones((1, 5))).logits).all()  # inference: one image is fine
    loss_and_gradients(norm_net("layer"), np.ones((1, 5)), np.array([0]))  # layer norm: no batch statistics
    with pytest.raises(ConfigError, match="norm batch needs batch_size 2 or more"):
        build_config({"norm": "batch", "batch_size": 1})
    data = load_dataset(write_dataset(tmp_path / "tiny"), "tiny")  # 300 training images
    cfg = default_init(build_config({"dataset": "tiny", "hidden": [8], "val_size": 43, "batch_size": 32,
                                     "norm": "batch"}))
    with pytest.raises(ConfigError, match="a batch of one image .*change batch_size or val_size by one"):
        Trainer(cfg, data)
    Trainer(dataclasses.replace(cfg, norm="layer"), data)


def test_scaled_and_accumulated_norm_gradients_land_in_the_optimizers_arrays() -> None:
    """SGD's path: the scales' and shifts' gradients scaled and accumulated like the weights'."""
    net = norm_net("batch")
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 5)), rng.integers(0, 3, size=8)
    _, plain, _ = loss_and_gradients(net, x, y)
    plain = [g.copy() for g in plain]
    held = [rng.normal(size=p.shape) for p in net.parameters()]
    before = [h.copy() for h in held]
    _, grads, _ = loss_and_gradients(net, x, y, workspace=Workspace(net, 8, held), grad_scale=-0.3, grad_beta=0.7)
    for g, h, old, p in zip(grads, held, before, plain, strict=True):
        assert g is h
        np.testing.assert_allclose(g, 0.7 * old - 0.3 * p, atol=1e-15)


def test_weight_decay_leaves_scale_and_shift_alone() -> None:
    net = norm_net("batch")
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    _, plain, _ = loss_and_gradients(net, x, y)
    plain = [g.copy() for g in plain]
    _, decayed, _ = loss_and_gradients(net, x, y, weight_decay=0.1)
    for i, (a, b) in enumerate(zip(plain, decayed)):
        if i < 6 and i % 2 == 0:
            np.testing.assert_allclose(b - a, 0.1 * net.parameters()[i])
        else:
            np.testing.assert_array_equal(a, b)
    params = net.parameters()
    before = [p.copy() for p in params]
    make_optimizer("adamw", params, Hyper(weight_decay=0.5)).step(params, [np.zeros_like(p) for p in params], 0.1)
    for p, old in zip(params, before):
        np.testing.assert_array_equal(p, old * np.float64(1 - 0.05) if p.ndim == 2 else old)


def tiny_config(**values):
    base = {"dataset": "tiny", "hidden": [16, 8], "epochs": 4, "val_size": 30, "batch_size": 32, "lr": 0.1}
    return default_init(build_config(base | values))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory):
    return load_dataset(write_dataset(tmp_path_factory.mktemp("data") / "tiny"), "tiny")


@pytest.mark.parametrize("values", [
    {"norm": "batch"}, {"norm": "layer", "optimizer": "adamw", "weight_decay": 0.01, "lr": 0.01},
    {"norm": "batch", "optimizer": "adam", "lr": 0.01, "dropout": 0.2, "lr_schedule": "cosine", "patience": 10,
     "dtype": "float64"},
    {"norm": "batch", "nesterov": True, "momentum": 0.05, "input_dropout": 0.1},
], ids=["batch-sgd", "layer-adamw", "batch-adam-dropout-float64", "batch-nesterov"])
def test_resume_with_a_norm_is_bit_identical_running_statistics_included(tiny_data, values: dict) -> None:
    whole, second = whole_and_resumed(tiny_config(**values), tiny_data, epochs_before=2)
    assert [m["val_loss"] for m in second.progress.history] == [m["val_loss"] for m in whole.progress.history]
    variables = whole.final_network().variables()
    assert len(variables) == 6 + 4 + (4 if values["norm"] == "batch" else 0)  # W, b; scale, shift; statistics
    for a, b in zip(variables, second.final_network().variables(), strict=True):
        np.testing.assert_array_equal(a, b)
    if values["norm"] == "batch":  # training moved the running statistics
        assert not np.array_equal(whole.net.norm.running_var[0], np.ones(16))


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_weights_npz_holds_the_norm_as_plain_named_arrays(tmp_path: Path, tiny_data, norm: str) -> None:
    net = fit(tiny_config(norm=norm, epochs=1), tiny_data).net
    save_weights(tmp_path / "w.npz", net, {"dataset": "tiny"})
    with np.load(tmp_path / "w.npz", allow_pickle=False) as w:
        assert str(w["norm"]) == norm and float(w["norm_eps"]) == 1e-5 and int(w["format"]) == 2
        np.testing.assert_array_equal(w["scale1"], net.norm.scales[1])
        assert ("running_var0" in w.files) == (norm == "batch")
    loaded, _ = load_weights(tmp_path / "w.npz")
    x = np.random.default_rng(0).random((9, 64), dtype=np.float32)
    np.testing.assert_array_equal(forward(loaded, x).logits, forward(net, x).logits)


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_the_gradient_check_passes_with_a_norm(tiny_data, norm: str) -> None:
    result = gradcheck(tiny_config(norm=norm, activation="tanh"), tiny_data)
    assert all(c.passed for c in result.arrays)
    names = [c.name for c in result.arrays]
    assert names == ["W0", "b0", "W1", "b1", "W2", "b2", "scale0", "shift0", "scale1", "shift1"]
    checked = {c.name: c.checked for c in result.arrays}
    assert (checked["b0"] == 0) == (norm == "batch") and checked["scale0"] == 16
    assert any("hidden biases" in line for line in result.left_out) == (norm == "batch")


def test_a_tiny_init_is_not_warned_about_when_batch_norm_repairs_it(tiny_data) -> None:
    """The init check measures after the normalisation: U(+-0.01) is a vanishing signal only without it."""
    codes = {}
    for norm in ("none", "batch"):
        trainer = Trainer(tiny_config(norm=norm, hidden=[32, 32, 32, 32], init_range=0.01), tiny_data)
        trainer.check_init()
        codes[norm] = {w["code"] for w in trainer.progress.warnings}
    assert "vanishing-signal" in codes["none"] and "vanishing-signal" not in codes["batch"]


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_fit_eval_and_export_with_a_norm(tmp_path: Path, norm: str) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    data = write_dataset(tmp_path / "tiny")
    run = tmp_path / "run"
    runner = CliRunner()
    fit_args = ["fit", "--dataset", str(data), "--hidden", "16,8", "--epochs", "2", "--val-size", "30",
                "--batch-size", "32", "--norm", norm, "--out", str(run), "--quiet"]
    result = runner.invoke(cli, fit_args)
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli, ["eval", str(run), "--dataset", str(data)]).exit_code == 0
    result = runner.invoke(cli, ["export", str(run), "--out", str(tmp_path / "net.onnx")])
    assert result.exit_code == 0, result.output
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    net, _ = load_weights(run / "weights.npz")
    x = np.random.default_rng(1).random((23, 64), dtype=np.float32)
    (logits,) = session.run(["logits"], {"images": x})
    np.testing.assert_allclose(logits, forward(net, x).logits, rtol=1e-5, atol=1e-5)
    ops = [node.op_type for node in onnx.load(tmp_path / "net.onnx").graph.node]
    assert ops.count({"batch": "BatchNormalization", "layer": "LayerNormalization"}[norm]) == 2
