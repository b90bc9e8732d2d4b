"""The network and its one forward/backward core.

Conventions: arrays are batch-major, ``x`` is ``(n, inputs)``; layer ``l`` maps
``(n, sizes[l])`` to ``(n, sizes[l+1])`` as ``z = a @ W[l] + b[l]`` with
``W[l]`` of shape ``(sizes[l], sizes[l+1])``. Hidden layers apply the
activation, the last layer gives logits, and the loss is the mean softmax
cross-entropy. Training, evaluation and the gradient checks all go through
``forward`` and ``backward`` below: there is no second copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlptrain.activations import Activation, get_activation
from mlptrain.initializers import Initializer

Array = np.ndarray


@dataclass
class Network:
    """Weights ``W[l]`` ``(sizes[l], sizes[l+1])``, biases ``b[l]`` ``(sizes[l+1],)``."""

    weights: list[Array]
    biases: list[Array]
    activation: Activation

    @property
    def sizes(self) -> list[int]:
        """Layer widths from input to output, e.g. ``[784, 256, 256, 10]``."""
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @property
    def dtype(self) -> np.dtype:
        return self.weights[0].dtype

    def parameters(self) -> list[Array]:
        """``[W0, b0, W1, b1, …]``: the arrays an optimizer updates in place."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]


@dataclass
class Trace:
    """What the forward pass keeps for the backward pass.

    ``inputs[l]`` is what layer ``l`` multiplied by its weights (``inputs[0]``
    is ``x``), after dropout; ``pre[l]`` and ``post[l]`` are hidden layer
    ``l``'s pre-activation and activation before dropout; ``masks[l]`` is the
    dropout mask applied to ``inputs[l]`` (None: no dropout there).
    """

    inputs: list[Array]
    pre: list[Array]
    post: list[Array]
    masks: list[Array | None]
    logits: Array


def init_network(
    sizes: list[int],
    activation: str,
    init: Initializer,
    rng: np.random.Generator,
    init_range: float | None = None,
    init_std: float | None = None,
    bias_init: float = 0.0,
    dtype: np.dtype | type = np.float32,
) -> Network:
    """A fresh network of the given layer widths, weights drawn from ``rng``."""
    weights = [
        init.draw(rng, fan_in, fan_out, init_range, init_std, dtype)
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
    ]
    biases = [np.full(fan_out, bias_init, dtype=dtype) for fan_out in sizes[1:]]
    return Network(weights, biases, get_activation(activation))


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


def forward(net: Network, x: Array, masks: list[Array | None] | None = None) -> Trace:
    """Run ``x`` ``(n, sizes[0])`` through the net, keeping what backward needs.

    ``masks`` (from ``dropout_masks``) turns on dropout; evaluation passes none.
    """
    masks = masks or [None] * len(net.weights)
    trace = Trace(inputs=[], pre=[], post=[], masks=masks, logits=x)
    a = x
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        if masks[layer] is not None:
            a = a * masks[layer]
        trace.inputs.append(a)
        z = a @ w
        z += b
        if layer == len(net.weights) - 1:
            trace.logits = z
            break
        a = net.activation.function(z)
        trace.pre.append(z)
        trace.post.append(a)
    return trace


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    The gradient with respect to the logits is ``(softmax - onehot) / n``, the
    fused form that never divides by a probability.
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, labels]))
    grad = exp / sums
    grad[rows, labels] -= 1.0
    grad /= n
    return loss, grad


def backward(net: Network, trace: Trace, grad_logits: Array) -> list[Array]:
    """Gradients ``[dW0, db0, dW1, db1, …]`` (the order of ``parameters()``).

    Walks from the output back: each layer turns the gradient at its output
    into its weight gradient and, through its dropout mask and the
    activation's derivative, the gradient at the previous layer's output.
    """
    grads: list[Array] = []
    delta = grad_logits
    for layer in range(len(net.weights) - 1, -1, -1):
        grads += [delta.sum(axis=0), trace.inputs[layer].T @ delta]
        if layer > 0:
            delta = delta @ net.weights[layer].T
            if trace.masks[layer] is not None:
                delta *= trace.masks[layer]
            delta *= net.activation.derivative(trace.pre[layer - 1], trace.post[layer - 1])
    return grads[::-1]


def l2_penalty(net: Network, weight_decay: float) -> float:
    """``weight_decay / 2 * sum(W**2)`` over the weights (biases are not decayed)."""
    return 0.5 * weight_decay * float(sum(np.vdot(w, w) for w in net.weights))


def loss_and_gradients(
    net: Network, x: Array, labels: Array, weight_decay: float = 0.0,
    masks: list[Array | None] | None = None,
) -> tuple[float, list[Array], Array]:
    """Data loss, parameter gradients and logits for one batch: forward then backward.

    ``weight_decay`` adds the gradient of ``l2_penalty`` (``weight_decay * W``)
    to each weight gradient; the loss returned is the cross-entropy alone, so
    it compares with validation losses. ``masks`` turns on dropout.
    """
    trace = forward(net, x, masks)
    loss, grad_logits = softmax_cross_entropy(trace.logits, labels)
    grads = backward(net, trace, grad_logits)
    if weight_decay:
        for w, g in zip(net.weights, grads[0::2]):
            g += weight_decay * w
    return loss, grads, trace.logits


def apply_max_norm(net: Network, max_norm: float) -> None:
    """Rescale, in place, every unit's incoming weight vector (a column of ``W``) to norm <= ``max_norm``."""
    for w in net.weights:
        norms = np.sqrt(np.einsum("ij,ij->j", w, w))
        scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-12)).astype(w.dtype)
        w *= scale
