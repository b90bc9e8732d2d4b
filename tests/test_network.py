"""The shared core: activation derivatives, initializer scales, whole-network gradients."""

from __future__ import annotations

import numpy as np
import pytest

from mlptrain.errors import ConfigError
from mlptrain.nn.activations import ACTIVATIONS, ALIASES, get_activation
from mlptrain.nn.initializers import INITIALIZERS, get_initializer
from mlptrain.nn.network import (
    Network,
    Workspace,
    cross_entropy_difference,
    dropout_masks,
    forward,
    init_network,
    loss_and_gradients,
    softmax_cross_entropy,
)

GRADCHECK_INITS = ["he-normal", "glorot-uniform", "uniform"]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivative_matches_central_differences(name: str) -> None:
    act = ACTIVATIONS[name]
    # Stay clear of the kinks at 0 (relu family), where the derivative is one-sided.
    z = np.concatenate([np.linspace(-6, -0.05, 40), np.linspace(0.05, 6, 40)])
    eps = 1e-6
    numeric = (act.function(z + eps) - act.function(z - eps)) / (2 * eps)
    np.testing.assert_allclose(act.derivative(z, act.function(z)), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_keeps_shape_and_dtype(name: str) -> None:
    act = ACTIVATIONS[name]
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    a = act.function(z)
    assert a.shape == z.shape and a.dtype == np.float32
    assert act.derivative(z, a).dtype == np.float32


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_writes_into_out_exactly_what_it_returns(name: str) -> None:
    act = ACTIVATIONS[name]
    z = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    before = z.copy()
    out = np.full_like(z, np.nan)
    result = act.function(z, out)
    assert result is out
    np.testing.assert_array_equal(out, act.function(z))
    np.testing.assert_array_equal(z, before)  # the input is never overwritten: backward needs it


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_keeps_nan(name: str) -> None:
    """NaN in, NaN out, buffer or not: a diverged run is caught, never masked."""
    act = ACTIVATIONS[name]
    z = np.array([[-2.0, -0.0, 0.0, 0.5, np.nan, 3.0]], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        results = act.function(z), act.function(z, np.zeros_like(z))
    for a in results:
        assert np.isnan(a[0, 4]) and np.isfinite(np.delete(a, 4)).all()


def test_relu_in_place_and_into_a_dirty_buffer() -> None:
    relu = get_activation("relu").function
    z = np.array([[-2.0, 0.0, 0.5, np.inf, -np.inf]], dtype=np.float32)
    expected = np.array([[0.0, 0.0, 0.5, np.inf, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(relu(z, np.full_like(z, 7.0)), expected)
    in_place = z.copy()
    assert relu(in_place, in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)


def test_logistic_does_not_overflow() -> None:
    act = get_activation("sigmoid")
    with np.errstate(all="raise"):
        out = act.function(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0], atol=1e-300)
    # Far below 0 it is held at (about) the smallest normal float: never a subnormal, which is slow to compute with.
    assert np.finfo(np.float64).tiny <= out[0] < 2 * np.finfo(np.float64).tiny


def test_aliases_resolve_and_unknown_lists_choices() -> None:
    for alias, canonical in ALIASES.items():
        assert get_activation(alias).name == canonical
    with pytest.raises(ConfigError, match="choose one of: logistic, tanh, relu"):
        get_activation("maxout")


@pytest.mark.parametrize("name", [n for n, i in INITIALIZERS.items() if i.parameter is None])
def test_variance_scaling_initializers_have_their_std(name: str) -> None:
    init = INITIALIZERS[name]
    w = init.draw(np.random.default_rng(0), 400, 300)
    assert w.shape == (400, 300) and w.dtype == np.float32
    assert w.std() == pytest.approx(init.std(400, 300, None, None), rel=0.02)


def test_uniform_and_normal_use_their_parameter() -> None:
    rng = np.random.default_rng(0)
    w = get_initializer("uniform").draw(rng, 200, 200, init_range=0.01)
    assert np.abs(w).max() <= 0.01 and np.abs(w).max() > 0.0099
    w = get_initializer("normal").draw(rng, 200, 200, init_std=0.3)
    assert w.std() == pytest.approx(0.3, rel=0.02)
    with pytest.raises(ConfigError, match="needs init_range"):
        get_initializer("uniform").draw(rng, 2, 2)


def test_he_normal_std_is_sqrt_two_over_fan_in() -> None:
    assert get_initializer("he-normal").std(784, 256, None, None) == pytest.approx(np.sqrt(2 / 784))
    assert get_initializer("glorot-uniform").std(784, 256, None, None) == pytest.approx(np.sqrt(2 / (784 + 256)))


def _flat_loss(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    return softmax_cross_entropy(forward(net, x).logits, y)[0]


@pytest.mark.parametrize("init", GRADCHECK_INITS)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_network_gradient_matches_central_differences(activation: str, init: str) -> None:
    """The whole network's loss gradient, every parameter, against finite differences."""
    rng = np.random.default_rng(42)
    net = init_network([5, 4, 3, 3], activation, get_initializer(init), rng,
                       init_range=0.8, bias_init=0.1, dtype=np.float64)
    x = rng.normal(size=(6, 5))
    y = rng.integers(0, 3, size=6)
    _, grads, _ = loss_and_gradients(net, x, y)
    eps = 1e-6
    for param, grad in zip(net.parameters(), grads):
        assert grad.shape == param.shape
        numeric = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            saved = param[i]
            param[i] = saved + eps
            plus = _flat_loss(net, x, y)
            param[i] = saved - eps
            minus = _flat_loss(net, x, y)
            param[i] = saved
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_softmax_regression_without_hidden_layers() -> None:
    rng = np.random.default_rng(0)
    net = init_network([4, 3], "relu", get_initializer("glorot-normal"), rng, dtype=np.float64)
    loss, grads, logits = loss_and_gradients(net, rng.normal(size=(5, 4)), np.array([0, 1, 2, 0, 1]))
    assert logits.shape == (5, 3) and len(grads) == 2 and loss > 0


def test_cross_entropy_is_stable_and_exact() -> None:
    logits = np.array([[1000.0, 0.0], [0.0, 0.0]])
    loss, grad = softmax_cross_entropy(logits, np.array([0, 1]))
    assert loss == pytest.approx(np.log(2) / 2)
    np.testing.assert_allclose(grad, [[0.0, 0.0], [0.25, -0.25]], atol=1e-12)


def _textbook_softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    grad = exp / sums
    grad[rows, labels] -= 1.0
    return float(np.mean(np.log(sums[:, 0]) - shifted[rows, labels])), grad / len(labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_bit_for_bit_the_textbook_form(dtype: type) -> None:
    """The fast form (row maxima through argmax, mean as sum / n) rounds exactly like the plain one."""
    rng = np.random.default_rng(3)
    for n, k, scale in [(128, 10, 1.0), (96, 10, 30.0), (7, 3, 1e3), (1, 2, 0.01)]:
        logits = (rng.standard_normal((n, k)) * scale).astype(dtype)
        labels = rng.integers(0, k, n)
        loss, grad = softmax_cross_entropy(logits, labels)
        want_loss, want_grad = _textbook_softmax_cross_entropy(logits, labels)
        assert loss == want_loss and grad.dtype == dtype
        np.testing.assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_difference_is_the_losss_own_difference(smoothing: float) -> None:
    """The gradient check's numeric side: the same loss as training's, to the last digits of tiny differences."""
    rng = np.random.default_rng(4)
    down, labels = rng.standard_normal((9, 5)) * 3, rng.integers(0, 5, 9)
    up = down + rng.standard_normal(down.shape) * 0.1
    want = softmax_cross_entropy(up, labels, smoothing)[0] - softmax_cross_entropy(down, labels, smoothing)[0]
    assert cross_entropy_difference(up, down, labels, smoothing).mean() == pytest.approx(want, rel=1e-10)
    # A step of 1e-12: the difference is grad . d to 9 digits, where subtracting the two losses keeps 4.
    up = down + rng.standard_normal(down.shape) * 1e-12
    _, grad = softmax_cross_entropy(down, labels, smoothing)
    exact = float((grad * (up - down)).sum())
    assert cross_entropy_difference(up, down, labels, smoothing).mean() == pytest.approx(exact, rel=1e-9, abs=0)
    subtracted = softmax_cross_entropy(up, labels, smoothing)[0] - softmax_cross_entropy(down, labels, smoothing)[0]
    assert subtracted != pytest.approx(exact, rel=1e-5, abs=0)


def test_cross_entropy_of_a_non_finite_logit_is_nan() -> None:
    for bad in (np.nan, np.inf):
        logits = np.array([[0.0, bad, 1.0], [0.0, 1.0, 2.0]], dtype=np.float32)
        with np.errstate(invalid="ignore"):
            loss, _ = softmax_cross_entropy(logits, np.array([0, 2]))
        assert np.isnan(loss)


def test_sizes_and_parameters_order() -> None:
    net = init_network([6, 5, 4, 2], "tanh", get_initializer("he-uniform"), np.random.default_rng(0))
    assert net.sizes == [6, 5, 4, 2]
    assert [p.shape for p in net.parameters()] == [(6, 5), (5,), (5, 4), (4,), (4, 2), (2,)]


@pytest.mark.parametrize("activation", ["relu", "logistic", "identity"])
def test_workspace_gives_the_same_numbers_as_fresh_arrays(activation: str) -> None:
    """The training loop's buffers change where results go, never what they are, for full and
    short batches (an epoch's last batch) and with dropout; weight decay too."""
    rng = np.random.default_rng(3)
    net = init_network([7, 6, 5, 4], activation, get_initializer("he-normal"), rng)
    workspace = Workspace(net, rows=8)
    for n in (8, 5, 8):
        x = rng.normal(size=(n, 7)).astype(np.float32)
        y = rng.integers(0, 4, size=n)
        masks = dropout_masks(net, n, 0.2, 0.5, np.random.default_rng(n))
        loss, grads, logits = loss_and_gradients(net, x, y, 0.01, masks)
        loss_ws, grads_ws, logits_ws = loss_and_gradients(net, x, y, 0.01, masks, workspace)
        assert loss_ws == loss
        np.testing.assert_array_equal(logits_ws, logits)
        for g, g_ws in zip(grads, grads_ws, strict=True):
            np.testing.assert_array_equal(g_ws, g)


def test_workspace_refuses_a_batch_larger_than_its_rows() -> None:
    net = init_network([3, 2], "relu", get_initializer("he-normal"), np.random.default_rng(0))
    with pytest.raises(ValueError, match="does not fit"):
        Workspace(net, rows=4).buffers(5)


def test_grad_scale_multiplies_every_gradient() -> None:
    rng = np.random.default_rng(5)
    net = init_network([5, 4, 3], "tanh", get_initializer("glorot-uniform"), rng, dtype=np.float64)
    x, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    loss, grads, _ = loss_and_gradients(net, x, y, weight_decay=0.1)
    scaled_loss, scaled, _ = loss_and_gradients(net, x, y, weight_decay=0.1, grad_scale=-0.05)
    assert scaled_loss == loss  # the loss itself is never scaled
    for g, s in zip(grads, scaled, strict=True):
        np.testing.assert_allclose(s, -0.05 * g, rtol=1e-12, atol=1e-15)
