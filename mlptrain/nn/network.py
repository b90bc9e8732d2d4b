"""The network and its one forward/backward core.

Conventions: arrays are batch-major, ``x`` is ``(n, inputs)``; layer ``l`` maps
``(n, sizes[l])`` to ``(n, sizes[l+1])`` as ``z = a @ W[l] + b[l]`` with
``W[l]`` of shape ``(sizes[l], sizes[l+1])``. Hidden layers apply the
activation, the last layer gives logits, and the loss is the mean softmax
cross-entropy. Training, evaluation and the gradient checks all go through
``forward`` and ``backward`` below: there is no second copy. The training
loop hands them a ``Workspace`` so that every step writes into the same
preallocated arrays (matrix products with ``out=``) instead of allocating
fresh ones; without one they allocate, which is what evaluation, the
diagnostics and the gradient checks use. The arithmetic is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlptrain.nn.activations import Activation, get_activation
from mlptrain.nn.blas import accumulate_product
from mlptrain.nn.initializers import Initializer
from mlptrain.nn.norms import NONE, NormLayers

Array = np.ndarray


@dataclass
class Network:
    """Weights ``W[l]`` ``(sizes[l], sizes[l+1])``, biases ``b[l]`` ``(sizes[l+1],)``; ``norm``: the hidden
    layers' normalisations (``nn.norms``), None for none."""

    weights: list[Array]
    biases: list[Array]
    activation: Activation
    norm: NormLayers | None = None

    @property
    def sizes(self) -> list[int]:
        """Layer widths from input to output, e.g. ``[784, 256, 256, 10]``."""
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    def parameters(self) -> list[Array]:
        """``[W0, b0, W1, b1, …]`` then the norms' ``[scale0, shift0, …]``: the arrays an optimizer updates in place."""
        params = [p for pair in zip(self.weights, self.biases) for p in pair]
        return params + self.norm.parameters() if self.norm is not None else params

    def variables(self) -> list[Array]:
        """``parameters()`` then batch norm's running statistics: every array the outputs depend on."""
        return self.parameters() + self.norm.statistics() if self.norm is not None else self.parameters()


@dataclass
class Trace:
    """What the forward pass keeps for the backward pass.

    ``inputs[l]`` is what layer ``l`` multiplied by its weights (``inputs[0]``
    is ``x``), after dropout; ``pre[l]`` and ``post[l]`` are hidden layer
    ``l``'s pre-activation (after its normalisation, if any) and activation
    before dropout; ``masks[l]`` is the dropout mask applied to ``inputs[l]``
    (None: no dropout there); ``norms[l]`` what the normalisation's backward
    needs (empty without one).
    """

    inputs: list[Array]
    pre: list[Array]
    post: list[Array]
    masks: list[Array | None]
    logits: Array
    norms: list[tuple[Array, Array]] = field(default_factory=list)


@dataclass
class Buffers:
    """Arrays for ``forward``/``backward`` to write into, one list entry per layer; None: allocate.

    ``pre[l]``/``post[l]``: hidden layer ``l``'s pre-activation and activation
    (``pre`` has one more entry, the logits); ``dropped[l]``: layer ``l``'s
    input after dropout; ``delta[l]``: the gradient at hidden layer ``l``'s
    output; ``grads``: ``[dW0, db0, dW1, …]``.
    """

    pre: list[Array | None]
    post: list[Array | None]
    dropped: list[Array | None]
    delta: list[Array | None]
    grads: list[Array | None]

    @classmethod
    def none(cls, n_layers: int) -> Buffers:
        """No buffers: every array is allocated (evaluation, diagnostics, gradient checks)."""
        return cls(*([None] * k for k in (n_layers, n_layers - 1, n_layers, n_layers - 1, 2 * n_layers)))


