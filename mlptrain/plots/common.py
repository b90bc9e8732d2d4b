"""What every plot shares: matplotlib on the Agg backend, imported only when a plot is drawn, and atomic PNGs.

matplotlib is imported in this package only, so the rest of mlptrain (and
``mlptrain --help``) never pays for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlptrain.fsutil import atomic_write


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    pyplot().close(fig)
    return path
