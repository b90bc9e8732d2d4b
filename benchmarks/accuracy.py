#!/usr/bin/env python3
"""Accuracy benchmark: train the shipped configs and a few plain ones, write benchmarks/RESULTS.md.

Each entry is a real `mlptrain fit` run (the installed CLI, one after the
other, so wall times are comparable within one run of this script). The
table is rewritten after every entry, so an interrupted benchmark keeps what
it measured. Data comes from --data-root (a directory holding mnist/ and
fashion-mnist/ with the original .gz files), used as a file:// mirror.

    python benchmarks/accuracy.py --data-root ../shared/data
    python benchmarks/accuracy.py --only mnist-best --only fashion-best

Every measured row is also kept in benchmarks/RESULTS.json; a run with
--only replaces just those rows, so the table can be refreshed piecewise
(each row says when it was measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# name -> (data set, extra `mlptrain fit` arguments)
ENTRIES: dict[str, tuple[str, list[str]]] = {
    "mnist-best": ("mnist", ["--config", str(CONFIGS / "mnist-best.yaml")]),
    "fashion-best": ("fashion-mnist", ["--config", str(CONFIGS / "fashion-best.yaml")]),
    # Candidates tried against mnist-best on the validation split (see docs/results.md on how it was chosen).
    "mnist-candidate-dropout0.3": ("mnist", ["--config", str(CONFIGS / "mnist-best.yaml"), "--dropout", "0.3"]),
    "mnist-candidate-maxnorm": ("mnist", ["--config", str(CONFIGS / "mnist-best.yaml"), "--dropout", "0.4",
                                          "--max-norm", "3"]),
    # With data augmentation (issue 18): the shipped configs and the candidates they were chosen against.
    "mnist-augment": ("mnist", ["--config", str(CONFIGS / "mnist-augment.yaml")]),
    "fashion-augment": ("fashion-mnist", ["--config", str(CONFIGS / "fashion-augment.yaml")]),
    # Found by the Optuna search search-fashion, with a long run's dropout (docs/results.md, "Searched with Optuna").
    "fashion-search": ("fashion-mnist", ["--config", str(CONFIGS / "fashion-search.yaml")]),
    "fashion-augment-candidate-ls": ("fashion-mnist", ["--config", str(CONFIGS / "fashion-augment.yaml"),
                                                       "--label-smoothing", "0.1"]),
    # Without augmentation, the 15-minute budget: mnist-best with label smoothing (issue 18's last item).
    "mnist-best-label-smoothing": ("mnist", ["--config", str(CONFIGS / "mnist-best.yaml"), "--label-smoothing",
                                             "0.1"]),
    "relu-sgd": ("mnist", ["--config", str(CONFIGS / "relu.yaml")]),
    "relu-sgd+features": ("mnist", ["--config", str(CONFIGS / "relu.yaml"), "--nesterov", "--dropout", "0.2",
                                    "--input-dropout", "0.1", "--lr-schedule", "cosine", "--patience", "5"]),
    "logistic-sgd": ("mnist", ["--config", str(CONFIGS / "logistic.yaml")]),
    "logistic-sgd+features": ("mnist", ["--config", str(CONFIGS / "logistic.yaml"), "--nesterov", "--dropout",
                                        "0.1", "--lr-schedule", "cosine", "--patience", "5"]),
    "fashion-relu-sgd": ("fashion-mnist", ["--config", str(CONFIGS / "relu.yaml"), "--dataset", "fashion-mnist"]),
    "fashion-relu-sgd+features": ("fashion-mnist", ["--config", str(CONFIGS / "relu.yaml"), "--dataset",
                                                    "fashion-mnist", "--nesterov", "--dropout", "0.2",
                                                    "--input-dropout", "0.1", "--lr-schedule", "cosine"]),
}


def machine() -> str:
    import numpy as np

    return (f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}")


def run(name: str, dataset: str, args: list[str], data_root: Path, work: Path) -> dict:
    out = work / name
    command = [shutil.which("mlptrain") or "mlptrain", "fit", *args, "--mirror", str(data_root / dataset),
               "--data-dir", str(work / "data"), "--out", str(out), "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"name": name, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    summary = json.loads((out / "summary.json").read_text())
    return {
        "name": name, "dataset": dataset, "args": " ".join(a.replace(str(ROOT) + "/", "") for a in args),
        "epochs": summary["epochs_run"], "wall": wall, "best_val": summary["best"]["val_acc"],
        "best_epoch": summary["best_epoch"], "test": summary["test"]["accuracy"], "seed": summary["seed"],
        "hidden": summary["config"]["hidden"], "measured": time.strftime("%Y-%m-%d %H:%M"),
        "threads": summary.get("blas_threads"),
    }


def table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| entry | data set | `mlptrain fit` arguments | hidden | epochs (best) | wall time | "
             "best val acc | test acc | seed | measured |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | failed: {r['error']} | | | | | | | | |")
            continue
        lines.append(
            f"| {r['name']} | {r['dataset']} | `{r['args']}` | {','.join(map(str, r['hidden']))} | "
            f"{r['epochs']} ({r['best_epoch']}) | {r['wall'] / 60:.1f} min | {r['best_val']:.2%} | "
            f"**{r['test']:.2%}** | {r['seed']} | {r.get('measured', '')} |"
        )
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", action="append", choices=list(ENTRIES), help="run just these entries")
    parser.add_argument("--skip", action="append", choices=list(ENTRIES), default=[], help="leave these out")
    parser.add_argument("--render", action="store_true", help="only rewrite the table from RESULTS.json")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    opts = parser.parse_args()
    header = (f"# Accuracy benchmark\n\nMeasured by `python benchmarks/accuracy.py` on {time.strftime('%Y-%m-%d')}: "
              f"{machine()}. Wall time is the whole `mlptrain fit` command (data loading, training, test "
              "evaluation), entries run one after another. Test accuracy is of the weights `fit` saved "
              "(the best validation epoch when early stopping is on).")
    store = opts.out.with_suffix(".json")
    kept = {r["name"]: r for r in (json.loads(store.read_text()) if store.exists() else [])}
    fresh: list[dict] = []
    names = [] if opts.render else [n for n in opts.only or ENTRIES if n not in opts.skip]
    opts.out.write_text(table([kept[n] for n in ENTRIES if n in kept], header))
    with tempfile.TemporaryDirectory(prefix="mlptrain-bench-") as tmp:
        for name in names:
            dataset, args = ENTRIES[name]
            fresh.append(run(name, dataset, args, opts.data_root, Path(tmp)))
            kept[name] = fresh[-1]
            print(json.dumps(fresh[-1]), flush=True)
            rows = [kept[n] for n in ENTRIES if n in kept]
            store.write_text(json.dumps(rows, indent=1) + "\n")
            opts.out.write_text(table(rows, header))
    return 0 if all("error" not in r for r in fresh) else 1


if __name__ == "__main__":
    sys.exit(main())
