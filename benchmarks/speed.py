#!/usr/bin/env python3
"""Speed benchmark: mlptrain's training loop against PyTorch, scikit-learn, naive NumPy and the GEMM floor.

Every measurement is a fresh subprocess (one per system per repeat), run
interleaved (mlptrain, torch, sklearn, naive64, naive32, floor, then again …)
so that the machine's drift hits every system alike; each process sets its
own BLAS/OpenMP thread count, trains ``--warmup-epochs`` untimed epochs and
then ``--epochs-per-repeat`` timed ones, and its peak RSS (VmHWM) is read
from /proc. The table (median epoch time, samples/s, GFLOP/s, ratios, peak
RSS) goes to benchmarks/SPEED.md, rewritten after every repeat.

What an "epoch time" covers, for every system: the training loop only, i.e.
the shuffle, the batch gather (uint8 -> float for mlptrain, which converts per
batch; a slice of an already-float array for the others), forward, backward
and the parameter update, over all ceil(n/batch) minibatches. Data loading,
weight init and evaluation are excluded. ``floor`` is not a trainer: it is
the sum of the best-of-many times of each matrix product one step needs
(forward x@W per layer, a.T@delta per layer, delta@W.T for all layers but the
first), times the steps per epoch.

    python benchmarks/speed.py                                   # the full benchmark (~20 min on 2 cores)
    python benchmarks/speed.py --subset 5000 --repeats 1 --threads 1 --hidden 256,256   # smoke test
    python benchmarks/speed.py --only mlptrain,torch --ref-python .bench/bin/python

The references need the extras of benchmarks/requirements.txt, e.g. in a
separate venv passed as --ref-python (or run this script with that venv's
python, which then measures everything).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fashion-mnist"
DEFAULT_TORCH_REF = ROOT.parent / "shared" / "bench" / "torch_ref.py"
SYSTEMS = ("mlptrain", "torch", "sklearn", "naive64", "naive32", "floor")
OPTIONAL_SYSTEMS = ("mlptrain-run_epoch",)  # measured only when named in --only
REFERENCE_SYSTEMS = ("torch", "sklearn")  # run with --ref-python
LR, MOMENTUM, SEED = 0.05, 0.9, 0
FILE_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")

COVERS = {
    "mlptrain": "`Trainer._train_epoch` over `shuffle_rng.permutation(split.train)`, as `Trainer._run_epoch` "
                "calls it (no validation eval, no diagnostics, no finite check)",
    "mlptrain-run_epoch": "`Trainer.run_epoch()[\"seconds\"]`: the loop plus the per-epoch diagnostics "
                          "(val_size 0, so no validation eval)",
    "torch": "torch_ref.py's per-epoch `train_s` (randperm, gather, forward, backward, `opt.step`); "
             "its test-set eval is excluded",
    "sklearn": "one `MLPClassifier.partial_fit` call = one epoch (input check, shuffle, loop, loss); "
               "Glorot-uniform init (sklearn's own), float32 input",
    "naive64": "`benchmarks/naive_numpy.py` float64: per-batch `hstack` bias columns, whole set pre-converted",
    "naive32": "the same in float32",
    "floor": "sum of best-of-many GEMM times for one full-size step x ceil(n/batch) (float32)",
}


# --------------------------------------------------------------------------- data

def find_data_file(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise SystemExit(f"speed.py: {stem}[.gz] not found in {directory}")


def read_raw(path: Path) -> bytes:
    return gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()


def idx_count(raw: bytes) -> int:
    return int.from_bytes(raw[4:8], "big")


def truncated_idx(raw: bytes, n: int) -> bytes:
    """The same IDX file with only its first ``n`` items (header count rewritten)."""
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    item = math.prod(dims[1:])
    n = min(n, dims[0])
    header = raw[:4] + n.to_bytes(4, "big") + raw[8:4 + 4 * ndim]
    return header + raw[4 + 4 * ndim:4 + 4 * ndim + n * item]


def make_subset(data: Path, n_train: int, n_test: int, into: Path) -> Path:
    """Raw IDX copies of the first ``n_train`` training and ``n_test`` test items (every system reads these)."""
    into.mkdir(parents=True, exist_ok=True)
    for stem in FILE_STEMS:
        raw = read_raw(find_data_file(data, stem))
        (into / stem).write_bytes(truncated_idx(raw, n_train if stem.startswith("train") else n_test))
    return into


def load_numpy(directory: Path, split: str = "train"):
    """(images (n, pixels) uint8, labels (n,) uint8) without mlptrain (the reference venv may lack it)."""
    import numpy as np

    out = []
    for kind in ("images-idx3", "labels-idx1"):
        raw = read_raw(find_data_file(directory, f"{split}-{kind}-ubyte"))
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
        out.append(np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims))
    images, labels = out
    return images.reshape(len(images), -1), labels


# --------------------------------------------------------------------------- workers (child processes)

def worker(args: argparse.Namespace) -> None:
    """Run one system in this process and print one JSON line: the timed epochs and what they cover."""
    hidden = parse_hidden(args.hidden[0])
    data = Path(args.data)
    run = {"mlptrain": work_mlptrain, "mlptrain-run_epoch": work_mlptrain, "sklearn": work_sklearn,
           "naive64": work_naive, "naive32": work_naive, "floor": work_floor}[args.worker]
    result = run(args, hidden, data)
    print(json.dumps({"system": args.worker, **result, "vmhwm_mb": vmhwm_mb()}), flush=True)


def work_mlptrain(args, hidden, data):
    import numpy as np

    from mlptrain.config import build_config, default_init
    from mlptrain.data import load_dataset
    from mlptrain.threads import blas_threads
    from mlptrain.train import Trainer

    config = default_init(build_config({
        "hidden": list(hidden), "batch_size": args.batch, "lr": LR, "momentum": MOMENTUM, "val_size": 0,
        "epochs": args.warmup_epochs + args.epochs_per_repeat, "dataset": "fashion-mnist", "seed": SEED,
    }))
    dataset = load_dataset(data, "fashion-mnist")
    times = []
    with blas_threads(args.threads):
        trainer = Trainer(config, dataset)
        for epoch in range(args.warmup_epochs + args.epochs_per_repeat):
            if args.worker == "mlptrain-run_epoch":
                seconds = trainer.run_epoch()["seconds"]
            else:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    t0 = time.perf_counter()
                    order = trainer.shuffle_rng.permutation(trainer.split.train)
                    trainer._train_epoch(order, config.lr, None)
                    seconds = time.perf_counter() - t0
            if epoch >= args.warmup_epochs:
                times.append(seconds)
    n = len(dataset.train_images)
    return {"epoch_s": times, "n_train": n, "dtype": config.dtype, "sizes": trainer.net.sizes,
            "init": config.init, "versions": {"numpy": np.__version__}}


def work_sklearn(args, hidden, data):
    import warnings

    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    images, labels = load_numpy(data)
    X = images.astype(np.float32) / np.float32(255.0)
    classes = np.arange(int(labels.max()) + 1)
    times = []
    with threadpool_limits(limits=args.threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="relu", solver="sgd", momentum=MOMENTUM,
                            nesterovs_momentum=False, learning_rate_init=LR, batch_size=args.batch, max_iter=1,
                            shuffle=True, alpha=0.0, tol=0.0, n_iter_no_change=10**9, random_state=SEED)
        for epoch in range(args.warmup_epochs + args.epochs_per_repeat):
            t0 = time.perf_counter()
            clf.partial_fit(X, labels, classes=classes)
            seconds = time.perf_counter() - t0
            if epoch >= args.warmup_epochs:
                times.append(seconds)
    return {"epoch_s": times, "n_train": len(X), "dtype": str(clf.coefs_[0].dtype),
            "sizes": [X.shape[1], *hidden, len(classes)], "samples_seen": int(clf.t_),
            "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__}}


def work_naive(args, hidden, data):
    import numpy as np
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(HERE))
    from naive_numpy import NaiveMLP

    dtype = np.float64 if args.worker == "naive64" else np.float32
    images, labels = load_numpy(data)
    net = NaiveMLP([images.shape[1], *hidden, int(labels.max()) + 1], dtype, SEED, LR, MOMENTUM)
    X, Y = net.prepare(images, labels)
    times = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for epoch in range(args.warmup_epochs + args.epochs_per_repeat):
            t0 = time.perf_counter()
            net.train_epoch(X, Y, args.batch)
            seconds = time.perf_counter() - t0
            if epoch >= args.warmup_epochs:
                times.append(seconds)
    return {"epoch_s": times, "n_train": len(X), "dtype": np.dtype(dtype).name, "sizes": net.sizes,
            "versions": {"numpy": np.__version__}}


def best_time(f, rounds: int = 15, calls: int = 10) -> float:
    """The fastest mean over ``rounds`` rounds of ``calls`` calls of ``f`` (after a few warm-up calls)."""
    for _ in range(3):
        f()
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def work_floor(args, hidden, data):
    """Best-of-many time of each GEMM of one step (float32, the batch-major layouts mlptrain uses)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    images, labels = load_numpy(data)
    n, b = len(images), args.batch
    sizes = [images.shape[1], *hidden, int(labels.max()) + 1]
    rng = np.random.default_rng(SEED)
    f32 = np.float32
    products = {}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for layer, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
            a = rng.random((b, fi), dtype=f32)
            w = rng.standard_normal((fi, fo), dtype=f32)
            delta = rng.standard_normal((b, fo), dtype=f32)
            out_z, out_dw, out_dx = np.empty((b, fo), f32), np.empty((fi, fo), f32), np.empty((b, fi), f32)
            products[f"fwd{layer}"] = best_time(lambda: np.matmul(a, w, out=out_z))
            products[f"dW{layer}"] = best_time(lambda: np.matmul(a.T, delta, out=out_dw))
            if layer > 0:
                products[f"dX{layer}"] = best_time(lambda: np.matmul(delta, w.T, out=out_dx))
    step = sum(products.values())
    steps = -(-n // b)
    return {"epoch_s": [step * steps] * args.epochs_per_repeat, "n_train": n, "dtype": "float32", "sizes": sizes,
            "step_s": step, "steps": steps, "products_us": {k: round(v * 1e6, 2) for k, v in products.items()},
            "versions": {"numpy": np.__version__}}


# --------------------------------------------------------------------------- the parent: run, collect, report

def parse_hidden(text: str) -> tuple[int, ...]:
    return tuple(int(h) for h in text.replace("-", ",").split(",") if h.strip())


def vmhwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set (VmHWM) of a live process in MB, from /proc; None when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[int, str, str, float | None]:
    """Run ``cmd``; return (exit code, stdout, stderr, peak RSS in MB polled from /proc while it ran).

    Not ``wait4``'s ru_maxrss: Linux carries the forking parent's high-water mark
    over ``exec`` into the child's, so every child would report at least this
    process's RSS. The workers report their own VmHWM at exit, which is exact;
    the polled value (every 50 ms) is for torch_ref.py, which we do not control.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = None
        try:
            while True:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
                if pid:
                    break
                now = vmhwm_mb(proc.pid)
                if now is not None:
                    peak = max(peak or 0.0, now)
                time.sleep(0.05)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), peak


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def command(system: str, args: argparse.Namespace, hidden: tuple[int, ...], data: Path) -> list[str]:
    h = ",".join(map(str, hidden))
    if system == "torch":
        return [args.ref_python, str(args.torch_ref), "--hidden", h, "--batch", str(args.batch),
                "--epochs", str(args.warmup_epochs + args.epochs_per_repeat), "--activation", "relu",
                "--lr", str(LR), "--momentum", str(MOMENTUM), "--seed", str(SEED), "--threads", str(args.threads),
                "--data", str(data)]
    python = args.ref_python if system in REFERENCE_SYSTEMS else sys.executable
    return [python, str(Path(__file__).resolve()), "--worker", system, "--hidden", h, "--batch", str(args.batch),
            "--threads", str(args.threads), "--warmup-epochs", str(args.warmup_epochs),
            "--epochs-per-repeat", str(args.epochs_per_repeat), "--data", str(data)]


def parse_output(system: str, stdout: str, warmup: int) -> dict:
    """The worker's JSON line, or torch_ref's epoch lines turned into the same shape."""
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if system != "torch":
        return lines[-1]
    meta = next(x for x in lines if x.get("kind") == "meta")
    summary = next(x for x in lines if x.get("kind") == "summary")
    epochs = [x for x in lines if x.get("kind") == "epoch"]
    return {"system": "torch", "epoch_s": [x["train_s"] for x in epochs[warmup:]], "n_train": meta["n_train"],
            "dtype": "float32", "sizes": meta["sizes"], "summary_epoch_s_median": summary["epoch_s_median"],
            "versions": {"torch": meta["torch"], "numpy": meta["numpy"]},
            "torch_threads": meta["torch_threads"], "cpu_capability": meta["cpu_capability"],
            "test_acc": summary["final_test_acc"]}


def probe(python: str, module: str) -> str | None:
    """None when ``python`` can import ``module``, else the reason it cannot."""
    try:
        done = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, timeout=300)
    except OSError as exc:
        return f"cannot run {python}: {exc}"
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["failed"])[-1]
    return f"`import {module}` fails in {python}: {last}"


def flops_per_epoch(sizes: list[int], n: int) -> float:
    """Matmul flops: forward and dW for every layer, dX for all but the input layer (2*m*k*n each)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 2.0 * n * (2 * sum(i * o for i, o in pairs) + sum(i * o for i, o in pairs[1:]))


# --------------------------------------------------------------------------- report

def machine_info() -> dict[str, str]:
    from machine import cpu_model

    info = {"cpu": f"{cpu_model()}, {os.cpu_count()} logical cores", "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}
    try:
        import numpy as np
        from threadpoolctl import threadpool_info

        info["numpy"] = np.__version__
        blas = [f"{x.get('internal_api')} {x.get('version')} ({x.get('architecture', '?')}, "
                f"{x.get('threading_layer', '?')})" for x in threadpool_info() if x.get("user_api") == "blas"]
        info["blas"] = "; ".join(blas) or "none found by threadpoolctl"
    except ImportError as exc:
        info["numpy"] = info["blas"] = f"unavailable ({exc})"
    return info


def stats(results: dict, system: str, hidden) -> dict | None:
    runs = results.get((system, hidden))
    times = [t for r in runs or [] for t in r["epoch_s"]]
    if not times:
        return None
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "n": runs[0]["n_train"],
            "rss": max(r["rss_mb"] for r in runs), "count": len(times)}


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def render(args, systems, hiddens, results, notes, info, started, rounds_done, n_train) -> str:
    lines = [
        "# Speed benchmark",
        "",
        f"Written by `benchmarks/speed.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"(started {started}); {rounds_done} of {args.repeats * len(hiddens)} rounds (hidden size × repeat) done.",
        "",
        f"- Machine: {info['cpu']}; {info['os']}; Python {info['python']}",
        f"- NumPy {info['numpy']}; BLAS: {info['blas']}",
        f"- Data: {args.data}, {n_train} training images"
        + (f" (first {args.subset} only: a smoke test, not a benchmark)" if args.subset else "")
        + f"; batch {args.batch}; SGD lr {LR} momentum {MOMENTUM}; ReLU; He-normal init (sklearn: its own)",
        f"- {args.threads} BLAS/OpenMP thread(s) per process; every system in its own process per repeat, "
        f"interleaved ({', '.join(systems)}), {args.repeats} repeat(s) × {args.epochs_per_repeat} timed epoch(s) "
        f"after {args.warmup_epochs} untimed warm-up epoch(s) in the same process",
        "- Epoch time = the training loop only (see *What is timed*); the median is over all timed epochs, "
        "(min–max) beside it. GFLOP/s counts the matmuls only: forward and dW per layer, dX for all but the "
        "input layer. *mlptrain ÷ this* < 1 means mlptrain is faster. Peak RSS is the whole process's "
        "VmHWM (imports and data included; torch_ref's polled every 50 ms), max over repeats.",
        "",
        "| system | hidden | dtype | epoch s, median (min–max) | samples/s | GFLOP/s | mlptrain ÷ this | "
        "this ÷ floor | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for hidden in hiddens:
        h = "-".join(map(str, hidden))
        ours, floor = stats(results, "mlptrain", hidden), stats(results, "floor", hidden)
        for system in systems:
            s = stats(results, system, hidden)
            if s is None:
                lines.append(f"| {system} | {h} | | {notes.get(system, 'not measured')} | | | | | |")
                continue
            runs = results[(system, hidden)]
            sizes = runs[0]["sizes"]
            gflops = flops_per_epoch(sizes, s["n"]) / s["median"] / 1e9
            vs_ours = ours["median"] / s["median"] if ours and system != "mlptrain" else None
            vs_floor = s["median"] / floor["median"] if floor and system != "floor" else None
            rss = "—" if system == "floor" else f"{s['rss']:.0f}"
            lines.append(
                f"| {system} | {h} | {runs[0].get('dtype', '')} | {s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f}) "
                f"| {s['n'] / s['median']:,.0f} | {gflops:.1f} | {fmt_ratio(vs_ours)} | {fmt_ratio(vs_floor)} "
                f"| {rss} |")
    lines += ["", "## Targets", ""] + targets(results, hiddens)
    lines += ["", "## What is timed", ""] + [f"- **{s}**: {COVERS[s]}" for s in systems]
    versions = {}
    for runs in results.values():
        for r in runs:
            versions.update(r.get("versions", {}))
    if versions:
        lines += ["", "Versions seen in the workers: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {system}: {text}" for system, text in notes.items()]
    lines += ["", "## Raw epoch times (s), per repeat", ""]
    for (system, hidden), runs in results.items():
        lines.append(f"- {system} {'-'.join(map(str, hidden))}: "
                     + "; ".join(", ".join(f"{t:.3f}" for t in r["epoch_s"]) + f" [{r['rss_mb']:.0f} MB]"
                                 for r in runs))
    return "\n".join(lines) + "\n"


def targets(results: dict, hiddens: list[tuple[int, ...]]) -> list[str]:
    """The issue's speed targets, PASS/FAIL from the medians above."""
    out = []

    def check(label: str, system: str, hidden, limit: float, speedup: bool) -> None:
        ours, other = stats(results, "mlptrain", hidden), stats(results, system, hidden)
        if ours is None or other is None:
            out.append(f"- [ ] {label}: not measured")
            return
        if speedup:
            value = other["median"] / ours["median"]
            ok, shown = value >= limit, f"mlptrain is {value:.2f}× faster"
        else:
            value = ours["median"] / other["median"]
            ok, shown = value <= limit, f"mlptrain takes {value:.2f}× the time"
        out.append(f"- [{'x' if ok else ' '}] {label}: {shown} → **{'PASS' if ok else 'FAIL'}**")

    check("mlptrain ≤ 0.85× torch's epoch time at 256-256", "torch", (256, 256), 0.85, False)
    check("mlptrain ≤ 1.0× torch's epoch time at 800-800", "torch", (800, 800), 1.0, False)
    for hidden in hiddens:
        h = "-".join(map(str, hidden))
        check(f"mlptrain ≤ 1.5× the matrix-product floor at {h}", "floor", hidden, 1.5, False)
        check(f"mlptrain ≥ 1.5× faster than sklearn at {h}", "sklearn", hidden, 1.5, True)
        check(f"mlptrain ≥ 2× faster than naive64 at {h}", "naive64", hidden, 2.0, True)
    return out


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main_parent(args: argparse.Namespace) -> None:
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS + OPTIONAL_SYSTEMS]
    if unknown:
        raise SystemExit(f"speed.py: unknown system(s) {unknown}; known: {', '.join(SYSTEMS + OPTIONAL_SYSTEMS)}")
    hiddens = [parse_hidden(h) for h in (args.hidden or ["256,256", "800,800"])]
    args.torch_ref = Path(args.torch_ref)
    out = Path(args.out) if Path(args.out).is_absolute() else Path.cwd() / args.out
    notes: dict[str, str] = {}
    skipped = set()
    if "torch" in systems:
        reason = (probe(args.ref_python, "torch") if args.torch_ref.is_file()
                  else f"{args.torch_ref} not found (set --torch-ref)")
        if reason:
            notes["torch"] = f"skipped: {reason}"
            skipped.add("torch")
    if "sklearn" in systems and (reason := probe(args.ref_python, "sklearn")):
        notes["sklearn"] = f"skipped: {reason}"
        skipped.add("sklearn")
    info = machine_info()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[tuple[str, tuple[int, ...]], list[dict]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="mlptrain-speed-"))
    try:
        data = Path(args.data)
        if args.subset:
            data = make_subset(data, args.subset, min(args.subset, 2000), tmp / "subset")
        n_train = idx_count(read_raw(find_data_file(data, "train-labels-idx1-ubyte")))
        print(f"speed.py: {n_train} training images from {data}; systems {', '.join(systems)}; "
              f"hidden {', '.join('-'.join(map(str, h)) for h in hiddens)}; {args.repeats} repeat(s)",
              file=sys.stderr, flush=True)
        for hidden in hiddens:
            for repeat in range(1, args.repeats + 1):
                for system in systems:
                    if system in skipped:
                        continue
                    measure(system, args, hidden, data, repeat, results, notes, skipped)
                rounds_done = hiddens.index(hidden) * args.repeats + repeat
                write_atomic(out, render(args, systems, hiddens, results, notes, info, started, rounds_done, n_train))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = out.read_text(encoding="utf-8")
    print(report)
    print(f"speed.py: wrote {out}", file=sys.stderr)


