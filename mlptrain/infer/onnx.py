"""Write a run's network as an ONNX model (built with the ``onnx`` package's helper API, an optional extra).

The graph: input ``images`` float32 ``[N, pixels]`` in [0, 1] (pixel / 255, the
scaling training used; ``N`` is dynamic), per layer ``MatMul`` then ``Add``,
the hidden activation through ``ONNX_OPS`` (one row per row of the
activation table: a new activation without an ONNX op fails its test), and
two outputs, ``logits`` and ``probabilities`` (``Softmax``). The run's data set,
image shape, class names and input scaling go into the metadata properties.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mlptrain import __version__
from mlptrain.errors import ConfigError, MissingDependency, RunDirError
from mlptrain.infer.predict import Model
from mlptrain.nn.activations import LEAKY_SLOPE

OPSET = 17  # Softmax over the last axis (13+); onnxruntime 1.12 and later run it
IR_VERSION = 8  # the ONNX file format version of opset 17: older readers accept it too
INPUT_SCALING = "float32 pixel / 255 in [0, 1], each image flattened row by row (C order)"

# Activation name -> (ONNX operator, its attributes); the tests check every activation has a row.
ONNX_OPS: dict[str, tuple[str, dict[str, Any]]] = {
    "logistic": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "leaky-relu": ("LeakyRelu", {"alpha": LEAKY_SLOPE}),
    "elu": ("Elu", {"alpha": 1.0}),
    "softplus": ("Softplus", {}),
    "identity": ("Identity", {}),
}


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependency("export needs the onnx package: pip install 'mlptrain[onnx]'") from None
    return onnx


def build_model(model: Model) -> Any:
    """The ``onnx.ModelProto`` of ``model``, checked with ``onnx.checker.check_model``."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    net = model.net
    if net.activation.name not in ONNX_OPS:
        raise ConfigError(f"activation {net.activation.name!r} has no ONNX operator in ONNX_OPS; add one")
    op, attributes = ONNX_OPS[net.activation.name]
    nodes, weights, signal = [], [], "images"
    last = len(net.weights) - 1
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        weights += [numpy_helper.from_array(np.asarray(w, np.float32), f"W{layer}"),
                    numpy_helper.from_array(np.asarray(b, np.float32), f"b{layer}")]
        product, summed = f"product{layer}", "logits" if layer == last else f"pre{layer}"
        nodes += [helper.make_node("MatMul", [signal, f"W{layer}"], [product], name=f"matmul{layer}"),
                  helper.make_node("Add", [product, f"b{layer}"], [summed], name=f"add{layer}")]
        signal = summed
        if layer < last:
            signal = f"hidden{layer}"
            nodes.append(helper.make_node(op, [summed], [signal], name=f"{op.lower()}{layer}", **attributes))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1))
    sizes = net.sizes
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", sizes[-1]])
               for name in ("logits", "probabilities")]
    graph = helper.make_graph(
        nodes, "mlptrain", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", sizes[0]])], outputs,
        initializer=weights,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mlptrain", producer_version=__version__, ir_version=IR_VERSION)
    helper.set_model_props(proto, metadata(model))
    onnx.checker.check_model(proto)
    return proto


def metadata(model: Model) -> dict[str, str]:
    """The model's metadata properties (strings; lists as JSON)."""
    return {
        "mlptrain_version": __version__,
        "dataset": model.dataset,
        "image_shape": json.dumps(list(model.image_shape)),
        "class_names": json.dumps(list(model.class_names), ensure_ascii=False),
        "input_scaling": INPUT_SCALING,
        "activation": model.net.activation.name,
        "layer_sizes": json.dumps(model.net.sizes),
    }


def export(model: Model, out: Path) -> int:
    """Write ``model`` as ONNX to ``out`` (atomically); returns the file's size in bytes."""
    from mlptrain.fsutil import atomic_write

    data = build_model(model).SerializeToString()
    try:
        atomic_write(out, lambda f: f.write(data))
    except OSError as exc:
        raise RunDirError(f"cannot write {out}: {exc.strerror or exc}; check the directory and free space") from None
    return len(data)
