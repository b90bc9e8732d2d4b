"""The table of normalisations: name -> (axis of the statistics, running statistics, ONNX form).

A normalisation sits in every hidden layer between the affine map and the
activation: ``y = scale * (z - mean) / sqrt(var + eps) + shift``, with a
learnable ``scale`` (init 1) and ``shift`` (init 0) per unit. Batch norm
(Ioffe & Szegedy 2015) takes the mean and variance of each unit over the
batch (axis 0) and keeps running averages of them, which inference uses in
place of a batch's; layer norm (Ba et al. 2016) takes them over each sample's
units (axis 1), the same in training and inference. Both rows share one
forward and one backward formula, parametrised by the axis, so the network's
core calls ``NormLayers.forward``/``backward`` and knows no row. ``none``
is no row: a net without normalisation has ``Network.norm is None`` and its
step does no extra work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from mlptrain.errors import ConfigError
from mlptrain.nn.activations import OnnxGraph

Array = np.ndarray
NONE = "none"


class NormOnnxGraph(OnnxGraph, Protocol):
    """An ``OnnxGraph`` that also takes named float32 arrays (a layer's scale, shift and statistics)."""

    def initialize(self, value: Array, name: str) -> str:
        """Add ``value`` as a float32 initializer called ``name``; returns ``name``."""
        ...


# (graph, input name, layer's arrays by name (scale, shift, mean, var), eps) -> output name
NormOnnxForm = Callable[[NormOnnxGraph, str, dict[str, str], float], str]


def _batch_onnx(graph: NormOnnxGraph, x: str, arrays: dict[str, str], eps: float) -> str:
    # Inference mode (training_mode 0, the default): the running statistics are inputs.
    inputs = [x, arrays["scale"], arrays["shift"], arrays["running_mean"], arrays["running_var"]]
    return graph.node("BatchNormalization", inputs, epsilon=eps)


def _layer_onnx(graph: NormOnnxGraph, x: str, arrays: dict[str, str], eps: float) -> str:
    return graph.node("LayerNormalization", [x, arrays["scale"], arrays["shift"]], axis=-1, epsilon=eps)


@dataclass(frozen=True)
class Norm:
    """One row: ``axis`` the statistics are taken over, whether inference uses running statistics."""

    name: str
    axis: int  # 0: each unit over the batch; 1: each sample over its units
    running: bool
    onnx_form: NormOnnxForm
    description: str


NORMS: dict[str, Norm] = {
    norm.name: norm
    for norm in (
        Norm("batch", 0, True, _batch_onnx,
             "batch norm: each unit over the batch; running mean and variance for inference"),
        Norm("layer", 1, False, _layer_onnx, "layer norm: each sample over its layer's units"),
    )
}


def norm_names() -> list[str]:
    """The names a user may type: ``none`` and the table's rows."""
    return [NONE, *NORMS]


def get_norm(name: str) -> Norm:
    """Look a normalisation up by name; ConfigError lists the choices."""
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}; choose one of: {', '.join(norm_names())}")
    return NORMS[name]


def check_batches(name: str, n_train: int, batch_size: int) -> None:
    """ConfigError when batch norm would meet a batch of one (no spread to normalise) in an epoch of ``n_train``."""
    if name == "batch" and (batch_size < 2 or n_train % batch_size == 1):
        raise ConfigError(
            f"norm batch cannot train on a batch of one image ({n_train} training images in batches of "
            f"{batch_size}, the last holds one); change batch_size or val_size by one, or use norm layer"
        )


@dataclass
class NormLayers:
    """A network's normalisations: per hidden layer ``l`` a ``scale[l]`` and ``shift[l]`` ``(width,)``,
    and for a row with running statistics ``running_mean[l]`` and ``running_var[l]`` ``(width,)``."""

    kind: Norm
    scales: list[Array]
    shifts: list[Array]
    running_mean: list[Array]
    running_var: list[Array]
    eps: float = 1e-5
    momentum: float = 0.9  # running = momentum * running + (1 - momentum) * batch's

    @classmethod
    def fresh(cls, name: str, widths: list[int], dtype: np.dtype | type, eps: float, momentum: float) -> NormLayers:
        """Scale 1, shift 0, running mean 0 and variance 1 for hidden layers of ``widths``."""
        kind = get_norm(name)
        ones = [np.ones(w, dtype) for w in widths]
        zeros = [np.zeros(w, dtype) for w in widths]
        running = kind.running
        return cls(kind, ones, zeros, [z.copy() for z in zeros] if running else [],
                   [o.copy() for o in ones] if running else [], eps, momentum)

    def parameters(self) -> list[Array]:
        """``[scale0, shift0, scale1, …]``: what the optimizer updates."""
        return [p for pair in zip(self.scales, self.shifts) for p in pair]

    def statistics(self) -> list[Array]:
        """``[running_mean0, running_var0, …]``: state that is no parameter (empty for layer norm)."""
        return [s for pair in zip(self.running_mean, self.running_var) for s in pair]

    def forward(self, layer: int, z: Array, train: bool, update: bool) -> tuple[Array, tuple[Array, Array]]:
        """Normalise hidden layer ``layer``'s ``z`` ``(n, width)``; returns ``y`` and ``(xhat, inv_std)`` for backward.

        ``z`` is overwritten with ``xhat``. ``train``: batch norm uses the batch's
        statistics (``update``: and folds them into the running ones), else the
        running ones. Layer norm always uses the sample's own.
        """
        axis = self.kind.axis
        if self.kind.running and not train:
            mean, var = self.running_mean[layer], self.running_var[layer]
        else:
            if axis == 0 and len(z) < 2:
                raise ConfigError("batch norm needs batches of at least 2 samples to normalise over; "
                                  "choose a larger batch, or norm layer")
            mean = z.mean(axis=axis, keepdims=True)
        z -= mean
        if not self.kind.running or train:
            var = np.mean(np.square(z), axis=axis, keepdims=True)
            if update and self.kind.running:
                self._update_running(layer, mean[0], var[0], len(z))
        inv_std = 1.0 / np.sqrt(var + self.eps)
        z *= inv_std
        y = z * self.scales[layer]
        y += self.shifts[layer]
        return y, (z, inv_std)

    def _update_running(self, layer: int, mean: Array, var: Array, n: int) -> None:
        """Fold a batch's mean and (unbiased) variance ``(width,)`` into the running statistics."""
        m = self.momentum
        self.running_mean[layer] *= m
        self.running_mean[layer] += (1 - m) * mean
        self.running_var[layer] *= m
        self.running_var[layer] += ((1 - m) * n / (n - 1)) * var

    def backward(self, layer: int, dy: Array, cache: tuple[Array, Array]) -> tuple[Array, Array, Array]:
        """From the gradient at ``y`` ``(n, width)``: the gradients of ``z`` (written into ``dy``), scale and shift.

        ``dz = inv_std (dxhat - mean(dxhat) - xhat mean(dxhat xhat))`` with the means
        over the statistics' axis and ``dxhat = scale dy``; training-mode (batch) statistics.
        """
        xhat, inv_std = cache
        axis = self.kind.axis
        d_scale = np.add.reduce(dy * xhat, axis=0)
        d_shift = np.add.reduce(dy, axis=0)
        dy *= self.scales[layer]
        projection = np.mean(dy * xhat, axis=axis, keepdims=True)
        dy -= dy.mean(axis=axis, keepdims=True)
        dy -= xhat * projection
        dy *= inv_std
        return dy, d_scale, d_shift