def measure(system, args, hidden, data, repeat, results, notes, skipped) -> None:
    """One subprocess for ``system``; its result (or the failure, which skips the system from then on)."""
    h = "-".join(map(str, hidden))
    t0 = time.perf_counter()
    code, stdout, stderr, rss = run_child(command(system, args, hidden, data), child_env(args.threads))
    wall = time.perf_counter() - t0
    try:
        if code != 0:
            raise ValueError(f"exit code {code}")
        result = parse_output(system, stdout, args.warmup_epochs)
        if not result["epoch_s"]:
            raise ValueError("no timed epoch")
    except (ValueError, StopIteration, IndexError, KeyError) as exc:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        notes[system] = f"failed at {h}, repeat {repeat} ({exc}): {tail}"
        skipped.add(system)
        print(f"  {system} {h} repeat {repeat}: FAILED ({exc}) {tail}", file=sys.stderr, flush=True)
        return
    result["rss_mb"] = result.pop("vmhwm_mb", None) or rss or float("nan")
    results.setdefault((system, hidden), []).append(result)
    print(f"  {h} repeat {repeat} {system:>9}: epoch {', '.join(f'{t:.3f}' for t in result['epoch_s'])} s, "
          f"peak RSS {rss:.0f} MB, process {wall:.1f} s", file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="directory with the four (gzipped) IDX files "
                   "(default: %(default)s)")
    p.add_argument("--hidden", action="append", help="hidden widths, e.g. 256,256; repeat the flag for several "
                   "(default: 256,256 and 800,800)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds, one process per system each")
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP/torch threads in every process")
    p.add_argument("--epochs-per-repeat", type=int, default=2,
                   help="timed epochs per process (two: a median over 10 epochs shrugs off one disturbed epoch)")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs first, in every process")
    p.add_argument("--subset", type=int, default=0, help="use only the first N training images (smoke tests)")
    p.add_argument("--only", default=",".join(SYSTEMS),
                   help=f"systems, in the order they run each repeat (default: %(default)s; also "
                        f"{', '.join(OPTIONAL_SYSTEMS)})")
    p.add_argument("--out", default=str(HERE / "SPEED.md"), help="Markdown report (default: %(default)s)")
    p.add_argument("--ref-python", default=sys.executable,
                   help="python with torch and scikit-learn for the references (default: this one)")
    p.add_argument("--torch-ref", default=str(DEFAULT_TORCH_REF), help="path of torch_ref.py")
    p.add_argument("--worker", choices=SYSTEMS + OPTIONAL_SYSTEMS, help=argparse.SUPPRESS)
    args = p.parse_args()
    for name in ("batch", "repeats", "threads", "epochs_per_repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup_epochs < 0 or args.subset < 0:
        p.error("--warmup-epochs and --subset must not be negative")
    if args.worker:
        worker(args)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
