"""Measurements for a user's own data (docs/data.md, "Your own data"), from real MNIST digits.

    python benchmarks/own_data.py centre   --data DIR       MNIST's mean centre of mass, and the effect of where the
                                                            preparation puts it, on MNIST's test digits (2-epoch net)
    python benchmarks/own_data.py load     --data DIR       first and second load of 60,000 PNGs (class folders)
    python benchmarks/own_data.py accuracy --data DIR       class folders of MNIST digits written dark on light, at
                                                            several sizes, against the same digits as IDX

DIR holds MNIST's four .gz files. Work goes to --work (a temporary directory by default), never to the
per-user cache. The CPU model and core count are printed with every time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mlptrain.data.idx import read_images, read_labels, write_idx
from mlptrain.threads import available_cores, cpu_model

SIZES = (28, 48, 80)  # the digits' sizes in the dark-on-light PNGs


def mnist(data: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    return (read_images(data / f"{prefix}-images-idx3-ubyte.gz"), read_labels(data / f"{prefix}-labels-idx1-ubyte.gz"))


def mlptrain(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mlptrain", *args], check=True)


def accuracy_of(run: Path, images: np.ndarray, labels: np.ndarray) -> float:
    from mlptrain.infer.predict import load_model, probabilities

    return float(np.mean(probabilities(load_model(run).net, images).argmax(axis=1) == labels))


# --- centre ---------------------------------------------------------------------------------------------------


def centre_of_mass(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's centre of mass (row, column) in index units, pixel i covering [i, i+1)."""
    x = images.astype(np.float64)
    mass = x.sum(axis=(1, 2))
    rows = (x.sum(axis=2) * np.arange(x.shape[1])).sum(axis=1) / mass
    cols = (x.sum(axis=1) * np.arange(x.shape[2])).sum(axis=1) / mass
    return rows, cols


def prepared(images: np.ndarray, centre: float) -> np.ndarray:
    """MNIST digits sent through predict's preparation with the centre of mass aimed at ``centre`` x side."""
    from mlptrain.data import prepare

    saved, prepare.CENTRE_FRACTION = prepare.CENTRE_FRACTION, centre
    try:
        out = [prepare.mnist_style(image / np.float32(255), (28, 28))[0] for image in images]
    finally:
        prepare.CENTRE_FRACTION = saved
    return np.rint(np.stack(out) * 255).astype(np.uint8).reshape(len(images), -1)


def centre(args: argparse.Namespace, work: Path) -> None:
    for split in ("train", "test"):
        rows, cols = centre_of_mass(mnist(args.data, split)[0])
        print(f"MNIST {split}: mean centre of mass row {rows.mean():.3f} column {cols.mean():.3f} "
              f"(spread {rows.std():.3f}, {cols.std():.3f})")
    run = work / "centre-run"
    mlptrain("fit", "--dataset", str(args.data), "--epochs", str(args.epochs), "--threads", "1", "--quiet",
             "--out", str(run), "--data-dir", str(work / "cache"))
    images, labels = mnist(args.data, "test")
    as_they_are = accuracy_of(run, images.reshape(len(images), -1), labels)
    print(f"{args.epochs}-epoch net, MNIST test digits as they are: {as_they_are:.2%}")
    for name, fraction in (("13.5 (side/2 - 0.5)", 13.5 / 28), ("14.0 (side/2, MNIST's)", 14 / 28)):
        seen = prepared(images, fraction)
        com = centre_of_mass(seen.reshape(-1, 28, 28))
        print(f"  through the preparation, centre aimed at {name}: accuracy {accuracy_of(run, seen, labels):.2%}, "
              f"mean centre ({com[0].mean():.3f}, {com[1].mean():.3f})")


# --- PNG class folders ----------------------------------------------------------------------------------------


