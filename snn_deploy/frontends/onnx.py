"""ONNX ReLU ANN -> IF SNN (rate conversion with data-based threshold balancing).

Supported ops: ``Gemm``, ``MatMul`` (+ ``Add`` of a constant), ``Conv``, ``AveragePool``,
``Flatten``, ``Relu``, ``BatchNormalization`` (folded into the Conv/Gemm before it), plus
``Identity``/``Dropout``; the graph must be a chain. Anything else raises
``UnsupportedOpError`` naming the op and listing these.

Conversion (Diehl et al. 2015, Rueckauer et al. 2017): every ``Relu`` becomes an ``IF`` neuron
with threshold 1 and reset by subtraction; the layer in front of it is scaled by
``λ_prev/λ`` (bias by ``1/λ``), where ``λ`` is the ``percentile`` (default 99.9) of that
ReLU's activations on the calibration inputs (``λ_input`` is the largest input value), so
that firing rates approximate ``activation/λ``. The last layer (no ReLU) becomes an ``I``
integrator whose voltage accumulates the logits; the prediction is the argmax of the summed
voltage. Inputs are encoded as spikes by ``encode``: a deterministic integrate-and-fire of
``x/λ_input`` (so ``x`` must be >= 0). This is conversion logic, kept in this frontend module
because the ONNX graph is its only input; the ANN reference is plain numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import numpy.typing as npt

from snn_deploy.errors import InputFileError, UnsupportedOpError
from snn_deploy.frontends.nir import RESET_KEY
from snn_deploy.frontends.nir import load as load_nir
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.types import ResetMode

Array = npt.NDArray[np.float64]


@dataclass
class Layer:
    """One ANN layer: a linear op (``kind`` gemm/conv/pool/flatten) and whether a ReLU follows."""

    kind: str
    weight: Array | None = None
    bias: Array | None = None
    attrs: dict[str, Any] | None = None
    relu: bool = False


Op = Callable[[Any, dict[str, Array], list[Layer]], None]
_OPS: dict[str, Op] = {}


def _op(*names: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        for name in names:
            _OPS[name] = fn
        return fn

    return register


def supported() -> list[str]:
    """The ONNX op types ``convert`` reads."""
    return sorted(_OPS)


def _const(node: Any, consts: dict[str, Array], i: int) -> Array:
    """Input ``i`` of ``node``, which must be constant (an initialiser or a Constant node)."""
    name = node.input[i] if i < len(node.input) else None
    if name not in consts:
        raise InputFileError(
            f"{node.op_type} {node.name!r}: input {i} ({name!r}) is not an initialiser or a "
            "Constant; only constant weights convert (export with the weights included)"
        )
    return consts[name]


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@_op("Gemm")
def _gemm(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    a = _attrs(node)
    if a.get("transA", 0):
        raise UnsupportedOpError(f"Gemm {node.name!r}: transA=1 is not supported")
    w = _const(node, consts, 1) * a.get("alpha", 1.0)
    w = w if a.get("transB", 0) else w.T  # ONNX Gemm: y = x·B (+C); ours is W·x with W [out,in]
    bias = _const(node, consts, 2) * a.get("beta", 1.0) if len(node.input) > 2 else np.zeros(len(w))
    layers.append(Layer("gemm", w, np.broadcast_to(bias, (len(w),)).copy()))


@_op("MatMul")
def _matmul(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    w = _const(node, consts, 1).T
    layers.append(Layer("gemm", w, np.zeros(len(w))))


@_op("Add")
def _add(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    const = next((consts[i] for i in node.input if i in consts), None)
    if const is None or not layers or layers[-1].kind not in ("gemm", "conv") or layers[-1].relu:
        raise UnsupportedOpError(
            f"Add {node.name!r}: only a constant bias after MatMul/Conv converts"
        )
    bias = layers[-1].bias
    assert bias is not None
    layers[-1].bias = bias + np.broadcast_to(const.reshape(-1), bias.shape)


@_op("Conv")
def _conv(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    a = _attrs(node)
    w = _const(node, consts, 1)
    if w.ndim != 4 or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedOpError(f"Conv {node.name!r}: only 2-d convs with explicit pads convert")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise UnsupportedOpError(f"Conv {node.name!r}: asymmetric pads {pads}")
    bias = _const(node, consts, 2) if len(node.input) > 2 else np.zeros(w.shape[0])
    attrs = {
        "stride": tuple(a.get("strides", [1, 1])),
        "padding": tuple(pads[:2]),
        "dilation": tuple(a.get("dilations", [1, 1])),
        "groups": int(a.get("group", 1)),
    }
    layers.append(Layer("conv", w, bias.copy(), attrs))


@_op("AveragePool")
def _pool(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    a = _attrs(node)
    if a.get("ceil_mode", 0) or any(a.get("pads", [0])):
        raise UnsupportedOpError(f"AveragePool {node.name!r}: pads/ceil_mode do not convert")
    if "kernel_shape" not in a:
        raise InputFileError(f"AveragePool {node.name!r} has no kernel_shape (required by ONNX)")
    k = tuple(a["kernel_shape"])
    layers.append(Layer("pool", attrs={"kernel": k, "stride": tuple(a.get("strides", k))}))


@_op("Flatten")
def _flatten(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    if _attrs(node).get("axis", 1) != 1:
        raise UnsupportedOpError(f"Flatten {node.name!r}: only axis=1 converts")
    layers.append(Layer("flatten"))


@_op("Relu")
def _relu(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    if not layers or layers[-1].relu:
        raise UnsupportedOpError(f"Relu {node.name!r} must follow a linear layer")
    layers[-1].relu = True


@_op("BatchNormalization")
def _bn(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    gamma, beta, mean, var = (_const(node, consts, i) for i in range(1, 5))
    scale = gamma / np.sqrt(var + _attrs(node).get("epsilon", 1e-5))
    last = layers[-1] if layers else None
    if last is None or last.kind not in ("gemm", "conv") or last.relu:
        raise UnsupportedOpError(f"BatchNormalization {node.name!r} must follow Conv or Gemm")
    assert last.weight is not None
    assert last.bias is not None
    last.weight = last.weight * scale.reshape((-1,) + (1,) * (last.weight.ndim - 1))
    last.bias = scale * (last.bias - mean) + beta


@_op("Identity", "Dropout")
def _identity(node: Any, consts: dict[str, Array], layers: list[Layer]) -> None:
    return None


def read(path: Path) -> tuple[list[Layer], tuple[int, ...]]:
    """Parse an ONNX chain into layers and the per-sample input shape."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputFileError("ONNX models need the 'onnx' package (pip install onnx)") from exc
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise InputFileError(f"{path} is not a readable ONNX file: {exc}") from exc
    g = model.graph
    tensors = [*g.initializer, *(a.t for node in g.node for a in node.attribute if a.HasField("t"))]
    external = [t.name for t in tensors if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise InputFileError(
            f"{path}: tensors {external[:4]} keep their data in external files; refused: a "
            "model file must hold all of its data"
        )
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    for node in g.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"]).astype(np.float64)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise UnsupportedOpError(f"{path}: exactly one graph input is supported, got {len(inputs)}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim][1:]
    layers: list[Layer] = []
    for node in g.node:
        if node.op_type == "Constant":
            continue
        if node.op_type not in _OPS:
            raise UnsupportedOpError(
                f"ONNX op {node.op_type} (node {node.name!r}) does not convert to an SNN; "
                f"supported: {', '.join(supported())}"
            )
        _OPS[node.op_type](node, consts, layers)
    return layers, tuple(int(d) for d in dims)