class Workspace:
    """Preallocated buffers for batches of up to ``rows`` samples, reused step after step.

    Training allocates nothing per step this way, and each matrix product
    writes into memory that is already mapped and usually still in cache.
    Whatever ``forward``/``backward`` return with a workspace lives in it: the
    next step overwrites it, so callers copy what they keep.
    """

    def __init__(self, net: Network, rows: int, grads: list[Array] | None = None) -> None:
        """``grads``: arrays to hold the gradients (e.g. an optimizer's, to accumulate into); default: new ones."""
        sizes, dtype = net.sizes, net.dtype
        self.rows = rows
        self._views: dict[int, Buffers] = {}  # per batch size: an epoch has at most two
        self._full = Buffers(
            pre=[np.empty((rows, s), dtype) for s in sizes[1:]],
            post=[np.empty((rows, s), dtype) for s in sizes[1:-1]],
            dropped=[np.empty((rows, s), dtype) for s in sizes[:-1]],
            delta=[np.empty((rows, s), dtype) for s in sizes[1:-1]],
            grads=grads if grads is not None else [np.empty_like(p) for p in net.parameters()],
        )

    def buffers(self, n: int) -> Buffers:
        """The buffers for a batch of ``n <= rows`` samples: the first ``n`` rows (contiguous views)."""
        if n > self.rows:
            raise ValueError(f"a batch of {n} does not fit a workspace of {self.rows} rows")
        if n not in self._views:
            full = self._full
            rows = [[a[:n] for a in arrays] for arrays in (full.pre, full.post, full.dropped, full.delta)]
            self._views[n] = Buffers(*rows, grads=list(full.grads))
        return self._views[n]


def init_network(
    sizes: list[int],
    activation: str,
    init: Initializer,
    rng: np.random.Generator,
    init_range: float | None = None,
    init_std: float | None = None,
    bias_init: float = 0.0,
    dtype: np.dtype | type = np.float32,
    norm: str = NONE,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.9,
) -> Network:
    """A fresh network of the given layer widths, weights drawn from ``rng`` (a norm's scale 1 and shift 0)."""
    weights = [
        init.draw(rng, fan_in, fan_out, init_range, init_std, dtype)
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
    ]
    biases = [np.full(fan_out, bias_init, dtype=dtype) for fan_out in sizes[1:]]
    norms = None
    if norm != NONE and len(sizes) > 2:
        norms = NormLayers.fresh(norm, sizes[1:-1], dtype, norm_eps, norm_momentum)
    return Network(weights, biases, get_activation(activation), norms)


def dropout_masks(
    net: Network, n: int, input_rate: float, hidden_rate: float, rng: np.random.Generator
) -> list[Array | None]:
    """Inverted-dropout masks for a batch of ``n``: 0 with probability ``rate``, else ``1/(1-rate)``.

    One mask per layer input (the data, then each hidden layer); None where the rate is 0.
    Scaling at training time keeps the expected input unchanged, so evaluation needs no masks.
    """
    rates = [input_rate] + [hidden_rate] * (len(net.weights) - 1)
    masks: list[Array | None] = []
    for rate, width in zip(rates, net.sizes[:-1]):
        if rate <= 0:
            masks.append(None)
            continue
        keep = rng.random((n, width), dtype=np.float32) >= rate
        masks.append(keep.astype(net.dtype) * net.dtype.type(1.0 / (1.0 - rate)))
    return masks


def forward(
    net: Network, x: Array, masks: list[Array | None] | None = None, buffers: Buffers | None = None,
    train: bool = False, update: bool = False,
) -> Trace:
    """Run ``x`` ``(n, sizes[0])`` through the net, keeping what backward needs.

    ``masks`` (from ``dropout_masks``) turns on dropout; evaluation passes none.
    ``buffers`` (from a ``Workspace``) receive the results instead of new arrays.
    ``train``: batch norm normalises with the batch's statistics (training mode;
    ``update`` also folds them into its running ones), else with its running
    ones (inference mode). Without batch norm neither changes anything.
    """
    n_layers, norm = len(net.weights), net.norm
    masks = masks or [None] * n_layers
    out = buffers or Buffers.none(n_layers)
    trace = Trace(inputs=[], pre=[], post=[], masks=masks, logits=x)
    a = x
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        if masks[layer] is not None:
            a = np.multiply(a, masks[layer], out=out.dropped[layer])
        trace.inputs.append(a)
        z = np.matmul(a, w, out=out.pre[layer])
        z += b
        if layer == n_layers - 1:
            trace.logits = z
            break
        if norm is not None:
            z, cache = norm.forward(layer, z, train, update)
            trace.norms.append(cache)
        a = net.activation.function(z, out.post[layer])
        trace.pre.append(z)
        trace.post.append(a)
    return trace


