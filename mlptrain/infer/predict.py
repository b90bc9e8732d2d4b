"""A run's network loaded for prediction, class probabilities through the one forward core, top-k rows.

The rows go through ``mlptrain.nn.network.forward`` in chunks, each into the
same preallocated ``Workspace`` (no gradient arrays), so a large array file
costs one chunk of float memory, not a float copy of the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.errors import ConfigError, RunDirError
from mlptrain.nn.network import Network, Workspace, forward
from mlptrain.runs.files import WEIGHTS_FILE, class_names, load_weights

Array = np.ndarray
# Rows per forward call on one BLAS thread: 1000 were fastest (of 250 to 10,000; 784-256-256-10 and -1024-1024-).
CHUNK = 1000


def chunk_rows(threads: int) -> int:
    """Rows per forward call for ``threads`` BLAS threads: each call must give every thread enough rows to
    amortize waking it (2 threads, 784-256-256-10: 1000 rows ran 0.6x, 2000 0.7x of 4000; 4000 and 5000 tied)."""
    return CHUNK if threads <= 1 else 2 * CHUNK * threads


@dataclass
class Model:
    """A trained network and what its inputs and outputs mean."""

    net: Network
    image_shape: tuple[int, int]
    class_names: tuple[str, ...]
    dataset: str

    @property
    def n_classes(self) -> int:
        return self.net.sizes[-1]


def load_model(run_dir: Path) -> Model:
    """The network in ``run_dir/weights.npz`` with its image shape and class names; RunDirError otherwise."""
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    net, meta = load_weights(run_dir / WEIGHTS_FILE)
    shape = meta.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and int(np.prod(shape)) == net.sizes[0]):
        side = int(round(net.sizes[0] ** 0.5))
        if side * side != net.sizes[0]:
            raise RunDirError(f"{run_dir / WEIGHTS_FILE} records no image shape for {net.sizes[0]} inputs")
        shape = [side, side]
    dataset = str(meta.get("dataset", "unknown"))
    return Model(net, (int(shape[0]), int(shape[1])), class_names(meta, net.sizes[-1]), dataset)


def probabilities(net: Network, images: Array, chunk: int = CHUNK) -> Array:
    """Softmax class probabilities ``(n, classes)`` float32 for rows ``(n, pixels)`` (uint8 0-255 or floats 0-1).

    ``chunk``: rows per forward call; ``chunk_rows(threads)`` is the measured best.
    """
    n = len(images)
    out = np.empty((n, net.sizes[-1]), np.float32)
    if n == 0:
        return out
    workspace = Workspace(net, min(chunk, n), grads=[])
    scaled = np.empty((min(chunk, n), net.sizes[0]), net.dtype)
    for start in range(0, n, chunk):
        rows = images[start:start + chunk]
        batch = scaled[:len(rows)]
        np.copyto(batch, rows, casting="unsafe")  # uint8 -> float, into the same buffer every chunk
        if rows.dtype == np.uint8:
            batch *= 1.0 / 255.0  # the scaling training used (data.loading.gather_batch)
        logits = forward(net, batch, buffers=workspace.buffers(len(rows))).logits
        softmax(logits, out[start:start + len(rows)])
    return out


def softmax(logits: Array, out: Array) -> Array:
    """Row-wise softmax of ``logits`` ``(n, classes)`` into ``out``, shifted by each row's maximum."""
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=out, casting="unsafe")
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def top_k(probs: Array, k: int) -> tuple[Array, Array]:
    """The ``k`` likeliest classes per row, likeliest first ``(n, k)``, and their probabilities."""
    if not 1 <= k <= probs.shape[1]:
        raise ConfigError(f"--top-k {k}: the network has {probs.shape[1]} classes; choose 1 to {probs.shape[1]}")
    if k == 1:  # argmax: a SIMD loop, 5x faster than sorting the rows, same first index on ties
        order = probs.argmax(axis=1)[:, None]
    else:
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=1)


def records(source: str, indices: Array | None, probs: Array, k: int, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """One dict per row: input, index (array files), predicted, label, probability, top_k."""
    classes, chances = top_k(probs, k)
    rows = []
    for i in range(len(probs)):
        top = [{"class": int(c), "label": names[c], "probability": float(p)} for c, p in zip(classes[i], chances[i])]
        row: dict[str, Any] = {"input": source}
        if indices is not None:
            row["index"] = int(indices[i])
        row.update(predicted=top[0]["class"], label=top[0]["label"], probability=top[0]["probability"], top_k=top)
        rows.append(row)
    return rows
