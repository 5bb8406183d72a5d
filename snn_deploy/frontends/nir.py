"""NIR <-> IR: ``load`` reads a NIR graph into a verified ``ir.Graph``; ``dump`` writes one back.

Nested ``NIRGraph`` nodes are flattened into dotted names (``lif1.lin``) and their inner
Input/Output nodes are bypassed, so the IR is always flat. The neuron reset mode, which NIR does
not record, is kept in node metadata under ``snn_deploy.reset`` so that ``dump`` -> ``load``
round-trips it; likewise the number of spike levels of a multi-level (graded-spike) neuron under
``snn_deploy.spike_levels`` (absent: 1, binary spikes; docs/SEMANTICS.md §1.1), the reset
timing under ``snn_deploy.reset_timing`` (absent: immediate) and the threshold compare under
``snn_deploy.threshold_compare`` (absent: ``>``; docs/SEMANTICS.md §1.2). A CubaLIF with a
second synaptic current carries its time constant under ``snn_deploy.tau_syn2`` (seconds), and
an Affine or Linear node on a path into that current ``snn_deploy.synapse = 1`` (absent: 0;
docs/SEMANTICS.md §1.3): NIR has no two-current neuron, and a plain NIR reader sees one current
fed by both paths. The product
nodes NIR lacks (``Attention``, ``Gate``; docs/SEMANTICS.md §4) are NIR nodes of our own types
``snn_deploy.Attention`` and ``snn_deploy.Gate``, which plain NIR readers reject.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import h5py
import nir
import numpy as np

from snn_deploy.errors import InputFileError, UnsupportedOpError, VerificationError
from snn_deploy.frontends import exporters, hdf5
from snn_deploy.frontends.isolated import ReaderError, read_isolated
from snn_deploy.ir import nodes as n
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare
from snn_deploy.limits import COPY_BYTES, check_memory

RESET_KEY = "snn_deploy.reset"
TIMING_KEY = "snn_deploy.reset_timing"
COMPARE_KEY = "snn_deploy.threshold_compare"
LEVELS_KEY = "snn_deploy.spike_levels"
"""Metadata of a spiking neuron node (LIF, CubaLIF, IF): its spike levels D, an int >= 1."""
SCALE_KEY = "snn_deploy.voltage_scale"
INPUT_MAX_KEY = "snn_deploy.input_max"
TAU_SYN2_KEY = "snn_deploy.tau_syn2"
SYNAPSE_KEY = "snn_deploy.synapse"
"""Metadata of an Input node: the largest |payload| it will be fed, a number > 0
(docs/SEMANTICS.md §3; absent: binary spikes unless the compile's data shows more)."""

PRODUCT_PREFIX = "snn_deploy."
"""NIR type strings of our product nodes: ``snn_deploy.Attention``, ``snn_deploy.Gate``."""


@dataclass(eq=False)
class Attention(nir.NIRNode):  # type: ignore[misc]  # nir is untyped
    """NIR encoding of ``ir.nodes.Attention`` (docs/SEMANTICS.md §4): type ``snn_deploy.Attention``.

    NIR has no such primitive. Plain ``nir.read`` rejects the type (``str2NIRNode`` knows only
    NIR's own), and in memory it is a class no other NIR consumer converts, so no reader can
    mistake it for a NIR node; ``load`` and ``read`` here know it.
    """

    dim: int
    heads: int
    decay: np.ndarray[Any, Any]
    causal: bool
    steps: int

    def __post_init__(self) -> None:
        self.input_type = {"input": np.array([3 * self.dim])}
        self.output_type = {"output": np.array([self.dim])}

    def to_dict(self) -> dict[str, Any]:
        """Serialize with the type string ``snn_deploy.Attention``."""
        out: dict[str, Any] = super().to_dict()
        out["type"] = PRODUCT_PREFIX + "Attention"
        return out


@dataclass(eq=False)
class Gate(nir.NIRNode):  # type: ignore[misc]  # nir is untyped
    """NIR encoding of ``ir.nodes.Gate``: type ``snn_deploy.Gate`` (see ``Attention``)."""

    dim: int

    def __post_init__(self) -> None:
        self.input_type = {"input": np.array([2 * self.dim])}
        self.output_type = {"output": np.array([self.dim])}

    def to_dict(self) -> dict[str, Any]:
        """Serialize with the type string ``snn_deploy.Gate``."""
        out: dict[str, Any] = super().to_dict()
        out["type"] = PRODUCT_PREFIX + "Gate"
        return out


_CONVERTERS: dict[type[Any], Callable[[Any, tuple[int, ...]], dict[str, Any]]] = {}
_IR_TYPE: dict[type[Any], type[n.Node]] = {}


def _converter(
    nir_type: type[Any], ir_type: type[n.Node]
) -> Callable[[Callable[[Any, tuple[int, ...]], dict[str, Any]]], Any]:
    def register(fn: Callable[[Any, tuple[int, ...]], dict[str, Any]]) -> Any:
        _CONVERTERS[nir_type] = fn
        _IR_TYPE[nir_type] = ir_type
        return fn

    return register


def supported() -> list[str]:
    """Names of the NIR node types this frontend converts."""
    return [*sorted(t.__name__ for t in _CONVERTERS), "NIRGraph (flattened)"]


def _pair(value: Any, dims: int) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value, dtype=np.int64))
    return tuple(int(v) for v in np.broadcast_to(arr, (dims,)))


