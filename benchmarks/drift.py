#!/usr/bin/env python3
"""Epoch-time drift over a long run of each shipped best config, and the subnormals left in the training state.

An optimizer state full of subnormal floats makes every elementwise operation on
it take the CPU's slow path, so the epochs of a long run grow slower as the
state decays (issue 15: 8 s to 15-20 s per epoch on an Intel Xeon). For each
config this trains ``--epochs`` epochs in this process and prints the median
epoch time of the last 10 epochs over the median of epochs 2-4 (the drift;
target <= 1.10), with the CPU model and the load average, and counts the
subnormal values in the optimizer state and the parameters: at the end of the
run, and the most seen just before an end-of-epoch flush (what the per-step
schedule of ``mlptrain.nn.subnormals`` leaves in during an epoch).

    python benchmarks/drift.py --data-root ../shared/data                 # both configs, 60 epochs each
    python benchmarks/drift.py --data-root ../shared/data --epochs 6 --config configs/mnist-best.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [ROOT / "configs" / "mnist-best.yaml", ROOT / "configs" / "fashion-best.yaml"]
FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "kmnist": "kmnist"}  # data set -> folder in --data-root


def load_average() -> str:
    try:
        return "%.1f" % os.getloadavg()[0]
    except OSError:
        return "?"


def drift(seconds: list[float]) -> float:
    """Median of the last 10 epochs over the median of epochs 2-4."""
    return statistics.median(seconds[-10:]) / statistics.median(seconds[1:4])


def run(path: Path, args: argparse.Namespace) -> dict:
    """Train ``path``'s config for ``args.epochs`` epochs; its epoch times and subnormal counts."""
    from mlptrain.config import build_config, default_init
    from mlptrain.configfile import load_config_file
    from mlptrain.data.loading import load_dataset
    from mlptrain.nn.subnormals import count_subnormals
    from mlptrain.threads import blas_threads

    values = load_config_file(path) | {"epochs": args.epochs}
    config = default_init(build_config(values))
    data = load_dataset(args.data_root / FOLDERS.get(config.dataset, config.dataset), config.dataset)
    from mlptrain.train.trainer import Trainer

    trainer = Trainer(config, data)
    flush, before_flush = trainer.optimizer.flush, []

    def counted_flush(params):  # count what the epoch left in, then flush as the trainer does
        before_flush.append(count_subnormals([*params, *_state(trainer)]))
        flush(params)

    trainer.optimizer.flush = counted_flush
    load_before, started = load_average(), time.perf_counter()
    with blas_threads(args.threads):
        while not trainer.finished:
            metrics = trainer.run_epoch()
            if not args.quiet:
                print(f"  {path.stem} epoch {metrics['epoch']}: {metrics['seconds']:.2f} s", file=sys.stderr)
    seconds = [m["seconds"] for m in trainer.progress.history]
    state, params = _state(trainer), trainer.net.parameters()
    return {"config": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "epochs": len(seconds),
            "seconds": seconds, "drift": drift(seconds), "early_median": statistics.median(seconds[1:4]),
            "late_median": statistics.median(seconds[-10:]), "wall": time.perf_counter() - started,
            "subnormal_state": count_subnormals(state), "state_size": sum(a.size for a in state),
            "subnormal_params": count_subnormals(params), "most_before_flush": max(before_flush),
            "load": f"{load_before} -> {load_average()}",
            "val_acc": trainer.progress.history[-1].get("val_acc")}


def _state(trainer) -> list:
    return [a for arrays in trainer.optimizer.state().values() for a in arrays]


def line(result: dict) -> str:
    return (f"{result['config']} ({result['epochs']} epochs, {result['wall']:.0f} s): epochs 2-4 median "
            f"{result['early_median']:.2f} s, last 10 median {result['late_median']:.2f} s, "
            f"drift {result['drift']:.3f}; "
            f"subnormals at the end: {result['subnormal_state']} of {result['state_size']:,} optimizer-state "
            f"values, {result['subnormal_params']} in the parameters (at most {result['most_before_flush']} "
            f"before an end-of-epoch flush); load average {result['load']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append", help="a config file (default: both best configs)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data",
                        help="holds mnist/ and fashion-mnist/ (the IDX .gz files)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    args = parser.parse_args()
    if args.epochs < 4:
        parser.error("--epochs must be at least 4: the drift compares the last 10 epochs with epochs 2-4")
    sys.path.insert(0, str(ROOT))
    from mlptrain.errors import MlptrainError
    from mlptrain.nn.blas import kernel_name
    from mlptrain.threads import cpu_model

    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores, {args.threads} BLAS threads ({kernel_name()})",
          flush=True)
    results = []
    for path in args.config or CONFIGS:
        try:
            result = run(path, args)
        except MlptrainError as exc:
            raise SystemExit(f"drift.py: {exc}") from None
        results.append(result)
        print(line(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "threads": args.threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