def dark_on_light(digit: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit scaled to ``size``, off-centre on a larger sheet of uneven, noisy paper, dark ink: uint8."""
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255
    sheet = int(size * 1.5)
    top, left = rng.integers(0, sheet - size + 1, 2)
    canvas = np.zeros((sheet, sheet), np.float32)
    canvas[top:top + size, left:left + size] = np.clip(ink, 0, 1)
    paper = 225 - 180 * canvas + np.linspace(-15, 10, sheet)[None, :] + rng.normal(0, 5, canvas.shape)
    return np.clip(paper, 0, 255).astype(np.uint8)


def write_pngs(root: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(dark_on_light(image, SIZES[i % len(SIZES)], rng)).save(root / str(label) / f"{i:05d}.png")


LOAD_SCRIPT = """
import sys, time, json
from pathlib import Path
started = time.perf_counter()
from mlptrain.data.loading import load_dataset
from mlptrain.data.parts import Preparation
data = load_dataset(Path(sys.argv[1]), sys.argv[1], Preparation(test_size=10000), Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - started, "n": len(data.train_images) + len(data.test_images)}))
"""


def timed_load(source: Path, cache: Path) -> dict:
    """Load ``source`` in a fresh process (the import of mlptrain included): seconds and images."""
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(source), str(cache)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def load(args: argparse.Namespace, work: Path) -> None:
    images, labels = mnist(args.data, "train")
    root = work / "pngs"
    if sum(1 for _ in root.rglob("*.png")) != args.n:  # a --work of an earlier run keeps its PNGs
        started = time.perf_counter()
        write_pngs(root, images[:args.n], labels[:args.n], seed=0)
        print(f"wrote {args.n} PNGs ({', '.join(map(str, SIZES))} px digits on 1.5x sheets) in "
              f"{time.perf_counter() - started:.0f} s")
    print(f"{cpu_model()}, {available_cores()} cores available, load average {os.getloadavg()[0]:.1f}")
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # the first load starts from an empty cache
    for attempt in ("first (prepared on every core, into the cache)", "second (from the cache)", "third"):
        result = timed_load(root, cache)
        print(f"{attempt}: {result['seconds']:.2f} s for {result['n']} images")
    for attempt in ("IDX, first (decoded into the cache)", "IDX, second"):
        print(f"{attempt}: {timed_load(args.data, cache)['seconds']:.2f} s")


# --- accuracy -------------------------------------------------------------------------------------------------


def accuracy(args: argparse.Namespace, work: Path) -> None:
    train, train_labels = mnist(args.data, "train")
    test, test_labels = mnist(args.data, "test")
    train, train_labels = train[:args.n_train], train_labels[:args.n_train]
    folders, idx = work / "digits-png", work / "digits-idx"
    write_pngs(folders / "train", train, train_labels, seed=1)
    write_pngs(folders / "test", test, test_labels, seed=2)
    idx.mkdir(parents=True, exist_ok=True)
    for name, array in (("train-images-idx3-ubyte", train), ("train-labels-idx1-ubyte", train_labels),
                        ("t10k-images-idx3-ubyte", test), ("t10k-labels-idx1-ubyte", test_labels)):
        write_idx(idx / name, array)
    flags = ["--epochs", str(args.epochs), "--threads", "1", "--val-size", "1000", "--quiet",
             "--data-dir", str(work / "cache")]
    print(f"{cpu_model()}; {args.n_train} training digits, 10000 test digits, default net, {args.epochs} epochs")
    for name, source in (("IDX (MNIST as it is)", idx), ("PNG class folders, dark on light, prepared", folders)):
        run = work / f"run-{source.name}"
        mlptrain("fit", "--dataset", str(source), "--out", str(run), *flags)
        result = json.loads((run / "summary.json").read_text())
        print(f"{name}: test accuracy {result['test']['accuracy']:.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["centre", "load", "accuracy"])
    parser.add_argument("--data", type=Path, required=True, help="directory of MNIST's four .gz files")
    parser.add_argument("--work", type=Path, help="where to write images, caches and runs [default: a temp dir]")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=60000, help="load: PNGs to write")
    parser.add_argument("--n-train", type=int, default=10000, help="accuracy: training digits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlptrain-own-") as temporary:
        work = args.work or Path(temporary)
        os.environ["MLPTRAIN_DATA_DIR"] = str(work / "cache")  # never the user's cache
        {"centre": centre, "load": load, "accuracy": accuracy}[args.what](args, work)


if __name__ == "__main__":
    main()
