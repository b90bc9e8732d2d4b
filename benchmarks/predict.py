"""Images per second of ``mlptrain predict``'s library path against onnxruntime on the exported model.

Side by side in one process, same thread count, interleaved repeats (the order alternates every
repeat, so a load change on the shared machine hits both): the 10,000 MNIST test images, read
once from their IDX file, through

- mlptrain: ``probabilities`` (uint8 -> float scaling, the one forward core in chunks, softmax)
  and ``top_k`` -- what ``mlptrain predict`` runs per input file;
- onnxruntime: ``InferenceSession.run`` on the model ``mlptrain export`` writes, fed the float32
  [0, 1] array. The uint8 -> float conversion is timed separately: the main ratio does not charge
  it to onnxruntime, a second column does (both then start from the same uint8 array).

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


def timed(f) -> tuple[float, object]:
    start = time.perf_counter()
    result = f()
    return time.perf_counter() - start, result


def compare(model: Model, images: np.ndarray, threads: int, repeats: int) -> dict:
    run = session(model, threads)
    floats = images.astype(np.float32) / 255
    times: dict[str, list[float]] = {"mlptrain": [], "onnxruntime": [], "uint8->float32": []}
    with blas_threads(threads):
        ours(model, images, threads), run.run(["probabilities"], {"images": floats})  # warm-up
        for r in range(repeats):
            order = ["mlptrain", "onnxruntime"] if r % 2 == 0 else ["onnxruntime", "mlptrain"]
            for name in order:
                if name == "mlptrain":
                    seconds, mine = timed(lambda: ours(model, images, threads))
                else:
                    seconds, probs = timed(lambda: run.run(["probabilities"], {"images": floats})[0])
                times[name].append(seconds)
            times["uint8->float32"].append(timed(lambda: images.astype(np.float32) / 255)[0])
    agree = int(np.sum(mine == probs.argmax(axis=1)))
    ratios = [o / m for m, o in zip(times["mlptrain"], times["onnxruntime"])]
    # The same start for both: onnxruntime's run plus the conversion its caller has to do first.
    from_uint8 = [(o + c) / m for m, o, c in zip(times["mlptrain"], times["onnxruntime"], times["uint8->float32"])]
    n = len(images)
    return {
        "mlptrain": n / statistics.median(times["mlptrain"]),
        "onnxruntime": n / statistics.median(times["onnxruntime"]),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "ratio_uint8": statistics.median(from_uint8),
        "convert_ms": 1000 * statistics.median(times["uint8->float32"]), "agree": agree,
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
    print(f"# uint8 -> float32 / 255 of the whole array, given to onnxruntime for free: {r['convert_ms']:.1f} ms")


if __name__ == "__main__":
    main()
