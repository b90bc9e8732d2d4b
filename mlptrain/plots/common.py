"""What every plot shares: matplotlib on the Agg backend, imported only when a plot is drawn, and atomic PNGs.

matplotlib is imported in this package only, so the rest of mlptrain (and
``mlptrain --help``) never pays for it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mlptrain.fsutil import atomic_write


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def preload() -> None:
    """Import matplotlib in a background thread, for a command that computes before it plots.

    The import is about a second of Python; NumPy's matrix products release the
    GIL, so it overlaps the computation. Python's import lock makes a later
    ``pyplot()`` wait for it to finish rather than import twice.
    """
    threading.Thread(target=pyplot, name="mlptrain-import-matplotlib", daemon=True).start()


def save(fig: Any, path: Path, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG atomically. ``tight=False`` skips the bounding-box pass (a second draw of
    the whole figure), for figures whose constrained layout already keeps everything inside."""
    options = {"bbox_inches": "tight"} if tight else {}
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, **options))
    pyplot().close(fig)
    return path
