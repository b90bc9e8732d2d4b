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

    ``inputs[l]`` is the input of layer ``l`` (``inputs[0]`` is ``x``);
    ``pre[l]`` is the pre-activation of hidden layer ``l``.
    """

    inputs: list[Array]
    pre: list[Array]
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


def forward(net: Network, x: Array) -> Trace:
    """Run ``x`` ``(n, sizes[0])`` through the net, keeping what backward needs."""
    inputs, pre = [x], []
    a = x
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = a @ w
        z += b
        a = net.activation.function(z)
        pre.append(z)
        inputs.append(a)
    logits = a @ net.weights[-1]
    logits += net.biases[-1]
    return Trace(inputs, pre, logits)


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
    into its weight gradient and, through the activation's derivative, the
    gradient at the previous layer's output.
    """
    grads: list[Array] = []
    delta = grad_logits
    for layer in range(len(net.weights) - 1, -1, -1):
        grads += [delta.sum(axis=0), trace.inputs[layer].T @ delta]
        if layer > 0:
            delta = delta @ net.weights[layer].T
            z, a = trace.pre[layer - 1], trace.inputs[layer]
            delta *= net.activation.derivative(z, a)
    return grads[::-1]


def loss_and_gradients(net: Network, x: Array, labels: Array) -> tuple[float, list[Array], Array]:
    """Loss, parameter gradients and logits for one batch: forward then backward."""
    trace = forward(net, x)
    loss, grad_logits = softmax_cross_entropy(trace.logits, labels)
    return loss, backward(net, trace, grad_logits), trace.logits