def ann_forward(layers: list[Layer], x: Array) -> list[Array]:
    """The ANN in numpy (``x``: ``[batch, *shape]``); returns each layer's output."""
    import torch  # the conv reference; torch is a core dependency of this frontend's users

    outs = []
    h = torch.as_tensor(x, dtype=torch.float64)
    for layer in layers:
        if layer.kind == "gemm":
            h = h @ torch.as_tensor(layer.weight).T + torch.as_tensor(layer.bias)
        elif layer.kind == "conv":
            a = layer.attrs or {}
            h = torch.nn.functional.conv2d(
                h,
                torch.as_tensor(layer.weight),
                torch.as_tensor(layer.bias),
                stride=a["stride"],
                padding=a["padding"],
                dilation=a["dilation"],
                groups=a["groups"],
            )
        elif layer.kind == "pool":
            a = layer.attrs or {}
            h = torch.nn.functional.avg_pool2d(h, a["kernel"], a["stride"])
        elif layer.kind == "flatten":
            h = h.flatten(1)
        if layer.relu:
            h = torch.relu(h)
        outs.append(h.numpy())
    return outs


@dataclass(frozen=True)
class Conversion:
    """The converted SNN: the NIR graph, the activation scales and the ANN's calibration outputs."""

    nir_graph: nir.NIRGraph
    scales: tuple[float, ...]
    input_scale: float
    ann_outputs: Array

    def encode(self, x: Array, steps: int) -> Array:
        """Deterministic rate code: ``[batch, *shape]`` -> ``[batch, steps, *shape]`` spikes."""
        return encode(x, steps, self.input_scale)


