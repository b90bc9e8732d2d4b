"""Write a run's network as an ONNX model (built with the ``onnx`` package's helper API, an optional extra).

The graph: input ``images`` float32 ``[N, pixels]`` in [0, 1] (pixel / 255, the
scaling training used; ``N`` is dynamic), per layer ``MatMul`` then ``Add``,
then in a hidden layer the norm's node (``BatchNormalization`` in inference
mode, with the running statistics, or ``LayerNormalization``; the norm's row
emits it) and the hidden activation's nodes, which its row of the activation table
emits (``Activation.onnx_form``, through ``_Graph``: this module keeps no
table of its own), and two outputs, ``logits`` and ``probabilities``
(``Softmax``). The run's data set, image shape, class names and input scaling
go into the metadata properties.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mlptrain import __version__
from mlptrain.errors import MissingDependency, RunDirError
from mlptrain.infer.predict import Model

OPSET = 17  # Softmax over the last axis (13+); onnxruntime 1.12 and later run it
IR_VERSION = 8  # the ONNX file format version of opset 17: older readers accept it too
INPUT_SCALING = "float32 pixel / 255 in [0, 1], each image flattened row by row (C order)"


class _Graph:
    """The nodes and initializers being built; activation rows add theirs through ``node`` and ``constant``.

    Implements ``mlptrain.nn.activations.OnnxGraph``. A node is named after its operator and layer
    (``sigmoid0``; ``mul0_2`` for the third ``Mul`` of layer 0) and its output after the node.
    """

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.layer = 0
        self._names: set[str] = set()
        self._constants: dict[float, str] = {}

    def node(self, op: str, inputs: Sequence[str], **attributes: float) -> str:
        name = self._unique(f"{op.lower()}{self.layer}")
        return self.add(op, inputs, name, name, **attributes)

    def constant(self, value: float) -> str:
        if value not in self._constants:  # one initializer per value, shared by every layer
            self._constants[value] = self.initialize(np.float32(value), self._unique(f"constant{len(self._constants)}"))
        return self._constants[value]

    def add(self, op: str, inputs: Sequence[str], output: str, name: str, **attributes: Any) -> str:
        """Add a node with the given names; returns ``output``."""
        self._names.update((name, output))
        self.nodes.append(self._helper.make_node(op, list(inputs), [output], name=name, **attributes))
        return output

    def initialize(self, value: np.ndarray, name: str) -> str:
        """Add a float32 initializer; returns ``name``."""
        self._names.add(name)
        self.initializers.append(self._numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def rename(self, old: str, new: str) -> str:
        """Give the tensor ``old`` (a node's output) the name ``new`` wherever it appears; returns ``new``."""
        for node in self.nodes:
            for names in (node.input, node.output):
                names[:] = [new if name == old else name for name in names]
        self._names.add(new)
        return new

    def _unique(self, name: str) -> str:
        suffix = 1
        unique = name
        while unique in self._names:
            unique, suffix = f"{name}_{suffix}", suffix + 1
        return unique


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

    net, graph = model.net, _Graph(helper, numpy_helper)
    signal, last = "images", len(net.weights) - 1
    for layer, (w, b) in enumerate(zip(net.weights, net.biases)):
        graph.layer = layer
        weight, bias = graph.initialize(w, f"W{layer}"), graph.initialize(b, f"b{layer}")
        product = graph.add("MatMul", [signal, weight], f"product{layer}", f"matmul{layer}")
        signal = graph.add("Add", [product, bias], "logits" if layer == last else f"pre{layer}", f"add{layer}")
        if layer < last:
            if net.norm is not None:
                signal = _norm_nodes(graph, net, layer, signal)
            activated = net.activation.onnx_form(graph, signal)
            # The layer's output is hidden<l> whatever the activation, for anyone tapping the hidden features.
            signal = activated if activated == signal else graph.rename(activated, f"hidden{layer}")
    graph.add("Softmax", ["logits"], "probabilities", "softmax", axis=-1)
    sizes = net.sizes
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", sizes[-1]])
               for name in ("logits", "probabilities")]
    proto_graph = helper.make_graph(
        graph.nodes, "mlptrain", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", sizes[0]])],
        outputs, initializer=graph.initializers,
    )
    proto = helper.make_model(proto_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mlptrain", producer_version=__version__, ir_version=IR_VERSION)
    helper.set_model_props(proto, metadata(model))
    onnx.checker.check_model(proto)
    return proto


def _norm_nodes(graph: _Graph, net: Any, layer: int, signal: str) -> str:
    """Hidden layer ``layer``'s norm node on ``signal``, its arrays as initializers; returns ``normed<l>``."""
    norm = net.norm
    lists = {"scale": norm.scales, "shift": norm.shifts, "running_mean": norm.running_mean,
             "running_var": norm.running_var}
    arrays = {name: graph.initialize(values[layer], f"{name}{layer}") for name, values in lists.items() if values}
    return graph.rename(norm.kind.onnx_form(graph, signal, arrays, norm.eps), f"normed{layer}")


def metadata(model: Model) -> dict[str, str]:
    """The model's metadata properties (strings; lists as JSON)."""
    return {
        "mlptrain_version": __version__,
        "dataset": model.dataset,
        "image_shape": json.dumps(list(model.image_shape)),
        "class_names": json.dumps(list(model.class_names), ensure_ascii=False),
        "input_scaling": INPUT_SCALING,
        "activation": model.net.activation.name,
        "norm": model.net.norm.kind.name if model.net.norm is not None else "none",
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
