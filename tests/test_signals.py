"""Real SIGINT and SIGTERM sent to real `python -m mlptrain` processes while they work: every command that can run
for more than a moment ends with 130 (Ctrl-C) or 143 (SIGTERM), one ``Error:`` line, no traceback, and no partial
output -- no temporary file, and no directory it created left empty. (fit: test_training.py; a sweep's Ctrl-C:
test_sweep.py.)

A process is signalled once it has spent a few tenths of a second of CPU time past its start-up, so mid-work
however loaded the machine is; each job would take many seconds more.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mlptrain.nn.activations import get_activation
from mlptrain.nn.network import Network
from mlptrain.runs.files import save_weights

from faultkit import temporaries
from httpserver import LoopbackServer, stall
from synthetic import write_dataset

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU times from /proc")
WIDTH = 2048  # a 784-2048-2048-10 net: a forward pass of thousands of images takes seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def startup_cpu() -> float:
    """CPU seconds a process spends importing the CLI and NumPy: what any command spends before its work."""
    done = subprocess.run([sys.executable, "-c", "import resource, mlptrain.cli.main, numpy; "
                           "u = resource.getrusage(resource.RUSAGE_SELF); print(u.ru_utime + u.ru_stime)"],
                          capture_output=True, text=True, env=environment(), timeout=120)
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPTRAIN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    return env


@dataclass(frozen=True)
class Job:
    args: list[str]
    outputs: list[Path]  # what the command would have written: absent afterwards


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A data set of 28x28 images, a run whose network is large (weights written directly: nothing trains), an
    input array of many images."""
    root = tmp_path_factory.mktemp("signals")
    data = write_dataset(root / "data", n_train=3000, n_test=20000, n_classes=10, shape=(28, 28))
    rng = np.random.default_rng(0)
    sizes = [784, WIDTH, WIDTH, 10]
    weights = [rng.normal(0, 0.02, (a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    net = Network(weights, [np.zeros(b, np.float32) for b in sizes[1:]], get_activation("relu"))
    (root / "run").mkdir()
    save_weights(root / "run" / "weights.npz", net, {"dataset": str(data), "image_shape": [28, 28],
                                                     "n_classes": 10})
    np.save(root / "many.npy", rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8))
    return {"root": root, "data": data, "run": root / "run", "many": root / "many.npy"}


def jobs(world: dict[str, Path], tmp: Path) -> dict[str, Job]:
    data, run = str(world["data"]), str(world["run"])
    wide = ["--dataset", data, "--hidden", f"{WIDTH},{WIDTH}", "--val-size", "100", "--threads", "1"]
    return {
        "predict": Job(["predict", run, str(world["many"]), "--json"], []),
        "eval": Job(["eval", run, "--threads", "1", "--quiet"], [world["run"] / "eval.json"]),
        "export": Job(["export", run, "--out", str(tmp / "model.onnx")], [tmp / "model.onnx"]),
        "lr-find": Job(["lr-find", *wide, "--steps", "100000", "--out", str(tmp / "lr" / "find")], [tmp / "lr"]),
        "init-scan": Job(["init-scan", *wide, "--activations", "all", "--per-decade", "100", "--out",
                          str(tmp / "scan.png")], [tmp / "scan.png"]),
        "gradcheck": Job(["gradcheck", *wide, "--per-array", "10000000"], []),
    }


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", ["predict", "eval", "export", "lr-find", "init-scan", "gradcheck"])
def test_a_signal_mid_work_ends_the_command_cleanly(world: dict[str, Path], startup_cpu: float, tmp_path: Path,
                                                    command: str, signum: int) -> None:
    if command == "export":
        pytest.importorskip("onnx")
    job = jobs(world, tmp_path)[command]
    threshold = startup_cpu + 0.3
    stderr = run_until_ready(job.args, lambda p: cpu_seconds(p.pid) > threshold, signum)
    check_ended(stderr, signum)
    for path in job.outputs:
        assert not path.exists(), path
    assert temporaries(tmp_path) == [] and temporaries(world["root"]) == []


def test_sigterm_mid_download(tmp_path: Path, http_server: LoopbackServer) -> None:
    """A download stalled mid-file: SIGTERM ends it, and neither the partial file nor the new directories stay."""
    from mlptrain.data.datasets import FILE_NAMES

    source = write_dataset(tmp_path / "source")
    body = (source / FILE_NAMES[0]).read_bytes()
    http_server.set(f"slow/{FILE_NAMES[0]}", stall(60, body, after=len(body) // 2))
    cache = tmp_path / "new" / "cache"
    args = ["data", "download", "--dataset", "mnist", "--data-dir", str(cache), "--mirror", http_server.url("slow/")]
    stderr = run_until_ready(args, lambda p: http_server.hits(f"slow/{FILE_NAMES[0]}") > 0, signal.SIGTERM)
    check_ended(stderr, signal.SIGTERM)
    assert not (tmp_path / "new").exists()  # the directories it made, empty again, are gone


def run_until_ready(args: list[str], ready: Callable[[subprocess.Popen], bool], signum: int) -> str:
    process = subprocess.Popen([sys.executable, "-m", "mlptrain", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=environment())
    try:
        deadline = time.time() + 120
        while not ready(process):
            assert process.poll() is None, f"{args[0]} ended before it was signalled: {process.stderr.read()}"
            assert time.time() < deadline, "never got to work"
            time.sleep(0.02)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == (130 if signum == signal.SIGINT else 143), stderr
    return stderr


def check_ended(stderr: str, signum: int) -> None:
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: interrupted by {'Ctrl-C' if signum == signal.SIGINT else 'SIGTERM'}"], stderr
