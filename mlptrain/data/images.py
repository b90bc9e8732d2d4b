"""Image files read as grayscale floats: one place that decides what an image file is and how it is read.

``image_extensions`` is what Pillow can open (not every extension it knows:
some it can only write, such as ``.pdf``, and some are stubs that identify a
file but cannot decode it, such as ``.h5``); ``read_image`` reads one file to
grayscale floats in [0, 1] with Pillow's decompression-bomb limit enforced as
an error. ``predict`` and the class-folder data sets both read through here.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mlptrain.errors import DataError

Array = np.ndarray
IMAGE_HINT = "give a PNG, JPEG, BMP, GIF, TIFF or PGM file"


@functools.cache
def image_extensions() -> frozenset[str]:
    """The file extensions (lower case, with the dot) of the formats Pillow can open and decode."""
    from PIL import Image, ImageFile

    Image.init()  # registers every format plugin, and with it their file extensions

    def decodes(fmt: str) -> bool:
        factory = Image.OPEN.get(fmt, (None,))[0]
        return factory is not None and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))

    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if decodes(fmt))


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a file named like an image Pillow can open (hidden files are not)."""
    return not path.name.startswith(".") and path.suffix.lower() in image_extensions() and path.is_file()


def read_image(path: Path | BinaryIO, given: str) -> Array:
    """The image at ``path`` (a file, or a stream of its bytes) as grayscale floats in [0, 1], ``(height, width)``;
    DataError naming it as ``given``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        # Over MAX_IMAGE_PIXELS Pillow only warns (up to twice that, then it raises): refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                image.load()  # decode now: a truncated file fails here, not later
                # A phone stores a photo unrotated plus an EXIF orientation tag: turn it upright.
                return _gray(ImageOps.exif_transpose(image), given)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(
                f"{given}: refused as a possible decompression bomb: {exc} (Pillow's limit, "
                f"Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}); scale the image down first"
            ) from None
        except UnidentifiedImageError:
            raise DataError(f"{given}: not an image Pillow can read; {IMAGE_HINT}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise DataError(f"{given}: unreadable or truncated image ({exc}); open and re-save it") from None


def _gray(image, given: str) -> Array:
    """Grayscale floats in [0, 1]; transparency is laid over white paper."""
    from PIL import Image

    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float32)
        if not (np.isfinite(values).all() and values.min(initial=0) >= 0):  # a float TIFF can hold anything
            raise DataError(f"{given}: pixel values that are NaN, infinite or negative; save it as an 8-bit or "
                            "16-bit image")
        return values * np.float32(1.0 / _full_scale(image.mode, values))
    if "A" in image.mode or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    gray *= 1.0 / 255.0  # as data.loading.gather_batch scales uint8, to the last bit
    return gray


def _full_scale(mode: str, values: Array) -> float:
    """What white is in a wide-range image: 1 for floats already in [0, 1] (scientific TIFFs), else 255 or 65535."""
    top = float(values.max()) if values.size else 0.0
    if mode == "F" and top <= 1.0:
        return 1.0
    return 65535.0 if top > 255 else 255.0