def _conv_padding(node: Any, dims: int) -> tuple[int, ...]:
    if isinstance(node.padding, str):
        if node.padding == "valid":
            return (0,) * dims
        kernel = np.asarray(node.weight).shape[2:]
        dilation = _pair(node.dilation, dims)
        total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        if any(t % 2 for t in total) or np.any(_pair(node.stride, dims) != (1,) * dims):
            raise UnsupportedOpError(
                "Conv padding='same' needs stride 1 and an odd dilated kernel; got kernel "
                f"{list(kernel)}, dilation {list(dilation)}"
            )
        return tuple(t // 2 for t in total)
    return _pair(node.padding, dims)


def _conv(dims: int) -> Callable[[Any, tuple[int, ...]], dict[str, Any]]:
    def convert(node: Any, shape: tuple[int, ...]) -> dict[str, Any]:
        weight = np.asarray(node.weight, dtype=np.float64)
        return {
            "weight": weight,
            "bias": np.broadcast_to(np.asarray(node.bias, dtype=np.float64), weight.shape[:1]),
            "stride": _pair(node.stride, dims),
            "padding": _conv_padding(node, dims),
            "dilation": _pair(node.dilation, dims),
            "groups": int(np.asarray(node.groups)),
        }

    return convert


def _pool(node: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    return {
        "kernel_size": _pair(node.kernel_size, 2),
        "stride": _pair(node.stride, 2),
        "padding": _pair(node.padding, 2),
    }


def _params(*names: str) -> Callable[[Any, tuple[int, ...]], dict[str, Any]]:
    """Per-neuron parameters broadcast to the node's shape; missing v_reset means 0."""

    def convert(node: Any, shape: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(node, name, None)
            value = 0.0 if value is None else np.asarray(value, dtype=np.float64)
            try:
                out[name] = np.broadcast_to(value, shape)
            except ValueError as exc:
                raise VerificationError(
                    f"{type(node).__name__}.{name} has shape {list(np.shape(value))}, "
                    f"which does not fit the node shape {list(shape)}"
                ) from exc
        if "v_threshold" in names:
            out["reset"] = ResetMode(node.metadata.get(RESET_KEY, ResetMode.ZERO.value))
            out["reset_timing"] = _enum(node, TIMING_KEY, ResetTiming.IMMEDIATE)
            out["threshold_compare"] = _enum(node, COMPARE_KEY, ThresholdCompare.GT)
        if LEVELS_KEY in node.metadata:
            levels = _levels(node.metadata[LEVELS_KEY])
            if "v_threshold" in names:
                out["levels"] = levels
            elif levels != 1:
                raise VerificationError(
                    f"{type(node).__name__} cannot have {LEVELS_KEY} = {levels}: only LIF, "
                    "CubaLIF and IF nodes emit multi-level spikes"
                )
        if SCALE_KEY in node.metadata:
            out["voltage_scale"] = float(node.metadata[SCALE_KEY])
        if TAU_SYN2_KEY in node.metadata:
            if names[:1] != ("tau_syn",) or "v_threshold" not in names:
                raise VerificationError(
                    f"{type(node).__name__} cannot have {TAU_SYN2_KEY}: only CubaLIF nodes have "
                    "a second synaptic current"
                )
            out["tau_syn2"] = _tau_syn2(node.metadata[TAU_SYN2_KEY], shape)
        return out

    return convert


E = TypeVar("E", ResetTiming, ThresholdCompare)


def _enum(node: Any, key: str, default: E) -> E:
    """A metadata value of an enum (absent: ``default``), or an error naming the values."""
    raw = node.metadata.get(key, default.value)
    try:
        return type(default)(raw)
    except ValueError:
        known = ", ".join(repr(m.value) for m in type(default))
        raise VerificationError(f"metadata {key!r} must be one of {known}, got {raw!r}") from None


def _levels(raw: Any) -> int:
    """The spike levels in metadata: an integer >= 1 (a numpy integer after an HDF5 file)."""
    value = np.asarray(raw)
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) or int(value) < 1:
        raise VerificationError(f"metadata {LEVELS_KEY!r} must be an integer >= 1, got {raw!r}")
    return int(value)


def _tau_syn2(raw: Any, shape: tuple[int, ...]) -> Any:
    """``snn_deploy.tau_syn2``: finite seconds > 0, a number or one per neuron."""
    value = np.asarray(raw)
    if value.dtype.kind not in "iuf" or not np.all(np.isfinite(value) & (value > 0)):
        raise VerificationError(f"metadata {TAU_SYN2_KEY!r} must be seconds > 0, got {raw!r}")
    try:
        return np.broadcast_to(value.astype(np.float64), shape)
    except ValueError as exc:
        raise VerificationError(
            f"metadata {TAU_SYN2_KEY!r} has shape {list(value.shape)}, which does not fit the "
            f"node shape {list(shape)}"
        ) from exc


def _synapse(node: Any) -> dict[str, Any]:
    """An Affine or Linear node's ``snn_deploy.synapse``: 0 or 1 (absent: 0, written as no key)."""
    if SYNAPSE_KEY not in node.metadata:
        return {}
    raw = node.metadata[SYNAPSE_KEY]
    value = np.asarray(raw)
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.integer) or int(value) not in (0, 1):
        raise VerificationError(
            f"metadata {SYNAPSE_KEY!r} must be 0 (the current) or 1 (the second current), "
            f"got {raw!r}"
        )
    return {"synapse": int(value)}


def _input(node: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    """An Input node's declared payload range, if its metadata has one."""
    if INPUT_MAX_KEY not in node.metadata:
        return {}
    value = np.asarray(node.metadata[INPUT_MAX_KEY])
    if value.ndim != 0 or value.dtype.kind not in "iuf" or not 0 < float(value) < np.inf:
        raise VerificationError(
            f"metadata {INPUT_MAX_KEY!r} must be a finite number > 0, got "
            f"{node.metadata[INPUT_MAX_KEY]!r}"
        )
    return {"payload_max": float(value)}


_converter(nir.Input, n.Input)(_input)
_converter(nir.Output, n.Output)(lambda node, shape: {})
_converter(nir.Affine, n.Affine)(
    lambda node, shape: {"weight": node.weight, "bias": node.bias, **_synapse(node)}
)
_converter(nir.Linear, n.Linear)(lambda node, shape: {"weight": node.weight, **_synapse(node)})
_converter(nir.Scale, n.Scale)(_params("scale"))
_converter(nir.Conv1d, n.Conv1d)(_conv(1))
_converter(nir.Conv2d, n.Conv2d)(_conv(2))
_converter(nir.SumPool2d, n.SumPool2d)(_pool)
_converter(nir.AvgPool2d, n.AvgPool2d)(_pool)
_converter(nir.Flatten, n.Flatten)(
    lambda node, shape: {"start_dim": int(node.start_dim), "end_dim": int(node.end_dim)}
)
_converter(nir.Delay, n.Delay)(_params("delay"))
_converter(nir.Threshold, n.Threshold)(_params("threshold"))
_converter(nir.I, n.I)(_params("r"))
_converter(nir.IF, n.IF)(_params("r", "v_threshold", "v_reset"))
_converter(nir.LI, n.LI)(_params("tau", "r", "v_leak"))
_converter(nir.LIF, n.LIF)(_params("tau", "r", "v_leak", "v_threshold", "v_reset"))
_converter(nir.CubaLI, n.CubaLI)(_params("tau_syn", "tau_mem", "r", "v_leak", "w_in"))
_converter(nir.CubaLIF, n.CubaLIF)(
    _params("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
)


_converter(Attention, n.Attention)(
    lambda node, shape: {
        "heads": int(node.heads),
        "decay": tuple(int(d) for d in np.atleast_1d(node.decay)),
        "causal": bool(node.causal),
        "steps": int(node.steps),
    }
)
_converter(Gate, n.Gate)(lambda node, shape: {})


def read(path: Path, *, data: bytes | None = None) -> nir.NIRGraph:
    """Read a NIR HDF5 file (or ``data``, the bytes of one stored inside ``path``) in a forked
    child (``frontends.isolated``) after ``frontends.hdf5.check``; any reader failure becomes one
    clear ``InputFileError``."""
    what = f"{path}" if data is None else f"{path}: the NIR bytes in 'architecture'"
    if data is None and not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        return read_isolated(partial(_read_nir, data), path)
    except ReaderError as exc:
        if exc.os_error:
            raise InputFileError(
                f"{what} is not a readable NIR (HDF5) file: {exc.message}"
            ) from None
        raise InputFileError(f"{what}: the NIR reader failed ({exc})") from None


def _read_nir(data: bytes | None, path: Path) -> nir.NIRGraph:
    """``nir.read(..., type_check=False)`` after ``hdf5.check``, that also knows the
    ``snn_deploy.*`` product nodes (a file without them reads exactly as with ``nir.read``)."""
    from nir.serialization import hdf2dict

    with h5py.File(path if data is None else io.BytesIO(data), "r") as f:
        hdf5.check(f, path)
        raw = hdf2dict(f["node"])
    graph = _from_dict({**raw, "type_check": False})
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"the file holds a {type(graph).__name__}, not a NIRGraph")
    return graph


def _kind(raw: dict[str, Any]) -> str:
    kind = raw["type"]
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def _from_dict(raw: dict[str, Any]) -> Any:
    """A NIR node from its ``hdf2dict`` form: ours here, NIR's own by ``nir.dict2NIRNode``."""
    kind, fields = _kind(raw), {k: v for k, v in raw.items() if k != "type"}
    products = {PRODUCT_PREFIX + c.__name__: c for c in (Attention, Gate)}
    if kind in products:
        return products[kind](**fields)
    if kind != "NIRGraph":
        return nir.dict2NIRNode(raw)
    return nir.NIRGraph(  # nested graphs too: their types are checked after flattening
        nodes={k: _from_dict(v) for k, v in fields["nodes"].items()},
        edges=[
            (nir.ir.utils.ensure_str(a), nir.ir.utils.ensure_str(b)) for a, b in fields["edges"]
        ],
        metadata=fields.get("metadata", {}),
        type_check=False,
    )


def load(
    source: Path | nir.NIRGraph,
    *,
    reset: ResetMode | None = None,
    origin: Path | None = None,
    exporter: str | None = None,
    dt: float = DEFAULT_DT,
    detect_exporter: bool = True,
) -> Graph:
    """Convert a NIR graph (or ``.nir`` file) into a verified IR graph.

    Args:
        source: a path to a ``.nir`` file or an in-memory ``nir.NIRGraph``.
        reset: override the reset mode of every spiking neuron (NIR files do not record it).
        origin: the file an in-memory graph was read from, for error messages.
        detect_exporter: warn when the graph looks like a framework exporter's output read
            without its ``exporter`` profile; off for graphs our own converters wrote.
        exporter: read the graph with this exporter's conventions (``frontends.exporters``:
            ``NAME`` or ``NAME{dt=SECONDS}``); None reads plain NIR and warns when the graph
            carries a known exporter's signature.
        dt: the compile time step, at which an exporter's per-step dynamics are written.

    Returns:
        The flat, verified graph.

    Raises:
        InputFileError: the file cannot be read.
        ResourceLimitError: the declared node shapes need more than ``max_memory()``.
        UnsupportedOpError: a node type has no converter.
        VerificationError: the graph breaks an IR invariant.
    """
    graph = read(source) if isinstance(source, Path) else source
    where = source if isinstance(source, Path) else origin or "the NIR graph"
    flat_nodes, edges = _flatten(graph, prefix="")
    profile, exporter_dt, reset_delay = (
        exporters.parse(exporter) if exporter else (None, None, True)
    )
    if profile is None:
        found = exporters.detect(flat_nodes, edges) if detect_exporter else None
        if found is not None:
            warnings.warn(
                f"{where} looks like a {found[0]} export ({found[1]}); pass --exporter "
                f"{found[0]} to read it with that exporter's conventions (docs/FRONTENDS.md §7)",
                UserWarning,
                stacklevel=2,
            )
    else:
        flat_nodes = profile.structure(flat_nodes, edges)
        onset = {RESET_KEY: ResetMode.ZERO.value, LEVELS_KEY: 1}
        flat_nodes, edges = exporters.gate_biases(flat_nodes, edges, dt, onset)
        if profile.warning is not None:
            warnings.warn(f"{where}: {profile.warning}", UserWarning, stacklevel=2)
    shapes = _input_shapes(flat_nodes, edges)
    _check_declared_shapes(source if isinstance(source, Path) else origin, flat_nodes, shapes)
    nodes: dict[str, n.Node] = {}
    for name, node in flat_nodes.items():
        ir_type = _IR_TYPE[type(node)]
        in_shape = shapes[name]
        try:
            params = _CONVERTERS[type(node)](node, in_shape)
        except VerificationError as exc:
            raise VerificationError(f"node {name!r}: {exc}") from exc
        if reset is not None and "reset" in params:
            params["reset"] = reset
        if profile is not None and name != exporters.ONSET:
            ctx = exporters.Context(dt, exporter_dt or dt, reset_delay)
            params = _apply_profile(profile, node, params, ctx, overridden=reset is not None)
        out_shape = ir_type.out_shape_of(SimpleNamespace(**params), in_shape)
        nodes[name] = ir_type(in_shape=in_shape, out_shape=out_shape, **params)
    result = Graph(nodes=nodes, edges=tuple(edges))
    result.verify()
    return result


def _apply_profile(
    profile: exporters.Profile,
    node: Any,
    params: dict[str, Any],
    ctx: exporters.Context,
    *,
    overridden: bool,
) -> dict[str, Any]:
    """A neuron's parameters read with ``profile``'s conventions (stateless nodes unchanged):
    what the file's metadata leaves out (reset mode unless ``overridden`` by ``--reset``, its
    timing, spike levels, threshold compare) is the framework's default."""
    if not isinstance(node, exporters.NEURON_TYPES):
        return params
    kind = type(node).__name__
    out = profile.fix(kind, params, ctx)
    if "reset" not in out:
        return out
    if RESET_KEY not in node.metadata and not overridden:
        out["reset"] = profile.reset
    if profile.timing is not None and TIMING_KEY not in node.metadata:
        out["reset_timing"] = profile.timing(kind, out["reset"], ctx)
    if profile.levels is not None and LEVELS_KEY not in node.metadata:
        out["levels"] = profile.levels
    if COMPARE_KEY not in node.metadata:
        out["threshold_compare"] = profile.compare
    return out


def _check_declared_shapes(
    origin: Path | None, nodes: dict[str, Any], shapes: dict[str, tuple[int, ...]]
) -> None:
    """Refuse, before any parameter is broadcast, a graph whose nodes' parameter arrays at their
    declared shapes (a 17 kB file can declare 10^9 neurons) exceed the memory limit."""
    total = 0
    for name, node in nodes.items():
        shape = shapes[name]
        total += len(_IR_TYPE[type(node)].ARRAYS) * math.prod(shape) * COPY_BYTES
        check_memory(
            origin or "NIR graph",
            f"node {name!r} ({type(node).__name__}) of declared shape {list(shape)}",
            total,
        )


def _flatten(graph: nir.NIRGraph, prefix: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inline nested graphs; bypass their Input/Output nodes."""
    nodes: dict[str, Any] = {}
    edges = [(prefix + s, prefix + d) for s, d in graph.edges]
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges = _flatten(node, prefix=full + ".")
            nodes.update(inner)
            edges += inner_edges
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            edges = [
                (
                    f"{full}.{outs[0]}" if s == full and len(outs) == 1 else s,
                    f"{full}.{ins[0]}" if d == full and len(ins) == 1 else d,
                )
                for s, d in edges
            ]
            for border in ins + outs:
                key = f"{full}.{border}"
                preds = [s for s, d in edges if d == key]
                succs = [d for s, d in edges if s == key]
                edges = [e for e in edges if key not in e] + [(s, d) for s in preds for d in succs]
                del nodes[key]
        elif type(node) in _CONVERTERS:
            nodes[full] = node
        else:
            raise UnsupportedOpError(
                f"node {full!r} has type {type(node).__name__}, which snn-deploy does not "
                f"support; supported: {', '.join(supported())}"
            )
    return nodes, list(dict.fromkeys(edges))


def _input_shapes(
    nodes: dict[str, Any], edges: list[tuple[str, str]]
) -> dict[str, tuple[int, ...]]:
    """Each node's per-sample input shape: from NIR's input_type, else from its source."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, node in nodes.items():
        declared = (node.input_type or {}).get("input")
        if isinstance(node, nir.Output) and node.output_type:
            declared = node.output_type.get("output", declared)
        if declared is not None and np.size(declared) > 0:
            shapes[name] = tuple(int(d) for d in np.atleast_1d(declared))
    pending = [k for k in nodes if k not in shapes]
    while pending:
        progress = False
        for name in pending:
            srcs = [s for s, d in edges if d == name and s in shapes and s in nodes]
            if srcs:
                src, shape = nodes[srcs[0]], shapes[srcs[0]]
                params = SimpleNamespace(**_CONVERTERS[type(src)](src, shape))
                shapes[name] = _IR_TYPE[type(src)].out_shape_of(params, shape)
                progress = True
        pending = [k for k in pending if k not in shapes]
        if not progress:
            raise VerificationError(f"cannot infer the input shape of node(s) {pending}")
    return shapes


def dump(graph: Graph) -> nir.NIRGraph:
    """Convert an IR graph back into a flat ``nir.NIRGraph`` (float parameters)."""
    out: dict[str, Any] = {}
    for name, node in graph.nodes.items():
        out[name] = _to_nir(node)
    return nir.NIRGraph(nodes=out, edges=list(graph.edges), type_check=False)


def _to_nir(node: n.Node) -> Any:
    shape = np.array(node.in_shape)
    if isinstance(node, n.Input):
        declared = {} if node.payload_max is None else {INPUT_MAX_KEY: node.payload_max}
        return nir.Input(input_type={"input": shape}, metadata=declared)
    if isinstance(node, n.Output):
        return nir.Output(output_type={"output": shape})
    if isinstance(node, n.Attention):
        return Attention(
            dim=node.out_shape[0],
            heads=node.heads,
            decay=np.array(node.decay, dtype=np.int64),
            causal=node.causal,
            steps=node.steps,
        )
    if isinstance(node, n.Gate):
        return Gate(dim=node.out_shape[0])
    nir_type = next(t for t, ir_t in _IR_TYPE.items() if ir_t is type(node))
    kwargs: dict[str, Any] = {f: np.array(getattr(node, f)) for f in node.ARRAYS}
    metadata: dict[str, Any] = {}
    if isinstance(node, (n.Conv1d, n.Conv2d)):
        kwargs.update(
            input_shape=node.in_shape[1] if isinstance(node, n.Conv1d) else node.in_shape[1:],
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
            groups=node.groups,
        )
    elif isinstance(node, n.SumPool2d):
        kwargs.update(
            kernel_size=np.array(node.kernel_size),
            stride=np.array(node.stride),
            padding=np.array(node.padding),
        )
    elif isinstance(node, n.Flatten):
        kwargs.update(input_type={"input": shape}, start_dim=node.start_dim, end_dim=node.end_dim)
    if hasattr(node, "reset"):
        metadata[RESET_KEY] = node.reset.value
    if isinstance(node, (n.IF, n.LIF, n.CubaLIF)):  # absent keys: immediate, > (older files)
        if node.reset_timing is not ResetTiming.IMMEDIATE:
            metadata[TIMING_KEY] = node.reset_timing.value
        if node.threshold_compare is not ThresholdCompare.GT:
            metadata[COMPARE_KEY] = node.threshold_compare.value
    if isinstance(node, (n.IF, n.LIF, n.CubaLIF)) and node.levels != 1:
        metadata[LEVELS_KEY] = node.levels  # absent means binary: binary nets write no key
    if isinstance(node, n.Neuron) and node.voltage_scale is not None:
        metadata[SCALE_KEY] = node.voltage_scale
    if isinstance(node, n.CubaLIF) and node.tau_syn2 is not None:
        metadata[TAU_SYN2_KEY] = np.array(node.tau_syn2)
    if isinstance(node, (n.Affine, n.Linear)) and node.synapse != 0:
        metadata[SYNAPSE_KEY] = node.synapse
    result = nir_type(**kwargs, metadata=metadata) if metadata else nir_type(**kwargs)
    if isinstance(node, (n.Affine, n.Linear, n.Conv1d, n.Conv2d, n.SumPool2d)) or not node.ARRAYS:
        result.input_type = {"input": shape}
        result.output_type = {"output": np.array(node.out_shape)}
    return result