def encode(x: Array, steps: int, scale: float) -> Array:
    """Integrate ``x/scale`` each step and spike (subtract 1) when it reaches 1."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(x < 0):
        raise InputFileError("rate-coded inputs must be >= 0 (shift or rescale the inputs)")
    rate = np.clip(x / scale, 0, 1)
    acc = np.zeros_like(rate)
    out = np.zeros((x.shape[0], steps, *x.shape[1:]))
    for t in range(steps):
        acc += rate
        out[:, t] = acc >= 1.0
        acc -= out[:, t]
    return out


def convert(path: Path, calibration: Array, *, percentile: float = 99.9) -> Conversion:
    """Convert the ReLU ANN in ``path`` with threshold balancing on ``calibration`` inputs.

    Args:
        path: an ONNX file.
        calibration: ``[batch, *shape]`` analog inputs (>= 0) for the activation statistics.
        percentile: which percentile of each layer's activations sets its scale λ.
    """
    layers, shape = read(path)
    calibration = np.asarray(calibration, dtype=np.float64)
    if (
        calibration.ndim != len(shape) + 1
        or len(calibration) == 0
        or any(d not in (0, c) for d, c in zip(shape, calibration.shape[1:], strict=True))
    ):
        expected = ", ".join(str(d or "?") for d in shape)
        raise InputFileError(
            f"calibration inputs have shape {list(calibration.shape)}; {path.name} takes "
            f"[batch >= 1, {expected}]"
        )
    if not np.all(np.isfinite(calibration)):
        raise InputFileError("calibration inputs contain NaN or inf")
    outs = ann_forward(layers, calibration)
    input_scale = float(calibration.max()) or 1.0
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: list[tuple[str, str]] = []
    previous, prev_scale, scales = "input", input_scale, []
    cur_shape = shape
    for i, (layer, out) in enumerate(zip(layers, outs, strict=True)):
        name = f"{layer.kind}{i}"
        last_weighted = all(lay.kind in ("pool", "flatten") for lay in layers[i + 1 :])
        if layer.kind in ("gemm", "conv"):
            lam = float(np.percentile(out, percentile)) if layer.relu else 1.0
            lam = lam if lam > 0 else 1.0
            assert layer.weight is not None
            assert layer.bias is not None
            w, b = layer.weight * prev_scale / lam, layer.bias / lam
            if layer.kind == "gemm":
                nodes[name] = nir.Affine(weight=w, bias=b)
            else:
                a = layer.attrs or {}
                nodes[name] = nir.Conv2d(
                    input_shape=cur_shape[1:],
                    weight=w,
                    bias=b,
                    stride=a["stride"],
                    padding=a["padding"],
                    dilation=a["dilation"],
                    groups=a["groups"],
                )
            scales.append(lam)
            prev_scale = lam
        elif layer.kind == "pool":
            a = layer.attrs or {}
            nodes[name] = nir.AvgPool2d(
                kernel_size=np.array(a["kernel"]),
                stride=np.array(a["stride"]),
                padding=np.array((0, 0)),
            )
        else:
            nodes[name] = nir.Flatten(input_type={"input": np.array(cur_shape)}, start_dim=0)
        edges.append((previous, name))
        previous, cur_shape = name, tuple(out.shape[1:])
        size = np.array(cur_shape)
        if layer.relu:
            neuron = f"if{i}"
            nodes[neuron] = nir.IF(
                r=np.ones(size),
                v_threshold=np.ones(size),
                v_reset=np.zeros(size),
                metadata={RESET_KEY: ResetMode.SUBTRACT.value},
            )
        elif layer.kind in ("gemm", "conv") and last_weighted:
            neuron = f"out{i}"
            nodes[neuron] = nir.I(r=np.ones(size))
        else:
            continue
        edges.append((previous, neuron))
        previous = neuron
    if isinstance(nodes[previous], (nir.Affine, nir.Conv2d, nir.AvgPool2d, nir.Flatten)):
        raise UnsupportedOpError("the ANN must end with a Gemm/Conv (logits) or a Relu")
    nodes["output"] = nir.Output(output_type={"output": np.array(cur_shape)})
    edges.append((previous, "output"))
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    return Conversion(graph, tuple(scales), input_scale, outs[-1])


def load(
    source: Path,
    *,
    reset: ResetMode | None = None,
    calibration: Array | None = None,
    percentile: float = 99.9,
) -> Graph:
    """Convert an ONNX ReLU ANN to a verified IR graph (``calibration`` is required)."""
    if calibration is None:
        raise InputFileError(
            f"{source}: converting an ANN needs calibration inputs "
            "(snn-deploy convert model.onnx --calibrate inputs.npz)"
        )
    return load_nir(convert(source, calibration, percentile=percentile).nir_graph, reset=reset)
