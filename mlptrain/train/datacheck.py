"""The data check, beside the init check: the training images as the net sees them (scaled to [0, 1]).

Four numbers, cheap to get once per run: the pixels' mean and standard
deviation and the border's brightness (the mean of the outer pixels) on the
probe batch, and, over the whole training set, the brightest pixel and the
share of pixels that are the same in every image. Each finding is a warning
whose cause is ``inputs``.
"""

from __future__ import annotations

import numpy as np

from mlptrain.train.advice import Context, explain
from mlptrain.train.causes import diagnose_inputs
from mlptrain.train.diagnostics import HealthWarning

Array = np.ndarray

# The border's mean brightness above which the background is light: MNIST's is 0.0002, Fashion-MNIST's
# 0.048; MNIST inverted (dark ink on white) 0.9998, Fashion-MNIST inverted 0.95. The middle of the range,
# where predict's preprocessing decides to invert a photo.
INVERTED_BORDER = 0.5
# Pixel standard deviation below which the images use a sliver of the 0-1 range: MNIST's is 0.31,
# Fashion-MNIST's 0.35; the same images stored as 0-15 (as scikit-learn's 8x8 digits are, 0-16) 0.019, 0.022.
FAINT_STD = 0.05
# Share of pixels constant over the whole training set above which most of the image carries nothing:
# MNIST has 8.5% (its corners), Fashion-MNIST 0%.
CONSTANT_SHARE = 0.5


def input_stats(images: Array, sample: Array, shape: tuple[int, ...]) -> dict[str, float]:
    """Statistics of uint8 ``images`` ``(n, pixels)`` and of ``sample`` ``(m, pixels)``, some of them scaled
    to [0, 1] as the net sees them; ``shape`` is one image's."""
    s = sample.astype(np.float64, copy=False)
    return {
        "mean": float(s.mean()), "std": float(s.std()), "border": _border(s, shape),
        "brightest": float(images.max()) / 255.0,
        "constant": float(np.mean(images.min(axis=0) == images.max(axis=0))),
    }


def _border(sample: Array, shape: tuple[int, ...]) -> float:
    """The mean of the outer ring of pixels (of a 2-d image; of all pixels otherwise)."""
    if len(shape) != 2 or min(shape) < 3:
        return float(sample.mean())
    ring = np.ones(shape, bool)
    ring[1:-1, 1:-1] = False
    return float(sample[:, ring.ravel()].mean())


def input_warnings(stats: dict[str, float]) -> list[HealthWarning]:
    """What the statistics say is wrong with the inputs (epoch 0; without cause: see ``check_data``)."""
    found = []
    if stats["constant"] > CONSTANT_SHARE:
        found.append(HealthWarning("constant-inputs", 0, None,
                                   f"{stats['constant']:.0%} of the pixels are the same in every training image "
                                   f"(warned above {CONSTANT_SHARE:.0%})"))
    elif stats["std"] < FAINT_STD:
        found.append(HealthWarning("faint-inputs", 0, None,
                                   f"the pixels vary by only {stats['std']:.3f} (std; warned below {FAINT_STD:g}, "
                                   f"MNIST's is 0.31), the brightest being {stats['brightest']:.3f} of 1"))
    if stats["border"] > INVERTED_BORDER:
        found.append(HealthWarning("inverted-inputs", 0, None,
                                   f"the images have a light background: their border averages "
                                   f"{stats['border']:.2f} of 1 (warned above {INVERTED_BORDER:g}), and the ink "
                                   "is the dark part"))
    return found


def check_data(images: Array, sample: Array, shape: tuple[int, ...], ctx: Context
               ) -> tuple[dict[str, float], list[HealthWarning]]:
    """The data check: the statistics, and each finding as a warning whose cause is the inputs."""
    stats = input_stats(images, sample, shape)
    return stats, [explain(w, diagnose_inputs(w.code, stats), ctx) for w in input_warnings(stats)]
