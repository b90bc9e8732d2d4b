"""Numerical hardening: activations in place, an accurate logistic, the smallest momentum and eps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlptrain.config import build_config, default_init
from mlptrain.data.loading import load_dataset
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.optimizers import SGD, Adam, Hyper
from mlptrain.train.trainer import evaluate, fit

from synthetic import write_dataset

# --- activations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_activation_computes_the_same_in_place(name: str, dtype) -> None:
    act = ACTIVATIONS[name]
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0], [-30.0, -1e-3, 1e-3, 7.0, 30.0]], dtype)
    expected = act.function(z)
    separate = act.function(z, np.empty_like(z))
    in_place = z.copy()
    assert act.function(in_place, in_place) is in_place
    np.testing.assert_array_equal(separate, expected)
    np.testing.assert_array_equal(in_place, expected)


def test_leaky_relu_and_elu_in_place_give_the_documented_values() -> None:
    z = np.array([-2.0, -0.5, 0.5, 2.0], np.float32)
    leaky, elu = z.copy(), z.copy()
    ACTIVATIONS["leaky-relu"].function(leaky, leaky)
    ACTIVATIONS["elu"].function(elu, elu)
    np.testing.assert_allclose(leaky, [-0.02, -0.005, 0.5, 2.0], rtol=1e-6)
    np.testing.assert_allclose(elu, [np.expm1(-2.0), np.expm1(-0.5), 0.5, 2.0], rtol=1e-6)


def logistic64(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z.astype(np.float64)))


def test_the_logistic_keeps_its_relative_accuracy_far_below_zero() -> None:
    """The tanh form gave logistic(-16) = 1.19e-7 (for 1.13e-7) and logistic(-20) = 0 in float32."""
    z = np.linspace(-87, 30, 200_001).astype(np.float32)
    got = ACTIVATIONS["logistic"].function(z)
    relative = np.abs(got - logistic64(z)) / logistic64(z)
    assert relative.max() < 4 * np.finfo(np.float32).eps
    assert got[0] >= np.finfo(np.float32).tiny  # still a normal float at the far end
    with np.errstate(all="raise"):  # no overflow or underflow on the way, even far outside that range
        far = ACTIVATIONS["logistic"].function(np.array([-1e4, 1e4], np.float32))
    assert far[1] == 1.0 and 0 < far[0] < 2 * np.finfo(np.float32).tiny


@pytest.mark.parametrize("name", ["softplus", "elu"])
def test_softplus_and_elu_derivatives_keep_their_relative_accuracy(name: str) -> None:
    """softplus' is the logistic; elu' is e^z for z < 0, not expm1(z) + 1 (0 below z = -17 in float32)."""
    z = np.linspace(-80, 5, 10_001).astype(np.float32)
    act = ACTIVATIONS[name]
    z64 = z.astype(np.float64)
    expected = logistic64(z) if name == "softplus" else np.where(z64 > 0, 1.0, np.exp(np.minimum(z64, 0)))
    got = act.derivative(z, act.function(z))
    assert got.dtype == np.float32
    assert (np.abs(got - expected) / expected).max() < 4 * np.finfo(np.float32).eps


def gelu_tanh64(z: np.ndarray) -> np.ndarray:
    """The tanh approximation of GELU as published, in float64."""
    z = z.astype(np.float64)
    return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))


def test_silu_and_gelu_are_their_published_formulas() -> None:
    z = np.linspace(-6, 6, 1201)
    np.testing.assert_allclose(ACTIVATIONS["silu"].function(z), z * logistic64(z), rtol=1e-14, atol=1e-300)
    # atol: far below 0 the tanh form itself cancels to 0 where gelu is about 1e-14
    np.testing.assert_allclose(ACTIVATIONS["gelu"].function(z), gelu_tanh64(z), rtol=1e-13, atol=1e-13)


def test_gelu_keeps_its_relative_accuracy_far_below_zero() -> None:
    """z logistic(u), not 0.5 z (1 + tanh(u / 2)): in float32 that sum rounds to 0 below z = -5.4."""
    z = np.linspace(-9, 0, 10_001).astype(np.float32)[:-1]
    z64 = z.astype(np.float64)
    exact = z64 * logistic64(2 * np.sqrt(2 / np.pi) * (z64 + 0.044715 * z64**3))
    got = ACTIVATIONS["gelu"].function(z)
    # e^u magnifies the rounding of u |u| times (|u| up to 66 here): some 100 ulps, not cancellation's 100%.
    assert (np.abs(got - exact) / np.abs(exact)).max() < 200 * np.finfo(np.float32).eps


# --- the smallest momentum and eps -----------------------------------------------------------------


@pytest.mark.parametrize("momentum", [1e-40, 1e-20, 1e-3, 0.05])
@pytest.mark.parametrize("accumulate", [False, True])
def test_a_tiny_momentum_follows_the_textbook_recurrence(momentum: float, accumulate: bool) -> None:
    """-lr / (mu s) overflowed float32 for mu below ~1e-40: a small mu now accumulates with beta = mu."""
    rng = np.random.default_rng(4)
    p = rng.normal(size=(4, 3)).astype(np.float32)
    ref_p, ref_v = p.astype(np.float64), np.zeros((4, 3))
    sgd = SGD([p], Hyper(momentum=momentum))
    for _ in range(10):
        g, lr = rng.normal(size=p.shape).astype(np.float32), 0.1
        ref_v = momentum * ref_v - lr * g
        ref_p += ref_v
        if accumulate:  # as backward does it: beta times what the array holds plus the scaled gradient
            held, beta = sgd.accumulator()
            held[0] *= np.float32(beta)
            held[0] += np.float32(sgd.grad_scale(lr)) * g
            sgd.step([p], held, lr, prescaled=True, accumulated=True)
        else:
            sgd.step([p], [g.copy()], lr)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, ref_p, rtol=1e-5, atol=1e-6)


def test_adam_with_a_tiny_eps_steps_where_m_and_v_are_zero_without_nan() -> None:
    """eps 1e-44 times sqrt(1 - beta2) rounded to 0 in float32: 0/0 for a parameter whose gradient is 0."""
    p = np.ones((2, 3), np.float32)
    adam = Adam([p], Hyper(eps=1e-44))
    g = np.array([[0.5, 0, -0.5], [0, 0, 1.0]], np.float32)
    for _ in range(3):
        adam.step([p], [g.copy()], 0.01)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p[g == 0], 1.0)  # no gradient, no step
    np.testing.assert_allclose(p[g != 0], 1.0 - 0.03 * np.sign(g[g != 0]), rtol=1e-5)


@pytest.fixture
def blank_border_data(tmp_path: Path):
    """The synthetic set with its first image column always 0 (as MNIST's border pixels are)."""
    data = load_dataset(write_dataset(tmp_path / "tiny", n_train=400), "tiny")
    for images in (data.train_images, data.test_images):
        images.reshape(len(images), 8, 8)[:, :, 0] = 0
    return data


@pytest.mark.parametrize("values", [{"momentum": 1e-40}, {"optimizer": "adam", "eps": 1e-44, "lr": 0.01}],
                         ids=["sgd momentum 1e-40", "adam eps 1e-44"])
def test_the_smallest_momentum_and_eps_train_like_textbook_sgd_and_adam(blank_border_data, values: dict) -> None:
    base = {"dataset": "tiny", "hidden": [16], "epochs": 4, "val_size": 50, "batch_size": 32, "lr": 0.1}
    trainer = fit(default_init(build_config(base | values)), blank_border_data)
    assert all(np.isfinite(p).all() for p in trainer.net.parameters())
    assert evaluate(trainer.net, blank_border_data.test_images, blank_border_data.test_labels).accuracy > 0.6