def softmax_cross_entropy(logits: Array, labels: Array, smoothing: float = 0.0) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    The gradient with respect to the logits is ``(softmax - target) / n``, the
    fused form that never divides by a probability. The target is the one-hot
    label, or with ``smoothing`` (label smoothing, Szegedy et al. 2016) the mix
    ``(1 - smoothing) * onehot + smoothing / classes``.
    """
    n, classes = logits.shape
    rows = np.arange(n)
    # Each row's maximum picked through argmax, which has a SIMD loop: max(axis=1) over
    # rows of ten classes has none (benchmarks/NOTES.md). Same value, NaN included.
    shifted = logits - logits[rows, logits.argmax(axis=1)][:, None]
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    # The mean as sum / n: np.mean rounds the same way, through a Python wrapper that costs more.
    loss = float((np.log(sums[:, 0]) - _target_dot(shifted, rows, labels, smoothing)).sum() / n)
    exp /= sums
    if smoothing:
        exp -= smoothing / classes
    exp[rows, labels] -= 1.0 - smoothing
    exp /= n
    return loss, exp


def _target_dot(z: Array, rows: Array, labels: Array, smoothing: float) -> Array:
    """Each row's target times ``z`` ``(n, classes)``: ``z`` at the label, or with ``smoothing`` its mix: ``(n,)``."""
    if not smoothing:
        return z[rows, labels]
    return (1 - smoothing) * z[rows, labels] + (smoothing / z.shape[1]) * z.sum(axis=1)


