#!/usr/bin/env python3
"""Speed of the tuning tools against the init check, interleaved, on real MNIST (cached data).

Each round times, in turn: the reference (``Trainer(config, data)`` plus its
init check on the default net, what every ``fit`` runs first), ``fit
--dry-run``'s library half, the init-scale scan of the default net for four
activations, and the gradient check of the default config on one BLAS
thread; then the whole ``mlptrain fit --dry-run`` command in a fresh process
(interpreter start, imports and data loading included). The machine is
shared, so the rounds interleave and the table shows medians and the median
of the per-round ratios to the reference.

    python benchmarks/tune.py --data-dir /tmp/me/data --mirror ../shared/data/mnist --rounds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from mlptrain.config import Config, default_init
from mlptrain.data.loading import load_dataset, locate
from mlptrain.train.trainer import Trainer
from mlptrain.tune.dryrun import dry_run
from mlptrain.tune.gradcheck import gradcheck
from mlptrain.tune.initscan import scan_init

ACTIVATIONS = ["relu", "tanh", "logistic", "elu"]


def timed(task) -> float:
    started = time.perf_counter()
    task()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--mirror", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = load_dataset(locate("mnist", args.data_dir, args.mirror), "mnist")
    config = default_init(Config())
    cli = [sys.executable, "-m", "mlptrain", "fit", "--dry-run", "--data-dir", str(args.data_dir), "--quiet"]
    if args.mirror:
        cli += ["--mirror", args.mirror]
    tasks = {
        "init check (reference)": lambda: Trainer(config, data).check_init(),
        "dry run (library)": lambda: dry_run(config, data),
        "init-scan, 4 activations": lambda: scan_init(config, data, ACTIVATIONS),
        "gradcheck (1 thread)": lambda: _one_thread(lambda: gradcheck(config, data)),
        "mlptrain fit --dry-run (process)": lambda: subprocess.run(cli, check=True, capture_output=True),
    }
    times: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(args.rounds):
        for name, task in tasks.items():
            times[name].append(timed(task))
    reference = times["init check (reference)"]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"CPU: {cpu}, {os.cpu_count()} cores; load average before/after: see uptime; rounds: {args.rounds}")
    print(f"{'task':<34} {'median s':>9} {'min s':>7} {'x init check':>13}")
    for name, values in times.items():
        ratio = statistics.median(v / r for v, r in zip(values, reference))
        print(f"{name:<34} {statistics.median(values):>9.3f} {min(values):>7.3f} {ratio:>13.2f}")
    print(f"load average now: {os.getloadavg()[0]:.2f}")


def _one_thread(task) -> None:
    with threadpool_limits(1, user_api="blas"):
        task()


if __name__ == "__main__":
    main()
