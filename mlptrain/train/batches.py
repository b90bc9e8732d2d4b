"""The training batches of an epoch: gathered, augmented when the config says so, prepared one ahead.

Without augmentation a batch is a gather and a scale, done in line. With it,
resampling a batch costs milliseconds of NumPy. A worker thread can prepare
batch b + 1 while the step on batch b runs (NumPy releases the GIL in its loops),
but only a core the step's BLAS leaves free makes that pay: with every core
running BLAS threads it made epochs slower (``benchmarks/augment.py``; the numbers
are in docs/augmentation.md). So batches are prepared ahead only when there is
a spare core (``threads.spare_core``), and never for an augmentation that calls
BLAS, which a worker would wait for (``Augmentation.threadable``).
Each batch's distortions come from a generator keyed by the optimizer step it
feeds (``augment.batch_rng``), so the thread's timing never changes a number and
a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterator

import numpy as np

from mlptrain.data.augment import augment_batch, batch_rng, threadable
from mlptrain.data.loading import Dataset, gather_batch
from mlptrain.threads import spare_core

Array = np.ndarray
Batch = tuple[Array, Array, Array]  # indices, images (n, pixels) as the net's floats, labels


class BatchSource:
    """Serves the training batches of ``data`` in a given order."""

    def __init__(
        self, data: Dataset, dtype: np.dtype, batch_size: int, augment: tuple[str, ...],
        seed: np.random.SeedSequence, prefetch: bool | None = None,
    ) -> None:
        """``prefetch`` None: ahead when it can pay (a spare core, a threadable augmentation)."""
        self.data, self.dtype, self.batch_size = data, dtype, batch_size
        self.augment, self.seed = augment, seed
        if prefetch is None:
            prefetch = bool(augment) and threadable(augment) and spare_core()
        self.prefetch = prefetch and bool(augment)
        # Two buffers: the step reads one while the worker fills the other.
        pixels = data.n_inputs
        self._buffers = [np.empty((batch_size, pixels), dtype) for _ in range(2)] if augment else []

    def batches(self, order: Array, first_step: int) -> Iterator[Batch]:
        """The batches of ``order`` in turn; the first one feeds optimizer step ``first_step``."""
        starts = range(0, len(order), self.batch_size)
        if not self.prefetch:
            for b, start in enumerate(starts):
                yield self._batch(order[start:start + self.batch_size], first_step + b, b % 2)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="mlptrain-augment") as worker:
            pending: Future[Batch] | None = None
            for b, start in enumerate(starts):
                current = pending.result() if pending else self._batch(order[start:start + self.batch_size],
                                                                       first_step + b, b % 2)
                if b + 1 < len(starts):
                    nxt = starts[b + 1]
                    pending = worker.submit(self._batch, order[nxt:nxt + self.batch_size], first_step + b + 1,
                                            (b + 1) % 2)
                yield current

    def _batch(self, indices: Array, step: int, buffer: int) -> Batch:
        labels = self.data.train_labels[indices]
        if not self.augment:
            return indices, gather_batch(self.data.train_images, indices, self.dtype), labels
        shape = self.data.image_shape
        out = self._buffers[buffer][:len(indices)]
        rng = batch_rng(self.seed, step)
        return indices, augment_batch(self.data.train_images[indices], shape, self.augment, rng, out), labels

    def preview(self, indices: Array, draws: int) -> Array:
        """Training images ``indices`` as stored and under ``draws`` random distortions, by the code and
        with the generators of the first ``draws`` steps (their values differ from a step's: they depend
        on how many images a generator serves): ``(draws + 1, n, pixels)`` floats in [0, 1] (plots/augment.py)."""
        images = self.data.train_images[indices]
        shown = [gather_batch(self.data.train_images, indices, np.float32)]
        for step in range(draws):
            out = np.empty(shown[0].shape, np.float32)
            shown.append(augment_batch(images, self.data.image_shape, self.augment, batch_rng(self.seed, step), out))
        return np.stack(shown)
