#!/usr/bin/env python3
"""Epoch time with data augmentation against the same net without it, side by side in one process.

Issue 18's target: for 784-1024-1024-10 with ``elastic``, the epoch time is at
most 1.3x the same net's without augmentation, on 2 cores. This trains the
mnist-best optimizer settings (AdamW, dropout) on the first ``--images``
training images, one epoch per variant in turn, ``--rounds`` times (so a change
in the machine's load hits every variant alike), and prints each variant's
median epoch time and its ratio to no augmentation, with the CPU and the load.
The trainer prepares a batch ahead in a worker thread only on a core its BLAS
leaves free, and never for an augmentation that calls BLAS (elastic); ``forced
ahead`` overrides that choice, to show what it is worth.

    python benchmarks/augment.py --data ../shared/data/mnist
    python benchmarks/augment.py --data ../shared/data/mnist --images 20000 --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = [  # name, augment, prefetch (None: as the trainer decides, from the table's ``threadable``)
    ("none", "", None),
    ("elastic", "elastic", None),
    ("elastic, forced ahead", "elastic", True),
    ("affine,elastic", "affine,elastic", None),
    ("shift", "shift", None),
    ("shift, forced ahead", "shift", True),
    ("hflip", "hflip", None),
    ("hflip, forced ahead", "hflip", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="a directory with MNIST's four IDX files")
    parser.add_argument("--hidden", default="1024,1024")
    parser.add_argument("--images", type=int, default=15000, help="training images per epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from mlptrain.config import build_config, default_init
    from mlptrain.data.loading import load_dataset
    from mlptrain.nn.blas import kernel_name
    from mlptrain.threads import blas_threads, cpu_model
    from mlptrain.train.trainer import Trainer

    data = load_dataset(args.data, "mnist")
    data = dataclasses.replace(data, train_images=data.train_images[:args.images],
                               train_labels=data.train_labels[:args.images])
    # The data set named by its directory: hflip is refused for "mnist", and only its cost is measured here.
    base = {"dataset": str(args.data), "hidden": args.hidden, "optimizer": "adamw", "lr": 0.001,
            "weight_decay": 0.05, "dropout": 0.5, "input_dropout": 0.2, "epochs": 1000, "val_size": 1000}
    times: dict[str, list[float]] = {name: [] for name, _, _ in VARIANTS}
    with blas_threads(args.threads):
        trainers = {}
        for name, augment, prefetch in VARIANTS:
            trainers[name] = Trainer(default_init(build_config(base | {"augment": augment})), data)
            if prefetch is not None:
                trainers[name].batches.prefetch = prefetch
        for _ in range(args.rounds + 1):  # the first round warms up and is dropped
            for name, trainer in trainers.items():
                started = time.perf_counter()
                trainer.run_epoch()
                times[name].append(time.perf_counter() - started)
    load = "%.1f" % os.getloadavg()[0]
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, {args.threads} BLAS threads ({kernel_name()}), "
          f"load {load}")
    print(f"784-{args.hidden.replace(',', '-')}-10, {args.images} images per epoch, median of {args.rounds} epochs")
    reference = statistics.median(times["none"][1:])
    for name, seconds in times.items():
        median = statistics.median(seconds[1:])
        print(f"  {name:<22} {median:6.2f} s   {median / reference:5.2f}x")


if __name__ == "__main__":
    main()
