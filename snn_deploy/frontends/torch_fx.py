"""Real model code: a multi-step PyTorch module traced with ``torch.fx`` -> NIR.

See docs/FRONTENDS.md §6.

``frontends.torch.load`` sends here every live (or ``--trust-pickle``) module that is not a
``Sequential`` chain: SpikingJelly-style code whose ``forward`` has residual additions,
branches, permutes between ``[T, B, C]`` and ``[B, C, T]`` and convolutions over time. The
module is traced symbolically (nothing runs); modules with a converter in
``frontends.torch`` (neurons, Linear, Conv, BatchNorm, Dropout, our ``snn_deploy.nn`` layers)
and SpikingJelly's ``MultiStepContainer``/``SeqToANNContainer`` are leaves, everything else is
traced through. Each traced value is a NIR node plus what the tensor's axes are (time ``T``,
batch ``B`` or a per-sample feature axis), its *lag* and a pending constant:

* **Lag.** The source runs every layer in the same step; our projections deliver one step later
  (docs/SEMANTICS.md §1). A value's lag is how many steps after the source's our copy of it
  comes: a neuron fed by a value of lag ``l`` has lag ``l + 1`` (an ``snn_deploy.nn.Linear``,
  already delayed in its own forward, counts ``-1``). Where branches merge (``a + b``), the
  earlier one gets a NIR ``Delay`` of the difference, so the sum is exact; the graph's output
  lags the source by the returned latency.
* **Constants** (Linear/Conv biases, BatchNorm shifts, added numbers) act from the source's
  step 0, which is our step ``lag``. They enter through one always-spiking node ``bias_onset``
  and a ``Delay`` of ``lag`` steps, so nothing acts before its input does.
* **Temporal convolution** (``Conv1d`` whose last axis is time): tap ``k`` of ``K`` (dilation
  ``d``, left padding ``p``) is a ``Linear`` of the kernel column behind a ``Delay`` of
  ``d(K-1) - p - d·k`` steps; the lag grows by ``max(0, d(K-1) - p)``: ``(K-1)/2`` for "same"
  padding, 0 for causal (left-only) padding.
* **BatchNorm** is a ``Scale`` plus a constant wherever it stands; ``lower`` folds it into the
  projection it sits on, exactly.
* A ``Linear`` read-out with no neuron after it becomes an ``I`` integrator (its output at a
  step is the sum of the read-out over the steps so far).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import nir
import numpy as np
import torch
import torch.fx

from snn_deploy.errors import InputFileError, UnsupportedOpError
from snn_deploy.frontends import torch as tf
from snn_deploy.ir.types import ResetMode

Array = np.ndarray[Any, Any]
Axis = str | int
"""A tensor axis: ``"T"`` (time), ``"B"`` (batch) or the index of a per-sample feature axis."""

ONSET = "bias_onset"

_CONTAINERS = (
    "spikingjelly.activation_based.layer.container.MultiStepContainer",
    "spikingjelly.activation_based.layer.container.SeqToANNContainer",
)


@dataclass(frozen=True)
class Traced:
    """A traced model: the NIR graph and its latency (our output step ``t + latency`` is the
    source's step ``t``)."""

    graph: nir.NIRGraph
    latency: int


@dataclass(frozen=True)
class _Value:
    node: str
    shape: tuple[int, ...]
    axes: tuple[Axis, ...]
    lag: int
    bias: Array | None = None
    source: bool = False


class _Tracer(torch.fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return _container(m) is not None or _kind(m) is not None


def _container(m: torch.nn.Module) -> str | None:
    name = tf._class_name(type(m))
    return name.rpartition(".")[2] if name in _CONTAINERS else None


def _kind(m: torch.nn.Module) -> str | None:
    if isinstance(m, torch.nn.Sequential):
        return None
    try:
        return tf._lookup(m)
    except UnsupportedOpError:
        return None


def _site(node: torch.fx.Node) -> str:
    """``'name' (target at file:line)`` of an fx call site."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    where = ""
    trace = node.meta.get("stack_trace") or node.stack_trace or ""
    frames = [  # the model's own frames, not torch.fx's
        line.strip()
        for line in trace.splitlines()
        if line.strip().startswith("File ") and "/torch/" not in line
    ]
    if frames:
        file, _, rest = frames[-1].removeprefix("File ").partition(", line ")
        where = f" at {file.strip(chr(34)).rpartition('/')[2]}:{rest.partition(',')[0]}"
    return f"call site {node.name!r} ({node.op} {target}{where})"


class _Builder:
    """The NIR nodes and edges being built, and the conversion of one fx node at a time."""

    def __init__(self, module: torch.nn.Module, dt: float) -> None:
        self.modules = dict(module.named_modules())
        self.dt = dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: Any, *inputs: str) -> str:
        base, i = name, 1
        while name in self.nodes:
            name, i = f"{base}_{i}", i + 1
        self.nodes[name] = node
        self.edges += [(src, name) for src in inputs]
        return name

    # ------------------------------------------------------------ values

    def delayed(self, value: _Value, steps: int) -> _Value:
        if steps == 0:
            return value
        node = nir.Delay(delay=np.full(value.shape, steps * self.dt))
        name = self.add(f"{value.node}_delay{steps}", node, value.node)
        return replace(value, node=name, lag=value.lag + steps, source=False)

    def settled(self, value: _Value, site: str) -> _Value:
        """``value`` with its pending constant added to the graph (see the module docstring)."""
        if value.bias is None or not np.any(value.bias):
            return replace(value, bias=None)
        if len(value.shape) != 1:
            raise UnsupportedOpError(
                f"{site}: a constant (bias) on a {len(value.shape)}-d value {value.shape} has "
                "no exact traced form yet; only 1-d values (per step) take biases"
            )
        if value.lag < 0:
            raise UnsupportedOpError(
                f"{site}: a bias after two delayed snn_deploy.nn synapse layers (lag "
                f"{value.lag}); put a neuron between them"
            )
        if ONSET not in self.nodes:
            one = np.ones(1)
            self.add(
                ONSET,
                nir.LIF(
                    tau=one * self.dt,
                    r=one,
                    v_leak=2 * one,  # v = 2 > 1 every step: a spike at every step from step 0
                    v_threshold=one,
                    v_reset=0 * one,
                    metadata=tf._meta(ResetMode.ZERO),
                ),
            )
            self.add(f"{ONSET}_loop", nir.Linear(weight=np.zeros((1, 1))), ONSET)
            self.edges.append((f"{ONSET}_loop", ONSET))  # a node needs an input: a zero loop
        onset = _Value(ONSET, (1,), ("T", "B", 0), 0, source=True)
        start = self.delayed(onset, value.lag)
        column = self.add(
            f"{value.node}_bias", nir.Linear(weight=value.bias.reshape(-1, 1)), start.node
        )
        total = self.add(f"{value.node}_sum", nir.Scale(scale=np.ones(value.shape)), value.node)
        self.edges.append((column, total))
        return replace(value, node=total, bias=None, source=False)

    def linear(
        self, value: _Value, name: str, node: Any, bias: Array | None, lag: int = 0
    ) -> _Value:
        """A stateless node on ``value``; its own constant is ``bias``."""
        matrix = node.weight if isinstance(node, nir.Linear) else None
        pending = None if value.bias is None or matrix is None else matrix @ value.bias
        if isinstance(node, nir.Scale):
            pending = None if value.bias is None else node.scale * value.bias
        if bias is not None:
            pending = bias if pending is None else pending + bias
        out = self.add(name, node, value.node)
        shape = tuple(np.shape(pending)) if pending is not None else value.shape
        if matrix is not None:
            shape = (int(matrix.shape[0]),)
        return _Value(out, shape, value.axes, value.lag + lag, pending)

    def merge(self, name: str, values: Sequence[_Value], site: str) -> _Value:
        """``a + b + ...``: NIR sums a node's inputs; the earlier branches are delayed."""
        first = values[0]
        for v in values[1:]:
            if v.shape != first.shape or v.axes != first.axes:
                raise UnsupportedOpError(
                    f"{site}: adds a value of shape {v.shape} axes {v.axes} to one of shape "
                    f"{first.shape} axes {first.axes}; the two must have the same layout"
                )
        lag = max(v.lag for v in values)
        aligned = [self.delayed(v, lag - v.lag) for v in values]
        for i, v in enumerate(aligned):  # one edge per pair of nodes: ``x + x`` needs a copy
            if any(v.node == u.node for u in aligned[:i]):
                copy = nir.Scale(scale=np.ones(v.shape))
                aligned[i] = replace(v, node=self.add(f"{name}_copy", copy, v.node))
        out = self.add(name, nir.Scale(scale=np.ones(first.shape)), *(v.node for v in aligned))
        biases = [v.bias for v in values if v.bias is not None]
        bias = np.sum(biases, axis=0) if biases else None
        return _Value(out, first.shape, first.axes, lag, bias)

    # ------------------------------------------------------------ modules

    def module(self, value: _Value, m: torch.nn.Module, name: str, site: str) -> _Value:
        container = _container(m)
        if container == "SeqToANNContainer":
            merged = replace(value, axes=("TB", *value.axes[2:]))
            for i, child in enumerate(m.children()):
                merged = self.module(merged, child, f"{name}_{i}", site)
            return replace(merged, axes=(*value.axes[:2], *merged.axes[1:]))
        if container == "MultiStepContainer":
            self.require_time(value, 0, site)
            for i, child in enumerate(m.children()):
                value = self.step_module(value, child, f"{name}_{i}", site)
            return value
        kind = tf._lookup(m)
        if kind.startswith("spikingjelly.") and getattr(m, "step_mode", "m") != "m":
            raise UnsupportedOpError(
                f"{site}: {kind} has step_mode='s' but gets the whole [T, B, ...] sequence; "
                "give it step_mode='m'"
            )
        if kind.startswith("snn_deploy.nn."):
            raise UnsupportedOpError(
                f"{site}: {kind} runs one step per call; in multi-step code wrap it in "
                "spikingjelly.activation_based.layer.MultiStepContainer"
            )
        return self.step_module(value, m, name, site)

    def step_module(self, value: _Value, m: torch.nn.Module, name: str, site: str) -> _Value:
        kind = tf._lookup(m)
        if isinstance(m, torch.nn.Conv1d) and value.axes[-1] == "T":
            return self.temporal_conv(value, m, name, site)
        result = tf._CONVERTERS[kind](m, tf.Ctx(self.dt, value.shape))
        if result is tf._SKIP:
            return value
        if isinstance(result, tf.FoldBatchNorm):
            return self.batchnorm(value, m, result, name, site)
        if isinstance(m, torch.nn.Linear):
            self.require_feature(value, -1, 0, site)
            if len(value.shape) != 1:
                raise UnsupportedOpError(f"{site}: Linear on a {len(value.shape)}-d value")
            bias = result.bias if isinstance(result, nir.Affine) else None
            delayed = kind in tf._DELAYED
            return self.linear(value, name, nir.Linear(weight=result.weight), bias, -delayed)
        if isinstance(result, (nir.Conv1d, nir.Conv2d)):
            dims = result.weight.ndim - 1
            for i in range(dims):
                self.require_feature(value, i - dims, i, site)
            value = self.settled(value, site)
            bias = np.broadcast_to(
                result.bias.reshape(-1, *(1,) * (dims - 1)), tf._out_shape(m, value.shape)
            ).copy()
            conv = replace(result, bias=np.zeros_like(result.bias))
            out = self.add(name, conv, value.node)
            return _Value(out, bias.shape, value.axes, value.lag, bias)
        if kind in tf._STATELESS:
            raise UnsupportedOpError(f"{site}: {kind} is not converted in traced models")
        if not isinstance(result, nir.NIRGraph):
            self.require_time(value, 0, site)
        value = self.settled(value, site)
        if isinstance(result, nir.NIRGraph) and value.lag != 0 and _has_bias(result):
            raise UnsupportedOpError(
                f"{site}: {kind} at lag {value.lag} has biases in its own layers, which would "
                "act that many steps before its input; give its Linear layers bias=False"
            )
        out = self.add(name, result, value.node)
        lag = value.lag + (0 if isinstance(result, nir.NIRGraph) else 1)
        return _Value(out, value.shape, value.axes, lag, None, source=True)

    def batchnorm(
        self, value: _Value, m: torch.nn.Module, bn: tf.FoldBatchNorm, name: str, site: str
    ) -> _Value:
        multi = getattr(m, "step_mode", "s") == "m" and value.axes[0] == "T"
        axis = 2 if multi else 1
        channel = value.axes[axis] if len(value.axes) > axis else None
        if not isinstance(channel, int):
            raise UnsupportedOpError(
                f"{site}: {type(m).__name__} normalises tensor axis {axis}, which is "
                f"{channel!r} here (axes {value.axes}); it must be a feature axis"
            )
        along = [1] * len(value.shape)
        along[channel] = -1
        scale = np.broadcast_to(bn.scale.reshape(along), value.shape).copy()
        shift = np.broadcast_to(bn.shift.reshape(along), value.shape).copy()
        return self.linear(value, name, nir.Scale(scale=scale), shift)

    def temporal_conv(self, value: _Value, m: Any, name: str, site: str) -> _Value:
        """Taps as delayed ``Linear`` nodes (module docstring); ``value`` is ``[B, C, T]``."""
        self.require_feature(value, -2, 0, site)
        weight = tf._np(m.weight)
        c_out, c_in_g, k = weight.shape
        (dilation,), (stride,) = m.dilation, m.stride
        span = dilation * (k - 1)
        left = span // 2 if m.padding == "same" else m.padding[0]
        if stride != 1 or m.padding_mode != "zeros" or m.padding == "valid":
            raise UnsupportedOpError(
                f"{site}: a convolution over time needs stride 1 and zero padding that keeps "
                f"the length; got stride {stride}, padding {m.padding!r}, {m.padding_mode}"
            )
        if m.padding != "same" and 2 * left != span:
            raise UnsupportedOpError(
                f"{site}: padding {left} on both ends of time changes the sequence length "
                f"(kernel {k}, dilation {dilation}); use 'same' or pad the clip yourself"
            )
        value = self.settled(value, site)
        lead = max(0, span - left)
        groups, c_in = m.groups, value.shape[0]
        taps = []
        for tap in range(k):
            matrix = np.zeros((c_out, c_in))
            per_group = c_out // groups
            for o in range(c_out):
                g = o // per_group
                matrix[o, g * c_in_g : (g + 1) * c_in_g] = weight[o, :, tap]
            shifted = self.delayed(value, lead + left - dilation * tap)
            taps.append(self.add(f"{name}_tap{tap}", nir.Linear(weight=matrix), shifted.node))
        out = self.add(name, nir.Scale(scale=np.ones(c_out)), *taps)
        bias = None if m.bias is None else tf._np(m.bias)
        return _Value(out, (c_out,), value.axes, value.lag + lead, bias)

    # ------------------------------------------------------------ checks

    def require_time(self, value: _Value, axis: int, site: str) -> None:
        if value.axes[axis] != "T":
            raise UnsupportedOpError(
                f"{site}: expects time on tensor axis {axis}, but the axes are {value.axes} "
                "(permute back to [T, B, ...] first)"
            )

    def require_feature(self, value: _Value, axis: int, index: int, site: str) -> None:
        if value.axes[axis] != index:
            raise UnsupportedOpError(
                f"{site}: acts on tensor axis {axis}, which is {value.axes[axis]!r} here (axes "
                f"{value.axes}); expected feature axis {index}"
            )


def _has_bias(graph: nir.NIRGraph) -> bool:
    return any(
        isinstance(node, nir.Affine) and np.any(node.bias != 0) for node in graph.nodes.values()
    )


_ADD = (operator.add, operator.iadd, torch.add, "add", "add_")
_MUL = (operator.mul, operator.imul, torch.mul, "mul", "mul_")
_SAME = ("contiguous", "clone", torch.nn.functional.dropout, "detach")


def _permutation(node: torch.fx.Node, args: Sequence[Any], ndim: int) -> list[int]:
    dims = list(args[1:]) if node.target in ("permute", torch.permute) else []
    if len(dims) == 1 and isinstance(dims[0], list | tuple):
        dims = list(dims[0])
    if node.target in ("transpose", torch.transpose):
        a, b = (int(d) % ndim for d in args[1:3])
        dims = list(range(ndim))
        dims[a], dims[b] = dims[b], dims[a]
    return [int(d) % ndim for d in dims]


def trace(
    model: torch.nn.Module, *, dt: float, input_shape: tuple[int, ...] | None = None
) -> Traced:
    """Trace a multi-step model (input ``[T, B, *input_shape]``) into a NIR graph.

    Args:
        model: the module, in eval mode; BatchNorm uses its running statistics.
        dt: the compile time step.
        input_shape: per-sample input shape; default: ``in_features`` of the Linear that reads
            the input.

    Raises:
        UnsupportedOpError: an operation has no exact NIR form; the message names its call site.
    """
    tf._resolve_registered()
    try:
        graph = _Tracer().trace(model)
    except (torch.fx.proxy.TraceError, TypeError, RuntimeError) as exc:
        raise UnsupportedOpError(
            f"{type(model).__name__} cannot be traced by torch.fx: {exc}"
        ) from exc
    b = _Builder(model, dt)
    env: dict[torch.fx.Node, Any] = {}
    result: _Value | None = None

    def value_of(arg: Any) -> Any:
        return env[arg] if isinstance(arg, torch.fx.Node) else arg

    for node in graph.nodes:
        site = _site(node)
        args = [value_of(a) for a in node.args]
        if node.op == "placeholder":
            if env:
                raise UnsupportedOpError(f"{site}: only one input (the [T, B, ...] spikes)")
            shape = tuple(input_shape) if input_shape is not None else _first_shape(b, node)
            b.add("input", nir.Input(input_type={"input": np.array(shape)}))
            axes: tuple[Axis, ...] = ("T", "B", *range(len(shape)))
            env[node] = _Value("input", shape, axes, 0, source=True)
        elif node.op == "call_module":
            if not isinstance(args[0], _Value) or len(args) != 1 or node.kwargs:
                raise UnsupportedOpError(f"{site}: a module call takes one traced tensor here")
            env[node] = b.module(args[0], b.modules[str(node.target)], node.name, site)
        elif node.op in ("call_function", "call_method"):
            env[node] = _function(b, node, args, site)
        elif node.op == "output":
            result = args[0] if isinstance(args[0], _Value) else None
            if result is None:
                raise UnsupportedOpError(f"{site}: the model must return one traced tensor")
        else:
            raise UnsupportedOpError(f"{site}: {node.op} has no NIR form")
    assert result is not None
    if result.axes[:2] != ("T", "B"):
        raise UnsupportedOpError(
            f"the model returns axes {result.axes}; it must return [T, B, ...] (time first)"
        )
    if not result.source:
        result = b.settled(result, "the read-out")
        readout = nir.I(r=np.ones(result.shape))
        name = b.add("readout", readout, result.node)
        result = _Value(name, result.shape, result.axes, result.lag + 1, source=True)
    b.add("output", nir.Output(output_type={"output": np.array(result.shape)}), result.node)
    return Traced(nir.NIRGraph(nodes=b.nodes, edges=b.edges, type_check=False), result.lag)


def _first_shape(b: _Builder, placeholder: torch.fx.Node) -> tuple[int, ...]:
    for user in placeholder.users:
        m = b.modules.get(str(user.target)) if user.op == "call_module" else None
        while m is not None and _container(m) is not None:
            m = next(iter(m.children()), None)
        if isinstance(m, torch.nn.Linear):
            return (int(m.in_features),)
    raise InputFileError(
        "give input_shape (per sample, without batch and time): the model's input is not read "
        "by a Linear layer"
    )


def _function(b: _Builder, node: torch.fx.Node, args: list[Any], site: str) -> _Value:
    target = node.target
    values = [a for a in args if isinstance(a, _Value)]
    if not values:
        raise UnsupportedOpError(f"{site}: computes on no traced tensor; no NIR form")
    x = values[0]
    if target in _SAME:
        return x
    if target in ("permute", "transpose", torch.permute, torch.transpose):
        order = _permutation(node, args, len(x.axes))
        return replace(x, axes=tuple(x.axes[i] for i in order))
    if target in _ADD or target in (operator.sub, torch.sub, "sub"):
        sign = -1.0 if target in (operator.sub, torch.sub, "sub") else 1.0
        other = args[1]
        if isinstance(other, int | float) and not isinstance(other, bool):
            constant = np.full(x.shape, sign * float(other))
            return replace(x, bias=constant if x.bias is None else x.bias + constant)
        if len(values) == 2 and not node.kwargs:
            y = values[1]
            if sign < 0:
                y = b.linear(y, f"{node.name}_neg", nir.Scale(scale=-np.ones(y.shape)), None)
            return b.merge(node.name, [x, y], site)
    if target in _MUL and len(values) == 1 and not node.kwargs:
        factor = args[1] if args[0] is x else args[0]
        if isinstance(factor, int | float) and not isinstance(factor, bool):
            return b.linear(x, node.name, nir.Scale(scale=np.full(x.shape, float(factor))), None)
    if target in _MUL:
        raise UnsupportedOpError(
            f"{site}: a product of two activations; use snn_deploy.nn.SpikingGate or "
            "SpikingSelfAttention (docs/SEMANTICS.md §4)"
        )
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    raise UnsupportedOpError(
        f"{site}: {name} has no NIR form; supported in traced models: modules with converters, "
        "+, - and * by a number, permute, transpose, contiguous, dropout"
    )
