#!/usr/bin/env python3
"""The cost of a norm: epoch time with batch and with layer norm over the same net without one, paired.

Three trainers of the benchmark's config (784-256-256-10 ReLU unless
``--hidden`` says otherwise, batch 128, SGD with momentum, Fashion-MNIST
unless ``--data``), one without a norm, one with ``norm: batch``, one with
``norm: layer``, train whole epochs (the steps, the validation pass and the
health probe: what ``fit`` prints as the epoch's seconds) in turns within one
process, so each round's three epochs meet the same moods of a shared
machine; who goes first rotates. It prints each side's median epoch seconds
and the median over rounds of norm ÷ none.

    python benchmarks/norm.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from speed import DEFAULT_DATA, ROOT, mlptrain_spec  # the same config and data as the benchmark

SIDES = ("none", "batch", "layer")


def trainers(hidden: list[int], data: Path) -> dict:
    """One Trainer per side, each for many epochs (the benchmark stops it, not the config)."""
    from mlptrain.config import build_config, default_init
    from mlptrain.data.loading import load_dataset
    from mlptrain.train.trainer import Trainer

    dataset = load_dataset(data, "fashion-mnist")
    built = {}
    for norm in SIDES:
        config = default_init(build_config(mlptrain_spec(hidden, 128) | {"norm": norm, "epochs": 1000}))
        built[norm] = Trainer(config, dataset)
    return built


def run(args: argparse.Namespace, sides: dict) -> dict[str, list[float]]:
    """Epoch seconds of each side, ``--rounds`` rounds after one untimed epoch each."""
    from mlptrain.threads import blas_threads

    times: dict[str, list[float]] = {side: [] for side in SIDES}
    with blas_threads(args.threads):
        for trainer in sides.values():
            trainer.run_epoch()
        for r in range(args.rounds):
            for side in SIDES[r % 3:] + SIDES[:r % 3]:
                t0 = time.perf_counter()
                sides[side].run_epoch()
                times[side].append(time.perf_counter() - t0)
    return times


def report(hidden: list[int], times: dict[str, list[float]], threads: int) -> str:
    from machine import cpu_model

    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    lines = [f"784-{'-'.join(map(str, hidden))}-10, {len(times['none'])} rounds, {threads} BLAS threads, "
             f"seconds per epoch ({cpu_model()}{load})"]
    for side in SIDES:
        lines.append(f"  {side:>5}: median {statistics.median(times[side]):.2f}  best {min(times[side]):.2f}")
    for side in SIDES[1:]:
        ratio = statistics.median(n / o for n, o in zip(times[side], times["none"]))
        lines.append(f"  paired median ({side} ÷ none): {ratio:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="256,256", help="hidden widths, e.g. 800,800")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="an IDX data set directory")
    args = parser.parse_args()
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        parser.error(f"--hidden {args.hidden!r}: give widths separated by commas, e.g. 800,800")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sys.path.insert(0, str(ROOT))
    from mlptrain.errors import MlptrainError

    try:
        sides = trainers(hidden, args.data)
    except MlptrainError as exc:
        raise SystemExit(f"norm.py: {exc}") from None
    print(report(hidden, run(args, sides), args.threads))


if __name__ == "__main__":
    main()
