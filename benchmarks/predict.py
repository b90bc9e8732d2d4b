"""Images per second of ``mlptrain predict``'s library path against onnxruntime on the exported model.

Side by side in one process, same thread count, interleaved repeats (the order alternates every
repeat, so a load change on the shared machine hits both), with a pause after every timed call:
onnxruntime's pool threads keep spinning on a core for about 60 ms after ``run`` returns (the
process burns that much CPU in a sleep after it; printed below), and whatever runs next shares
the cores with them. Without the pause, mlptrain's run after onnxruntime's took 75-81 ms
instead of 54 ms (784-256-256-10, 2 threads), while onnxruntime's own time did not change.
The 10,000 MNIST test images, read once from their IDX file, go through

- mlptrain: ``probabilities`` (uint8 -> float scaling, the one forward core in chunks, softmax)
  and ``top_k`` -- what ``mlptrain predict`` runs per input file;
- onnxruntime: ``InferenceSession.run`` on the model ``mlptrain export`` writes, fed the float32
  [0, 1] array, scaled as training scales (``to_floats``). That conversion is timed separately:
  the main ratio does not charge it to onnxruntime, a second column does (both then start from
  the same uint8 array).

Weights: random (he-normal, seed 0) unless --run names a trained run directory; the arithmetic
per image does not depend on the values. Usage:

    python benchmarks/predict.py --data ../shared/data/mnist --threads 2 --repeats 9
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from mlptrain.data.idx import read_idx
from mlptrain.infer.inputs import Block, read_inputs
from mlptrain.infer.onnx import build_model
from mlptrain.infer.predict import Model, load_model, probabilities, top_k
from mlptrain.nn.initializers import INITIALIZERS
from mlptrain.nn.network import init_network
from mlptrain.threads import blas_threads


def random_model(hidden: list[int]) -> Model:
    net = init_network([784, *hidden, 10], "relu", INITIALIZERS["he-normal"], np.random.default_rng(0))
    return Model(net, (28, 28), tuple("0123456789"), "mnist")


def ours(model: Model, images: np.ndarray, threads: int) -> np.ndarray:
    with blas_threads(1):  # as mlptrain predict does: a worker thread per core, one BLAS thread each
        classes, _ = top_k(probabilities(model.net, images, workers=threads), 1)
    return classes[:, 0]


def session(model: Model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(build_model(model).SerializeToString(), options, providers=["CPUExecutionProvider"])


# Seconds to wait after each timed call: longer than onnxruntime's spinning (see the docstring).
PAUSE = 0.25


def to_floats(images: np.ndarray) -> np.ndarray:
    """The uint8 images as onnxruntime's input: times 1/255 as in training, in NumPy's cheapest form.

    One pass into one new array: 6.3 ms for the test set, against 20 ms for
    ``images.astype(np.float32) / 255`` (two new arrays, and a division that rounds differently).
    """
    return np.multiply(images, np.float32(1 / 255), dtype=np.float32)


def timed(f) -> tuple[float, object]:
    start = time.perf_counter()
    result = f()
    seconds = time.perf_counter() - start
    time.sleep(PAUSE)  # let the threads of the call go idle before the next one is timed
    return seconds, result


def spin_cpu_ms(run, floats: np.ndarray, seconds: float) -> float:
    """CPU milliseconds the process burns in a ``seconds`` sleep right after an onnxruntime ``run``."""
    run.run(["probabilities"], {"images": floats})
    start = time.process_time()
    time.sleep(seconds)
    return 1000 * (time.process_time() - start)


def compare(model: Model, images: np.ndarray, threads: int, repeats: int) -> dict:
    run = session(model, threads)
    floats = to_floats(images)
    times: dict[str, list[float]] = {"mlptrain": [], "onnxruntime": [], "uint8->float32": []}
    with blas_threads(threads):
        ours(model, images, threads), run.run(["probabilities"], {"images": floats})  # warm-up
        time.sleep(PAUSE)
        for r in range(repeats):
            order = ["mlptrain", "onnxruntime"] if r % 2 == 0 else ["onnxruntime", "mlptrain"]
            for name in order:
                if name == "mlptrain":
                    seconds, mine = timed(lambda: ours(model, images, threads))
                else:
                    seconds, probs = timed(lambda: run.run(["probabilities"], {"images": floats})[0])
                times[name].append(seconds)
            times["uint8->float32"].append(timed(lambda: to_floats(images))[0])
    agree = int(np.sum(mine == probs.argmax(axis=1)))
    spin = spin_cpu_ms(run, floats, PAUSE)
    ratios = [o / m for m, o in zip(times["mlptrain"], times["onnxruntime"])]
    # The same start for both: onnxruntime's run plus the conversion its caller has to do first.
    from_uint8 = [(o + c) / m for m, o, c in zip(times["mlptrain"], times["onnxruntime"], times["uint8->float32"])]
    n = len(images)
    return {
        "mlptrain": n / statistics.median(times["mlptrain"]),
        "onnxruntime": n / statistics.median(times["onnxruntime"]),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "ratio_uint8": statistics.median(from_uint8),
        "convert_ms": 1000 * statistics.median(times["uint8->float32"]), "agree": agree, "spin_ms": spin,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mnist"), help="directory with t10k-images")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--hidden", nargs="+", default=["256,256", "1024,1024"])
    parser.add_argument("--run", type=Path, action="append", default=[], help="a trained run directory instead")
    args = parser.parse_args()
    import onnxruntime

    path = args.data / "t10k-images-idx3-ubyte.gz"
    read_seconds, images = timed(lambda: read_idx(path))
    images = images.reshape(len(images), -1)
    block_seconds, blocks = timed(lambda: list(read_inputs([str(path)], (28, 28), "none")))
    assert isinstance(blocks[0], Block) and np.array_equal(blocks[0].images, images)
    print(f"# {platform.processor() or platform.machine()}; numpy {np.__version__}, onnxruntime "
          f"{onnxruntime.__version__}; {args.threads} thread(s), {args.repeats} interleaved repeats")
    print(f"# {len(images)} images from {path}: read_idx {read_seconds * 1000:.0f} ms, "
          f"read_inputs {block_seconds * 1000:.0f} ms (not in the rates below)")
    models = [(f"784-{h.replace(',', '-')}-10 random", random_model([int(w) for w in h.split(",")]))
              for h in args.hidden]
    models += [(f"{'-'.join(map(str, m.net.sizes))} trained ({run})", m) for run in args.run
               for m in [load_model(run)]]
    print("| network | mlptrain images/s | onnxruntime images/s | ratio (median, min-max of pairs) | "
          "ratio, onnxruntime charged its uint8 -> float conversion | agree |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model in models:
        r = compare(model, images, args.threads, args.repeats)
        print(f"| {name} | {r['mlptrain']:,.0f} | {r['onnxruntime']:,.0f} | {r['ratio']:.2f}x "
              f"({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) | {r['ratio_uint8']:.2f}x | {r['agree']}/{len(images)} |")
    print(f"# to_floats (uint8 -> float32 x 1/255) of the whole array, given to onnxruntime for free: "
          f"{r['convert_ms']:.1f} ms")
    print(f"# CPU the process burnt in the {PAUSE * 1000:.0f} ms pause after an onnxruntime run "
          f"(its spinning threads): {r['spin_ms']:.0f} ms")


if __name__ == "__main__":
    main()
