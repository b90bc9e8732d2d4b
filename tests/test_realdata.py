"""Real MNIST from ../shared/data used as a file:// mirror (skipped when it is absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain.cli import cli

SHARED_DATA = Path(os.environ.get("MLPTRAIN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SHARED_MNIST = SHARED_DATA / "mnist"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file(),
        reason=f"real MNIST not found at {SHARED_MNIST} (set MLPTRAIN_SHARED_DATA to the shared data directory)",
    ),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One download through the file:// mirror, shared by the tests of this module."""
    data_dir = tmp_path_factory.mktemp("data")
    args = ["data", "download", "--mirror", SHARED_MNIST.as_uri(), "--data-dir", str(data_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return data_dir


def fit_and_eval(cache: Path, out: Path, *args: str) -> tuple[dict, dict]:
    runner = CliRunner()
    result = runner.invoke(cli, ["fit", *args, "--data-dir", str(cache), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["eval", str(out), "--json", "--data-dir", str(cache)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text()), json.loads(result.stdout)


def test_relu_default_init_reaches_97_percent_in_3_epochs(cache: Path, tmp_path: Path) -> None:
    summary, report = fit_and_eval(cache, tmp_path / "run", "--epochs", "3")
    assert summary["config"]["init"] == "he-normal"
    assert report["accuracy"] >= 0.97
    assert report["accuracy"] == summary["test"]["accuracy"]


def test_original_problem_predicts_one_class_for_every_image(cache: Path, tmp_path: Path) -> None:
    """ReLU, four hidden layers of 256, U(-0.01, 0.01): the output ignores the input."""
    config = str(CONFIGS / "original-problem.yaml")
    summary, report = fit_and_eval(cache, tmp_path / "run", "--config", config)
    confusion = np.array(report["confusion"])
    assert np.count_nonzero(confusion.sum(axis=0)) == 1  # a single predicted class
    assert report["accuracy"] <= 0.12


def test_exported_onnx_predicts_the_whole_test_set_like_predict(cache: Path, tmp_path: Path) -> None:
    """A briefly trained net (1 epoch, 784-128-10): onnxruntime and ``mlptrain predict`` agree on all 10,000."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from mlptrain.data.idx import read_idx

    runner, run = CliRunner(), tmp_path / "run"
    fit = ["fit", "--epochs", "1", "--hidden", "128", "--data-dir", str(cache), "--out", str(run), "--quiet"]
    assert runner.invoke(cli, fit).exit_code == 0
    assert runner.invoke(cli, ["export", str(run), "--out", str(tmp_path / "m.onnx")]).exit_code == 0
    images_file = cache / "mnist" / "t10k-images-idx3-ubyte.gz"
    result = runner.invoke(cli, ["predict", str(run), str(images_file), "--csv"])
    assert result.exit_code == 0, result.stderr
    ours = np.array([int(line.split(",")[2]) for line in result.stdout.splitlines()[1:]])
    images = read_idx(images_file).reshape(10000, 784).astype(np.float32) / 255
    model = onnx.load(str(tmp_path / "m.onnx"))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = session.run(["probabilities"], {"images": images})[0].argmax(axis=1)
    assert len(ours) == 10000 and np.array_equal(ours, theirs)
    labels = read_idx(cache / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert np.mean(ours == labels) == json.loads((run / "summary.json").read_text())["test"]["accuracy"]
