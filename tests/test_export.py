"""``mlptrain export``: the ONNX graph, its metadata, and onnxruntime agreeing with mlptrain for every activation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlptrain import __version__
from mlptrain.cli import cli
from mlptrain.infer.onnx import build_model
from mlptrain.infer.predict import Model, load_model, probabilities
from mlptrain.nn.activations import ACTIVATIONS
from mlptrain.nn.initializers import INITIALIZERS
from mlptrain.nn.network import forward, init_network

from synthetic import write_dataset

FIT_FAST = ["--hidden", "16", "--epochs", "2", "--val-size", "30", "--batch-size", "32", "--lr", "0.1", "--quiet"]
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def small_model(activation: str, seed: int = 0) -> Model:
    """A 64-32-16-5 net with random weights and biases (nothing trained), on 8x8 images."""
    rng = np.random.default_rng(seed)
    net = init_network([64, 32, 16, 5], activation, INITIALIZERS["glorot-uniform"], rng)
    for b in net.biases:
        b[:] = rng.normal(0, 0.5, b.shape)
    return Model(net, (8, 8), ("a", "b", "c", "d", "e"), "synthetic")


def session(proto, optimized: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


class Recorder:
    """An ``OnnxGraph`` that only records the operators an activation's ONNX form asks for."""

    def __init__(self) -> None:
        self.ops: list[str] = []

    def node(self, op: str, inputs, **attributes: float) -> str:
        self.ops.append(op)
        return f"t{len(self.ops)}"

    def constant(self, value: float) -> str:
        return f"c{value}"


def row_ops(activation: str) -> list[str]:
    recorder = Recorder()
    ACTIVATIONS[activation].onnx_form(recorder, "x")
    return recorder.ops


# What the rows emit, pinned: the one-operator activations export exactly as they always have.
EXPECTED_OPS = {"logistic": ["Sigmoid"], "tanh": ["Tanh"], "relu": ["Relu"], "leaky-relu": ["LeakyRelu"],
                "elu": ["Elu"], "softplus": ["Softplus"], "identity": ["Identity"], "silu": ["Sigmoid", "Mul"],
                "gelu": ["Pow", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"]}


@pytest.mark.parametrize("optimized", [False, True], ids=["as written", "optimized"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_exports_and_onnxruntime_agrees(activation: str, optimized: bool) -> None:
    """onnxruntime runs the graph as written (what any runtime sees) and as it rewrites it (fused kernels)."""
    model = small_model(activation)
    proto = build_model(model)  # runs onnx.checker.check_model
    x = np.random.default_rng(1).random((37, 64), dtype=np.float32)
    logits, probs = session(proto, optimized).run(["logits", "probabilities"], {"images": x})
    ours = forward(model.net, x).logits
    np.testing.assert_allclose(logits, ours, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, probabilities(model.net, x), rtol=1e-5, atol=1e-6)
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["MatMul", "Add", *row_ops(activation)] * 2 + ["MatMul", "Add", "Softmax"]
    names = [node.name for node in proto.graph.node]
    assert len(set(names)) == len(names)
    # each hidden layer's output has the same name whatever the activation
    assert [name for node in proto.graph.node for name in node.input if name.startswith("hidden")] == [
        "hidden0", "hidden1"]


@pytest.mark.parametrize("activation", sorted(EXPECTED_OPS))
def test_the_rows_emit_the_pinned_operators(activation: str) -> None:
    assert row_ops(activation) == EXPECTED_OPS[activation]


@pytest.mark.parametrize("activation, kernel", [("gelu", "FastGelu"), ("silu", "QuickGelu")])
def test_silu_and_gelu_are_patterns_onnxruntime_fuses_into_one_kernel(tmp_path: Path, activation, kernel) -> None:
    """The node order of their ONNX forms is what onnxruntime's fusions match (docs/predict.md says so)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # the level of the fusions
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(build_model(small_model(activation)).SerializeToString(), options,
                         providers=["CPUExecutionProvider"])
    ops = [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count(kernel) == 2 and not {"Tanh", "Sigmoid"} & set(ops), ops


def test_the_batch_dimension_is_dynamic_and_the_metadata_is_complete() -> None:
    proto = build_model(small_model("leaky-relu"))
    assert [i.name for i in proto.graph.input] == ["images"] and [o.name for o in proto.graph.output] == [
        "logits", "probabilities"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 64
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    leaky = next(n for n in proto.graph.node if n.op_type == "LeakyRelu")
    assert onnx.helper.get_attribute_value(leaky.attribute[0]) == pytest.approx(0.01)
    run = session(proto)
    for n in (1, 5):
        assert run.run(["probabilities"], {"images": np.zeros((n, 64), np.float32)})[0].shape == (n, 5)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["mlptrain_version"] == __version__ and props["dataset"] == "synthetic"
    assert json.loads(props["image_shape"]) == [8, 8] and json.loads(props["class_names"]) == list("abcde")
    assert props["input_scaling"].startswith("float32 pixel / 255 in [0, 1]")
    assert json.loads(props["layer_sizes"]) == [64, 32, 16, 5] and props["activation"] == "leaky-relu"


def test_export_command_writes_a_model_that_predicts_like_predict(tmp_path: Path) -> None:
    runner = CliRunner()
    tiny = write_dataset(tmp_path / "tiny")
    fit = ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(tmp_path / "r")]
    assert runner.invoke(cli, fit).exit_code == 0
    result = runner.invoke(cli, ["export", str(tmp_path / "r"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {tmp_path / 'm.onnx'} (0.0 MB): 64-16-3 relu, {tiny}")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(proto)
    images = np.random.default_rng(0).integers(0, 256, (50, 64), dtype=np.uint8)
    probs = session(proto).run(["probabilities"], {"images": images.astype(np.float32) / 255})[0]
    ours = probabilities(load_model(tmp_path / "r").net, images)
    assert np.array_equal(probs.argmax(axis=1), ours.argmax(axis=1))
    np.testing.assert_allclose(probs, ours, rtol=1e-5, atol=1e-6)
    assert runner.invoke(cli, ["export", str(tmp_path / "r")]).exit_code == 0  # default: RUN_DIR/model.onnx
    assert (tmp_path / "r" / "model.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()


def test_without_onnx_export_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    tiny = write_dataset(tmp_path / "tiny")
    fit = ["fit", "--dataset", str(tiny), *FIT_FAST, "--out", str(tmp_path / "r")]
    assert runner.invoke(cli, fit).exit_code == 0
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    result = runner.invoke(cli, ["export", str(tmp_path / "r"), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: export needs the onnx package: pip install 'mlptrain[onnx]'\n"
    assert not (tmp_path / "m.onnx").exists()


def test_the_predict_benchmark_runs_and_both_sides_agree(tmp_path: Path) -> None:
    """benchmarks/predict.py (smoke test on a tiny 28x28 set): a row per network, all predictions agreeing."""
    import subprocess

    data = write_dataset(tmp_path / "data", n_train=30, n_test=40, shape=(28, 28))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "predict.py"
    done = subprocess.run([sys.executable, str(script), "--data", str(data), "--repeats", "1", "--hidden", "8,8"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 784-8-8-10 random |")]
    assert len(rows) == 1 and rows[0].endswith("| 40/40 |")