def cross_entropy_difference(up: Array, down: Array, labels: Array, smoothing: float = 0.0) -> Array:
    """Each row's ``softmax_cross_entropy`` loss at logits ``up`` minus at ``down`` (both ``(n, classes)``): ``(n,)``.

    Written as ``log(sum_c p_c e^d_c) - target . d`` (``p`` the softmax of
    ``down``, ``d = up - down``), not as a difference of two losses: near
    log(classes) that subtraction loses everything below ~1e-16 of them, and
    the gradient check's central differences of a tiny init are a million
    times smaller. The target is the loss's own (``_target_dot``).
    """
    d = up - down
    p = np.exp(down - down.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.log1p((p * np.expm1(d)).sum(axis=1)) - _target_dot(d, np.arange(len(labels)), labels, smoothing)


def backward(
    net: Network, trace: Trace, grad_logits: Array, buffers: Buffers | None = None, beta: float = 0.0
) -> list[Array]:
    """Gradients ``[dW0, db0, dW1, db1, …]`` (the order of ``parameters()``).

    Walks from the output back: each layer turns the gradient at its output
    into its weight gradient and, through its dropout mask and the
    activation's derivative, the gradient at the previous layer's output.
    ``buffers`` (from a ``Workspace``) receive the results instead of new arrays.
    ``beta`` accumulates instead: each gradient buffer becomes ``beta`` times
    what it held plus the gradient, in the same matrix product (SGD's momentum;
    see ``blas.accumulate_product``). It needs buffers. A normalisation's
    gradients (training mode) follow, ``[dscale0, dshift0, …]``.
    """
    n_layers, norm = len(net.weights), net.norm
    out = buffers or Buffers.none(n_layers)
    grads: list[Array] = [grad_logits] * (2 * n_layers)
    if norm is not None:
        grads += [grad_logits] * (2 * n_layers - 2)
    delta = grad_logits
    for layer in range(n_layers - 1, -1, -1):
        # inputs.T is a transposed view: BLAS reads it as is, no copy is made.
        grads[2 * layer] = accumulate_product(trace.inputs[layer], delta, out.grads[2 * layer], beta)
        grads[2 * layer + 1] = _bias_gradient(delta, out.grads[2 * layer + 1], beta)
        if layer > 0:
            delta = np.matmul(delta, net.weights[layer].T, out=out.delta[layer - 1])
            if trace.masks[layer] is not None:
                delta *= trace.masks[layer]
            delta *= net.activation.derivative(trace.pre[layer - 1], trace.post[layer - 1])
            if norm is not None:
                _norm_backward(norm, layer - 1, delta, trace, out, grads, beta)
    return grads


def _norm_backward(norm: NormLayers, hidden: int, delta: Array, trace: Trace, out: Buffers, grads: list[Array],
                   beta: float) -> None:
    """Turn ``delta``, the gradient at hidden layer ``hidden``'s normalised output, into the gradient at its
    affine output (in place), and set its scale's and shift's gradients in ``grads``."""
    _, d_scale, d_shift = norm.backward(hidden, delta, trace.norms[hidden])
    first = 2 * len(trace.inputs) + 2 * hidden
    for k, value in ((first, d_scale), (first + 1, d_shift)):
        grads[k] = _store(value, out.grads[k] if k < len(out.grads) else None, beta)


def _store(value: Array, out: Array | None, beta: float) -> Array:
    """``value`` into ``out`` or, with ``beta``, added to ``beta * out``; ``value`` itself without ``out``."""
    if out is None:
        if beta:
            raise ValueError("accumulating a gradient needs the array to accumulate into")
        return value
    if not beta:
        np.copyto(out, value)
        return out
    if beta != 1.0:
        out *= beta
    out += value
    return out


def _bias_gradient(delta: Array, out: Array | None, beta: float) -> Array:
    """The column sums of ``delta``, into ``out`` or, with ``beta``, added to ``beta * out``."""
    # np.add.reduce is np.sum without its Python wrapper: the same sums, less overhead a call.
    if not beta:
        return np.add.reduce(delta, axis=0, out=out)
    if out is None:
        raise ValueError("accumulating a gradient needs the array to accumulate into")
    if beta != 1.0:
        out *= beta
    out += np.add.reduce(delta, axis=0)
    return out


def l2_penalty(net: Network, weight_decay: float) -> float:
    """``weight_decay / 2 * sum(W**2)`` over the weights (biases are not decayed)."""
    return 0.5 * weight_decay * float(sum(np.vdot(w, w) for w in net.weights))


def loss_and_gradients(
    net: Network, x: Array, labels: Array, weight_decay: float = 0.0,
    masks: list[Array | None] | None = None, workspace: Workspace | None = None,
    grad_scale: float = 1.0, grad_beta: float = 0.0, label_smoothing: float = 0.0, update: bool = False,
) -> tuple[float, list[Array], Array]:
    """Data loss, parameter gradients and logits for one batch: forward then backward.

    ``weight_decay`` adds the gradient of ``l2_penalty`` (``weight_decay * W``)
    to each weight gradient; the loss returned is the cross-entropy alone, so
    it compares with validation losses (with ``label_smoothing``, the smoothed
    cross-entropy training minimises). ``masks`` turns on dropout.
    ``grad_scale`` multiplies every gradient; backward is linear in the
    logits' gradient, so the factor is applied there, to an ``(n, classes)``
    array, instead of to every parameter's gradient. ``grad_beta`` makes the
    workspace's gradient arrays accumulate: they become ``grad_beta`` times
    what they held plus the (scaled) gradients. Batch norm runs in training
    mode (the batch's statistics); ``update`` folds them into its running ones.
    With a ``workspace`` the gradients and logits live in it (see ``Workspace``).
    """
    buffers = workspace.buffers(len(x)) if workspace else None
    trace = forward(net, x, masks, buffers, True, update)
    loss, grad_logits = softmax_cross_entropy(trace.logits, labels, label_smoothing)
    if grad_scale != 1.0:
        grad_logits *= grad_scale
    grads = backward(net, trace, grad_logits, buffers, grad_beta)
    if weight_decay:
        for w, g in zip(net.weights, grads[0::2]):
            g += (grad_scale * weight_decay) * w
    return loss, grads, trace.logits


def apply_max_norm(net: Network, max_norm: float) -> None:
    """Rescale, in place, every unit's incoming weight vector (a column of ``W``) to norm <= ``max_norm``."""
    for w in net.weights:
        norms = np.sqrt(np.einsum("ij,ij->j", w, w))
        scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-12)).astype(w.dtype)
        w *= scale
