"""A NumPy archive ``FILE.npz`` holding ``x_train, y_train, x_test, y_test``, as Keras's ``mnist.npz`` does.

Loaded with ``allow_pickle=False``: an archive holding Python objects is
refused, never unpickled. Images are ``(n, height, width)``, or ``(n, pixels)``
rows of square images (``Preparation.image_shape`` otherwise), uint8 0-255 or
floats 0-1; labels are class numbers. An archive with ``x_test`` and
``y_test`` only is a set to evaluate on.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mlptrain.data.parts import Parts, Preparation, Request, Split, labels_to_uint8, pixels_to_uint8, square_shape
from mlptrain.errors import DataError

KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
ALL_KEYS = ", ".join(key for pair in KEYS.values() for key in pair)


def matches(path: Path) -> bool:
    """A file named ``*.npz``."""
    return path.is_file() and path.suffix.lower() == ".npz"


def load(path: Path, request: Request) -> Parts:
    """The archive's splits; DataError for a pickle, a missing key, or arrays of the wrong kind."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            held = set(archive.files)
            if any(set(keys) & held and not set(keys) <= held for keys in KEYS.values()) or \
                    not set(KEYS["test"]) <= held:
                _missing(path, held)  # half a pair, or no test pair: the layout is not the archive's
            wanted = [split for split in KEYS if (request.need_train or split == "test") and set(KEYS[split]) <= held]
            arrays = {key: archive[key] for split in wanted for key in KEYS[split]}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{path}: the archive holds Python objects (a pickle), which mlptrain never loads; save "
                            "plain uint8 or float arrays with np.savez") from None
        raise DataError(f"{path}: not a readable .npz archive ({exc}); save it again with np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc}); save it again with np.savez") from None
    parts = Parts(details={"format": "npz"})
    for split, (x_key, y_key) in KEYS.items():
        if x_key in arrays:
            setattr(parts, split, _split(path, arrays[x_key], arrays[y_key], x_key, y_key, request.preparation))
    return parts


def _missing(path: Path, held: set[str]) -> None:
    lacking = [key for pair in KEYS.values() for key in pair if key not in held]
    raise DataError(f"{path} lacks {', '.join(lacking)} (it holds {', '.join(sorted(held)) or 'nothing'}); a NumPy "
                    f"archive data set holds {ALL_KEYS} (x_test and y_test alone: a set to evaluate on)")


def _split(path: Path, x: np.ndarray, y: np.ndarray, x_key: str, y_key: str, preparation: Preparation) -> Split:
    """One split's images as ``(n, h, w)`` uint8 and labels as uint8."""
    if x.ndim == 2:
        height, width = square_shape(x.shape[1], preparation.image_shape, f"{path}: {x_key}")
        x = x.reshape(len(x), height, width)
    if x.ndim != 3:
        raise DataError(f"{path}: {x_key} has shape {x.shape}; give images as (n, height, width) or (n, pixels)")
    if len(x) == 0:
        raise DataError(f"{path}: {x_key} holds no images (an empty split); give at least one")
    labels = labels_to_uint8(y, f"{path}: {y_key}")
    if len(labels) != len(x):
        raise DataError(f"{path}: {x_key} holds {len(x)} images but {y_key} holds {len(labels)} labels; "
                        "give one label per image")
    return Split(pixels_to_uint8(x, f"{path}: {x_key}"), labels, f"{path.name}: {x_key}")
