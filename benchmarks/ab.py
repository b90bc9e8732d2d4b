#!/usr/bin/env python3
"""A/B of the training step: this checkout's trainer against a git revision's, in one process.

Two processes timed one after the other meet different moods of a shared
machine; two trainers alternating short bursts in one process meet the same
ones. This script extracts ``REV``'s ``mlptrain`` package with ``git
archive`` into a temporary directory under another name, builds both
trainers from the same config (batch 128, SGD with momentum, ReLU,
Fashion-MNIST unless ``--data`` says otherwise), and runs ``--rounds``
rounds, after one untimed burst each; in each round, both train one burst
of ``--burst`` steps on the same batches (who goes first alternates). It prints the best, p25 and median µs
per step of each side and the median over rounds of new ÷ old, the measure
docs/performance.md's A/B numbers use. It also says whether the two stayed bit for
bit equal: the loss and accuracy of every burst, and the weights at the end.

    python benchmarks/ab.py HEAD~1                       # working tree against the previous commit
    python benchmarks/ab.py v1 --hidden 800,800 --rounds 20
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from speed import DEFAULT_DATA, LR, ROOT, mlptrain_spec  # the same config and data as the benchmark

OLD = "mlptrain_ab_old"  # the package name REV's copy is imported under


def extract_revision(rev: str, into: Path) -> None:
    """``rev``'s mlptrain/ as ``into/OLD``, its imports of mlptrain renamed to match."""
    try:
        archive = subprocess.run(["git", "archive", rev, "mlptrain"], cwd=ROOT, capture_output=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"ab.py: git archive {rev} failed: {exc.stderr.decode().strip()}") from None
    except OSError as exc:
        raise SystemExit(f"ab.py: cannot run git: {exc}") from None
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: refuse paths outside ``into``
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    package = into / OLD
    (into / "mlptrain").rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text()
        source.write_text(re.sub(r"\b(from|import) mlptrain\b", rf"\1 {OLD}", text))


def trainer(package: str, hidden: list[int], data: Path):
    """A Trainer of ``package`` (mlptrain or its old copy) for the benchmark's config."""
    config = importlib.import_module(f"{package}.config")
    load_dataset = _module(package, "data.loading", "data").load_dataset
    built = config.default_init(config.build_config(mlptrain_spec(hidden, 128)))
    return _module(package, "train.trainer", "train").Trainer(built, load_dataset(data, "fashion-mnist"))


def _module(package: str, path: str, flat: str):
    """``package.path``, or ``package.flat`` for revisions before the layout by part (one flat folder)."""
    try:
        return importlib.import_module(f"{package}.{path}")
    except ModuleNotFoundError:
        return importlib.import_module(f"{package}.{flat}")


def run(args: argparse.Namespace, old, new) -> tuple[dict[str, list[float]], bool]:
    """Alternate bursts; per-step µs of each side, and whether every burst agreed bit for bit."""
    import numpy as np

    from mlptrain.threads import blas_threads

    steps = args.burst * 128
    order = old.shuffle_rng.permutation(old.split.train)
    if len(order) <= steps:
        raise SystemExit(f"ab.py: a burst of {args.burst} steps needs more than {steps} training images; "
                         f"the data set has {len(order)}: lower --burst")
    times: dict[str, list[float]] = {"old": [], "new": []}
    same = True
    with blas_threads(args.threads), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for side in (old, new):  # untimed: first touches of the buffers, BLAS threads starting
            side._train_epoch(order[:steps], LR, None)
        for r in range(args.rounds):
            start = (r * steps) % (len(order) - steps)
            batches = order[start:start + steps]
            seen = {}
            for side in ("old", "new") if r % 2 else ("new", "old"):
                t0 = time.perf_counter()
                seen[side] = (old if side == "old" else new)._train_epoch(batches, LR, None)
                times[side].append((time.perf_counter() - t0) / args.burst * 1e6)
            same = same and seen["old"] == seen["new"]
    weights_same = all(np.array_equal(p, q) for p, q in zip(old.net.parameters(), new.net.parameters()))
    return times, same and weights_same


def report(rev: str, hidden: list[int], times: dict[str, list[float]], same: bool) -> str:
    def summary(xs: list[float]) -> str:
        q = statistics.quantiles(xs, n=4)
        return f"best {min(xs):.0f}  p25 {q[0]:.0f}  median {statistics.median(xs):.0f}"

    from machine import cpu_model

    ratio = statistics.median(n / o for n, o in zip(times["new"], times["old"]))
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"{'-'.join(map(str, hidden))}, {len(times['new'])} rounds, µs per step ({cpu_model()}{load})\n"
            f"  {rev:>12}: {summary(times['old'])}\n"
            f"  {'this tree':>12}: {summary(times['new'])}\n"
            f"  paired median (this tree ÷ {rev}): {ratio:.3f}\n"
            f"  bit for bit equal: {'yes' if same else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the git revision to compare against, e.g. HEAD~1")
    parser.add_argument("--hidden", default="256,256", help="hidden widths, e.g. 800,800")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=20, help="steps per burst")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="an IDX data set directory")
    args = parser.parse_args()
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        parser.error(f"--hidden {args.hidden!r}: give widths separated by commas, e.g. 800,800")
    if args.rounds < 2 or args.burst < 1:
        parser.error("--rounds must be at least 2 and --burst at least 1")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        extract_revision(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        from mlptrain.errors import MlptrainError

        # The new tree loads first: a bad --data fails there with mlptrain's own error.
        try:
            new = trainer("mlptrain", hidden, args.data)
        except MlptrainError as exc:
            raise SystemExit(f"ab.py: {exc}") from None
        old = trainer(OLD, hidden, args.data)
        times, same = run(args, old, new)
    print(report(args.rev, hidden, times, same))


if __name__ == "__main__":
    main()
