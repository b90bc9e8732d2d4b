"""Keeping subnormal floats out of the training state: a deterministic flush, not CPU flags.

An entry of an optimizer's state whose gradient stays exactly 0 (a pixel that
is always blank after the first batches, a dead unit, a dropped input) decays
geometrically: Adam's ``m *= beta1`` every step, SGD's ``v *= mu``. It passes
float32's smallest normal (1.2e-38) after a few hundred steps and then never
reaches 0: ``0.9 * 4 ulp`` rounds back to 4 ulp, so it sits in the subnormal
range for good. Every elementwise operation on such an operand takes the CPU's
slow path (about 100 cycles on some CPUs, far less on others), and over a long
run a large share of an AdamW first moment ends up subnormal: epochs can take
twice as long (the measurements are in docs/numerics.md).

Two cures were weighed. Setting the CPU's flush-to-zero and denormals-are-zero
flags (MXCSR on x86, FPCR on ARM) has no Python API: it needs a compiled helper
per architecture and OS, it changes every float operation of the thread,
including code that is not ours running in the same process (so it would have
to be scoped and restored around every step), it does not reach the BLAS
threads, which have their own flag registers, and it makes results depend on
the CPU's flag support. Zeroing the subnormal entries is plain NumPy: the same
bits on x86 and ARM, Linux and macOS, no effect on anything outside the arrays
it is given, and (being deterministic) it keeps runs and resumed runs
reproducible. It costs three passes over an array, so it runs on a schedule:
the optimizers whose state decays every step flush it every ``FLUSH_EVERY``
steps, and the trainer flushes the state and the parameters after every epoch.

Only subnormals change: 0 stays 0 and keeps its sign (``x * 0``), normals are
untouched. A subnormal is below the precision of any weight or moment it could
meet in an update (the default run's weights are bit for bit the same).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

# A flush of m and v costs about ten passes over a weight matrix where Adam's step makes
# fourteen: every 32 steps that is 2% of Adam's elementwise work, and an entry spends at
# most 32 steps subnormal before it is zeroed.
FLUSH_EVERY = 32
_TINY = {np.dtype(t).char: np.finfo(t).tiny for t in (np.float16, np.float32, np.float64)}


def smallest_normal(dtype: np.dtype) -> float:
    """The smallest positive normal float of ``dtype`` (float32's for a dtype that is not a float)."""
    return float(_TINY.get(np.dtype(dtype).char, _TINY["f"]))


def flush_subnormals(x: Array, scratch: Array | None = None) -> None:
    """Set ``x``'s subnormal entries to 0 (of their sign), in place.

    ``scratch``, an array of ``x``'s shape and dtype that may be overwritten, saves an allocation.
    """
    tiny = _TINY.get(x.dtype.char)
    if tiny is None:  # not a float array: nothing can be subnormal
        return
    magnitude = np.abs(x, out=scratch)
    small = np.less(magnitude, tiny)
    np.multiply(x, 0, out=x, where=small)  # zeros are "small" too: 0 * 0 leaves them as they are


def count_subnormals(arrays: list[Array]) -> int:
    """How many entries of ``arrays`` are subnormal (non-zero and below the dtype's smallest normal)."""
    total = 0
    for x in arrays:
        tiny = _TINY.get(x.dtype.char)
        if tiny is not None:
            total += int(np.count_nonzero((x != 0) & (np.abs(x) < tiny)))
    return total
