"""Turn a picture of a digit (or a letter) into what MNIST's own pipeline made of one.

MNIST's images are white ink on black, the ink's bounding box scaled
(anti-aliased, aspect kept) into a 20x20 box, placed in 28x28 so that its centre of mass
sits at the centre. A photo or scan is dark ink on light paper, any size, off-centre,
on an uneven, noisy background. ``mnist_style`` undoes that difference: grayscale
(the caller's) -> invert when the border is light -> remove the background level
-> crop to the ink -> scale the longer side to 20/28 of the image side -> centre
of mass where MNIST has it. Other image sizes get the same recipe scaled to their side.
``predict`` and the class-folder data sets both prepare images with ``prepare_image``.
"""

from __future__ import annotations

import numpy as np

from mlptrain.errors import DataError

Array = np.ndarray
PREPROCESSING = ("mnist", "none")  # the --preprocess choices
BOX_FRACTION = 20 / 28  # MNIST: the ink's longer side fills 20 of 28 pixels
# MNIST's mean centre of mass is at row 13.996, column 14.007 (train set; 13.993, 14.008 on the test set), with a
# spread of 0.29 = 1/sqrt(12) on each axis: a whole-pixel shift that puts it at index 14 = side / 2
# (benchmarks/prepare_centre.py measures it).
CENTRE_FRACTION = 14 / 28
MIN_CONTRAST = 0.08  # ink must stand this far (of full scale) above the background, else the image is blank
FAINT = 0.2  # after stretching, what is fainter than this is background noise, not ink
MASS_TRIM = 0.002  # the bounding box leaves out this fraction of the ink mass at each edge (stray specks)
# Ink whose bounding box spans less than this fraction of the image's shorter side (or fewer than MIN_INK_PIXELS
# pixels) is a speck of dirt, not a character: scaled up to 20 pixels it would become a solid block.
MIN_INK_SPAN = 0.03
MIN_INK_PIXELS = 3


def prepare_image(gray: Array, shape: tuple[int, int], preprocess: str, given: str) -> tuple[Array, bool]:
    """``gray`` ``(h, w)`` in [0, 1] -> the net's input image of ``shape`` in [0, 1], and whether it had no ink.

    ``mnist``: ``mnist_style``; ``none``: taken as it is, which needs the right size (DataError naming ``given``)."""
    if preprocess == "mnist":
        return mnist_style(gray, shape)
    if preprocess != "none":
        raise ValueError(f"unknown preprocessing {preprocess!r}")
    if gray.shape != tuple(shape):
        raise DataError(
            f"{given}: the image is {size_text(gray.shape)} but the network takes {size_text(shape)}; "
            "resize it, or use --preprocess mnist"
        )
    return gray.astype(np.float32), not gray.any()


def size_text(shape: tuple[int, ...]) -> str:
    """``28x28 pixels`` (width x height) for an image shape ``(height, width)``."""
    return f"{shape[1]}x{shape[0]} pixels" if len(shape) == 2 else str(shape)


def mnist_style(gray: Array, shape: tuple[int, int]) -> tuple[Array, bool]:
    """``gray`` ``(h, w)`` in [0, 1] -> an image of ``shape`` in [0, 1] and whether it had no ink."""
    ink = ink_layer(gray)
    if ink is None:
        return np.zeros(shape, np.float32), True
    top, bottom, left, right = ink_box(ink)
    if max(bottom - top, right - left) < max(MIN_INK_PIXELS, MIN_INK_SPAN * min(gray.shape)):
        return np.zeros(shape, np.float32), True
    crop = ink[top:bottom, left:right]
    box = max(1, round(min(shape) * BOX_FRACTION))
    image = centre_by_mass(scale_longer_side(crop, box), shape)
    # In 1/255 steps like the data set's uint8 pixels: a --save-preprocessed PNG is exactly what the net saw.
    steps = np.rint(image * 255.0)
    steps *= 1.0 / 255.0  # as data.loading.gather_batch scales uint8, to the last bit
    return steps, False


def ink_layer(gray: Array) -> Array | None:
    """Ink as white on black with the background at 0 and full ink at 1; None when there is no ink."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if _quantile(border, 0.5) > 0.5:  # light paper: MNIST's ink is the bright part
        gray, border = 1.0 - gray, 1.0 - border
    median = _quantile(border, 0.5)
    spread = 1.4826 * _quantile(np.abs(border - median), 0.5)  # the border's noise, robust to ink touching it
    ink = gray - (median + 3.0 * spread)
    np.maximum(ink, 0.0, out=ink)
    if not ink.any():
        return None
    full = _quantile(ink[ink > 0], 0.99)  # the ink's own level: an uneven stroke still reaches 1
    if full < MIN_CONTRAST:
        return None
    ink = np.minimum(ink / full, 1.0)
    ink[ink < FAINT] = 0.0
    return ink.astype(np.float32) if ink.any() else None


def _quantile(values: Array, q: float) -> float:
    """The ``q`` quantile (nearest rank) of a 1-d array.

    Not np.median: it imports numpy.ma first, a noticeable share of predict's start-up."""
    k = min(len(values) - 1, int(q * len(values)))
    return float(np.partition(values, k)[k])


def ink_box(ink: Array) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``, end-exclusive, holding the ink but for stray specks at the edges."""
    top, bottom = _span(ink.sum(axis=1))
    left, right = _span(ink.sum(axis=0))
    return top, bottom, left, right


def _span(mass: Array) -> tuple[int, int]:
    cumulative = np.cumsum(mass) / mass.sum()
    start = int(np.searchsorted(cumulative, MASS_TRIM, side="right"))
    end = int(np.searchsorted(cumulative, 1.0 - MASS_TRIM, side="left")) + 1
    return start, max(end, start + 1)


def scale_longer_side(crop: Array, box: int) -> Array:
    """``crop`` resized (anti-aliased, aspect kept) so that its longer side is ``box`` pixels."""
    from PIL import Image

    height, width = crop.shape
    factor = box / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))  # Pillow: (width, height)
    scaled = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)  # Lanczos rings slightly past the range


def centre_by_mass(patch: Array, shape: tuple[int, int]) -> Array:
    """``patch`` placed in a black image of ``shape`` with its centre of mass at index ``CENTRE_FRACTION`` x side,
    where MNIST's images have it (a whole-pixel shift, as MNIST's)."""
    out = np.zeros(shape, np.float32)
    mass = patch.sum()
    rows, cols = np.indices(patch.shape)
    com = ((rows * patch).sum() / mass, (cols * patch).sum() / mass) if mass > 0 else (0.0, 0.0)
    corner = []
    for axis in range(2):
        start = round(CENTRE_FRACTION * shape[axis] - com[axis])
        corner.append(min(max(start, 0), shape[axis] - patch.shape[axis]))
    out[corner[0]:corner[0] + patch.shape[0], corner[1]:corner[1] + patch.shape[1]] = patch
    return out
