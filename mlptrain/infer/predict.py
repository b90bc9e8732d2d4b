"""A run's network loaded for prediction, class probabilities through the one forward core, top-k rows.

The rows go through ``mlptrain.nn.network.forward`` in chunks, each into a
preallocated ``Workspace`` (no gradient arrays) per worker thread, so a large
array file costs a chunk of float memory per thread, not a float copy of the
whole file. Workers take the next chunk when they finish one (a shared queue),
not a fixed half each: the two cores of a shared machine need not run at the
same speed (see ``probabilities``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain.data.prepare import PREPROCESSING
from mlptrain.errors import ConfigError, RunDirError
from mlptrain.nn.network import Network, Workspace, forward
from mlptrain.runs.files import WEIGHTS_FILE, class_names, load_weights

Array = np.ndarray
# Rows per forward call: small enough that the chunks share out evenly between unequal cores, large
# enough for efficient products (the chunk sizes tried are in docs/predict.md). One size for any number
# of workers keeps the numbers equal.
CHUNK = 500


@dataclass
class Model:
    """A trained network and what its inputs and outputs mean."""

    net: Network
    image_shape: tuple[int, int]
    class_names: tuple[str, ...]
    dataset: str
    preprocess: str = "mnist"  # how the run prepared image files (runs from before it was recorded: mnist)
    weights_file: Path | None = None  # where the network was read from, for messages

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
    preprocess = str(meta.get("preprocess", "mnist"))
    if preprocess not in PREPROCESSING:
        raise RunDirError(f"{run_dir / WEIGHTS_FILE} records an unknown preprocessing {preprocess!r}; "
                          f"give --preprocess ({', '.join(PREPROCESSING)})")
    return Model(net, (int(shape[0]), int(shape[1])), class_names(meta, net.sizes[-1]), dataset, preprocess,
                 run_dir / WEIGHTS_FILE)


def check_outputs(model: Model, probs: Array, source: str) -> None:
    """RunDirError unless every probability for ``source`` is finite: never print or return a NaN."""
    if not np.isfinite(probs).all():
        raise RunDirError(f"the network in {model.weights_file} gives NaN or infinite outputs for {source}: its "
                          "weights are so large that the products overflow; the file is damaged: re-run fit")


def probabilities(net: Network, images: Array, chunk: int = CHUNK, workers: int = 1) -> Array:
    """Softmax class probabilities ``(n, classes)`` float32 for rows ``(n, pixels)`` (uint8 0-255 or floats 0-1).

    ``workers`` threads take chunks from a shared queue, with the BLAS on one thread (call inside
    ``blas_threads(1)``): NumPy releases the GIL in the products and the elementwise work alike, so
    every core stays busy. One stream on a multi-threaded BLAS leaves the other cores idle in the
    ReLUs, the bias additions and the softmax. A fixed share per worker would wait for the slowest
    core, and cores of one machine do not always run at one speed (docs/predict.md). Each chunk's
    numbers are the same whichever thread computes it, so the predictions do not depend on ``workers``.
    """
    n = len(images)
    out = np.empty((n, net.sizes[-1]), np.float32)
    queue = _ChunkQueue(n, chunk)
    workers = max(1, min(workers, len(queue)))
    if workers == 1:
        _forward_chunks(net, images, out, queue, chunk)
        return out
    with ThreadPoolExecutor(workers, thread_name_prefix="mlptrain-predict") as pool:
        jobs = [pool.submit(_forward_chunks, net, images, out, queue, chunk) for _ in range(workers)]
        try:
            for job in jobs:
                job.result()  # re-raises a worker's exception here
        except BaseException:  # Ctrl-C or SIGTERM in this thread: the workers stop after their chunk
            queue.close()
            raise
    return out


class _ChunkQueue:
    """The first row of every ``chunk`` rows of ``n``, each handed out once, to whichever thread asks next."""

    def __init__(self, n: int, chunk: int) -> None:
        self._starts = iter(range(0, n, chunk))
        self._count = len(range(0, n, chunk))
        self._lock = threading.Lock()  # next() on a shared iterator is atomic only under the GIL

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Hand out no more chunks."""
        with self._lock:
            self._starts = iter(())

    def __iter__(self) -> Iterator[int]:
        while True:
            with self._lock:
                start = next(self._starts, None)
            if start is None:
                return
            yield start


def _forward_chunks(net: Network, images: Array, out: Array, starts: _ChunkQueue, chunk: int) -> None:
    """The rows from each start ``starts`` hands this thread (``chunk`` of them) forward and softmaxed into ``out``."""
    if not len(starts):
        return
    rows_max = min(chunk, len(images))
    workspace = Workspace(net, rows_max, grads=[])
    scaled = np.empty((rows_max, net.sizes[0]), net.dtype)
    for start in starts:
        rows = images[start:start + chunk]
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by check_outputs, once
            logits = forward(net, _as_inputs(rows, scaled), buffers=workspace.buffers(len(rows))).logits
            softmax(logits, out[start:start + len(rows)])


def _as_inputs(rows: Array, buffer: Array) -> Array:
    """``rows`` as the net's input floats: uint8 scaled into ``buffer`` as training scaled them, floats as they are."""
    if rows.dtype == buffer.dtype and rows.flags.c_contiguous:
        return rows  # already the net's floats (in [0, 1]: inputs._rows checks files): no copy
    batch = buffer[:len(rows)]
    np.copyto(batch, rows, casting="unsafe")  # -> float, into the same buffer every chunk
    if rows.dtype == np.uint8:
        batch *= 1.0 / 255.0  # the scaling training used (data.loading.gather_batch)
    return batch


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
    if k == 1:  # argmax: a SIMD loop, far faster than sorting the rows, same first index on ties
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
