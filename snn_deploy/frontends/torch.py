"""PyTorch SNNs (snnTorch, Norse, SpikingJelly, Sinabs, ``snn_deploy.nn``) -> NIR -> IR graph.

``to_nir(model)`` walks a ``torch.nn.Sequential`` chain (nested Sequentials and Norse's
``SequentialState`` are flattened) and converts each module with a small registered converter
(``_CONVERTERS``, keyed by the module's class, found along its MRO). Nodes are named after the
modules (``_names``: the model's own names, else ``<class><layer>``). ``load(source)`` reads a
file (formats below) or takes a live module, and hands the NIR graph to ``frontends.nir.load``.

The converters write each framework's discrete-time neuron in the terms of docs/SEMANTICS.md
§1 at the compile time step ``dt`` (so that ``lower{dt}`` gives back the framework's per-step
decays and input gains exactly), and fix what the frameworks' own NIR exporters get wrong
(docs/FRONTENDS.md lists each case): snnTorch hard-codes ``dt = 1e-4`` and drops the reset
mechanism; Norse writes ``tau = dt/tau_inv`` instead of ``1/tau_inv`` and leaves ``w_in = 1``;
SpikingJelly writes ``IF.r = 1/dt``; Sinabs writes ``tau`` in steps for an exponential (not
Euler) decay. BatchNorm (eval statistics) is folded into the Linear/Conv in front of it while
converting, because NIR has no BatchNorm node: this is a translation, not an optimisation.

File formats (``load(path)``), safest first:

* ``.nir``: any framework's NIR export (handled by ``frontends.nir``).
* ``.pt``/``.pth`` checkpoint dict, read with ``torch.load(weights_only=True)`` (no code runs):
  ``{"architecture": [[class_name, kwargs], ...], "state_dict": {...}}`` plus optional
  ``"input_shape"`` and ``"dt"``; ``class_name`` is one of ``supported()`` (e.g.
  ``"torch.nn.Linear"``, ``"snn_deploy.nn.LIF"``, ``"snntorch.Leaky"``). Or
  ``{"architecture": <bytes of a .nir file>}``.
* A pickled ``torch.nn.Module`` (``torch.save(model)``): unpickling runs code from the file, so
  it is refused unless ``trust_pickle=True`` (CLI ``--trust-pickle``), which warns.
* TorchScript and ``torch.export`` archives are refused with an explanation: they keep tensor
  ops but lose the neuron module types, so the neuron dynamics cannot be recovered reliably.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import itertools
import logging
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nir
import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from snn_deploy.errors import InputFileError, UnsupportedOpError
from snn_deploy.frontends.nir import COMPARE_KEY, LEVELS_KEY, RESET_KEY, TIMING_KEY
from snn_deploy.frontends.nir import Attention as NirAttention
from snn_deploy.frontends.nir import Gate as NirGate
from snn_deploy.frontends.nir import load as load_nir
from snn_deploy.frontends.nir import read as read_nir
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare
from snn_deploy.limits import COPY_BYTES, check_memory

Array = np.ndarray[Any, Any]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ctx:
    """What a converter knows besides the module: the compile ``dt`` and the input shape."""

    dt: float
    shape: tuple[int, ...]


@dataclass(frozen=True)
class FoldBatchNorm:
    """Converter result: fold this per-channel ``y = scale·x + shift`` into the node before."""

    scale: Array
    shift: Array


Converter = Callable[[Any, Ctx], Any]
_CONVERTERS: dict[str, Converter] = {}
_STATELESS: set[str] = set()
_DELAYED: set[str] = set()
_SKIP = object()
"""Converter result for modules that do nothing at inference (Dropout, Identity)."""


def _converter(
    *names: str, stateless: bool = False, delayed: bool = False
) -> Callable[[Converter], Converter]:
    """Register a converter for the classes ``names`` (``module.QualName``)."""

    def register(fn: Converter) -> Converter:
        for name in names:
            _CONVERTERS[name] = fn
            if stateless:
                _STATELESS.add(name)
            if delayed:
                _DELAYED.add(name)
        return fn

    return register


ALIASES = {
    "torch.nn": "torch.nn.modules",
    "snntorch": "snntorch._neurons",
}


def supported() -> list[str]:
    """The module classes this frontend converts (plus ``torch.nn.Sequential`` containers)."""
    return sorted(_CONVERTERS)


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _lookup(module: torch.nn.Module) -> str:
    for cls in type(module).__mro__:
        name = _REGISTERED_BY_CLASS.get(_class_name(cls))
        if name is not None:
            return name
    raise UnsupportedOpError(
        f"module {type(module).__name__} ({_class_name(type(module))}) has no converter to "
        f"NIR; supported: {', '.join(supported())}, in torch.nn.Sequential containers"
    )


# Registered names are the public import paths; the class's own module path can differ.
_REGISTERED_BY_CLASS: dict[str, str] = {}


def _resolve_registered() -> None:
    """Map each registered public name to its class's real ``module.QualName`` (if importable)."""
    for name in _CONVERTERS:
        if name in _REGISTERED_BY_CLASS.values():
            continue
        cls = _import_class(name, required=False)
        if cls is not None:
            _REGISTERED_BY_CLASS[_class_name(cls)] = name


def _import_class(name: str, *, required: bool = True) -> type | None:
    module_name, _, attr = name.rpartition(".")
    try:
        cls: type = getattr(importlib.import_module(module_name), attr)
        return cls
    except (ImportError, AttributeError) as exc:
        if required:
            raise UnsupportedOpError(
                f"architecture class {name!r} cannot be imported ({exc}); "
                f"supported: {', '.join(supported())}"
            ) from exc
        return None


# ---------------------------------------------------------------- helpers


def _np(x: Any) -> Array:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _full(x: Any, shape: tuple[int, ...]) -> Array:
    return np.broadcast_to(_np(x), shape).copy()


def _meta(reset: ResetMode) -> dict[str, Any]:
    return {RESET_KEY: reset.value}


def _decay_tau(decay: Any, dt: float, what: str, module: Any) -> Array:
    """``tau`` such that ``1 - dt/tau == decay`` (forward Euler): ``dt / (1 - decay)``."""
    d = _np(decay)
    if np.any(d < 0) or np.any(d >= 1):
        raise UnsupportedOpError(
            f"{type(module).__name__}: {what} must be in [0, 1) to be a leak, got {d.min()}.."
            f"{d.max()} (a decay of 1 is an IF neuron)"
        )
    return dt / (1.0 - d)


def _pair(x: Any) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


# ---------------------------------------------------------------- torch.nn


@_converter("torch.nn.Linear", stateless=True)
def _linear(m: Any, ctx: Ctx) -> Any:
    if m.bias is None:
        return nir.Linear(weight=_np(m.weight))
    return nir.Affine(weight=_np(m.weight), bias=_np(m.bias))


@_converter("torch.nn.Conv1d", "torch.nn.Conv2d", stateless=True)
def _conv(m: Any, ctx: Ctx) -> Any:
    if m.padding_mode != "zeros":
        raise UnsupportedOpError(
            f"{type(m).__name__}: padding_mode {m.padding_mode!r}; NIR has zeros only"
        )
    weight = _np(m.weight)
    bias = np.zeros(weight.shape[0]) if m.bias is None else _np(m.bias)
    if weight.ndim == 3:
        return nir.Conv1d(
            input_shape=ctx.shape[1],
            weight=weight,
            stride=m.stride[0],
            padding=m.padding if isinstance(m.padding, str) else m.padding[0],
            dilation=m.dilation[0],
            groups=m.groups,
            bias=bias,
        )
    return nir.Conv2d(
        input_shape=ctx.shape[1:],
        weight=weight,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        bias=bias,
    )


@_converter("torch.nn.AvgPool2d", stateless=True)
def _avgpool(m: Any, ctx: Ctx) -> Any:
    if (
        m.ceil_mode
        or m.divisor_override is not None
        or (np.any(m.padding) and not m.count_include_pad)
    ):
        raise UnsupportedOpError(
            "AvgPool2d: ceil_mode, divisor_override and count_include_pad=False have no NIR form"
        )
    return nir.AvgPool2d(
        kernel_size=np.array(_pair(m.kernel_size)),
        stride=np.array(_pair(m.stride or m.kernel_size)),
        padding=np.array(_pair(m.padding)),
    )


@_converter("torch.nn.Flatten", stateless=True)
def _flatten(m: Any, ctx: Ctx) -> Any:
    start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim  # drop the batch dimension
    end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
    return nir.Flatten(input_type={"input": np.array(ctx.shape)}, start_dim=start, end_dim=end)


@_converter("torch.nn.Dropout", "torch.nn.Identity", stateless=True)
def _skip(m: Any, ctx: Ctx) -> Any:
    return _SKIP


@_converter("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", stateless=True)
def _batchnorm(m: Any, ctx: Ctx) -> Any:
    if m.running_mean is None:
        raise UnsupportedOpError(f"{type(m).__name__} without running statistics cannot be folded")
    scale = 1.0 / np.sqrt(_np(m.running_var) + m.eps)
    if m.affine:
        scale = scale * _np(m.weight)
        return FoldBatchNorm(scale, _np(m.bias) - scale * _np(m.running_mean))
    return FoldBatchNorm(scale, -scale * _np(m.running_mean))


# ---------------------------------------------------------------- snn_deploy.nn


@_converter("snn_deploy.nn.Linear", stateless=True, delayed=True)
def _our_linear(m: Any, ctx: Ctx) -> Any:
    return _linear(m, ctx)


@_converter("snn_deploy.nn.Conv2d", stateless=True, delayed=True)
def _our_conv(m: Any, ctx: Ctx) -> Any:
    return _conv(m, ctx)


def _our_reset(m: Any) -> dict[str, Any]:
    """Reset mode, the spike level count ``D`` when the neuron sends multi-level spikes, and
    the threshold test when it is ``>=``."""
    meta = _meta(ResetMode.ZERO if m.reset == "zero" else ResetMode.SUBTRACT)
    levels = int(getattr(m, "levels", 1))  # modules pickled before ``levels`` existed: binary
    if levels > 1:
        meta[LEVELS_KEY] = levels
    if getattr(m, "compare", ">") == ">=":  # modules pickled before ``compare``: strict
        meta[COMPARE_KEY] = ThresholdCompare.GE.value
    return meta


def _lif(m: Any, ctx: Ctx, beta: Any, threshold: Any, meta: dict[str, Any]) -> Any:
    """A discrete LIF with per-step decay ``beta`` and gain 1 as a NIR LIF at ``ctx.dt``."""
    tau = _full(_decay_tau(beta, ctx.dt, "beta", m), ctx.shape)
    return nir.LIF(
        tau=tau,
        r=tau / ctx.dt,
        v_leak=np.zeros(ctx.shape),
        v_threshold=_full(threshold, ctx.shape),
        v_reset=np.zeros(ctx.shape),
        metadata=meta,
    )


@_converter("snn_deploy.nn.LIF")
def _our_lif(m: Any, ctx: Ctx) -> Any:
    return _lif(m, ctx, m.beta, m.threshold, _our_reset(m))


@_converter("snn_deploy.nn.CubaLIF")
def _our_cuba(m: Any, ctx: Ctx) -> Any:
    return _cuba(m, ctx, m.alpha, m.beta, m.threshold, _our_reset(m))


@_converter("snn_deploy.nn.IF")
def _our_if(m: Any, ctx: Ctx) -> Any:
    return nir.IF(
        r=np.ones(ctx.shape),
        v_threshold=_full(m.threshold, ctx.shape),
        v_reset=np.zeros(ctx.shape),
        metadata=_our_reset(m),
    )


def _select(rows: int, size: int, offset: int) -> Any:
    """A 0/1 ``Linear`` copying ``size`` values to rows ``offset..offset+size`` of ``rows``."""
    weight = np.zeros((rows, size))
    weight[np.arange(offset, offset + size), np.arange(size)] = 1.0
    return nir.Linear(weight=weight)


def _subgraph(dim: int, nodes: dict[str, Any], edges: list[tuple[str, str]]) -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type={"input": np.array([dim])}),
        **nodes,
        "output": nir.Output(output_type={"output": np.array([dim])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@_converter("snn_deploy.nn.SpikingSelfAttention")
def _our_attention(m: Any, ctx: Ctx) -> Any:
    """Linear -> LIF ``[q|k|v]`` -> ``snn_deploy.Attention`` -> Scale ``2**-s`` -> LIF."""
    dim = m.dim
    nodes = {
        "qkv": _linear(m.qkv, ctx),
        "qkv_lif": _our_lif(m.qkv_lif, Ctx(ctx.dt, (3 * dim,))),
        "attention": NirAttention(
            dim=dim,
            heads=m.heads,
            decay=np.array(m.decay, dtype=np.int64),
            causal=m.causal,
            steps=m.steps,
        ),
        "scale": nir.Scale(scale=np.full(dim, 2.0**-m.scale_shift)),
        "out_lif": _our_lif(m.out_lif, ctx),
    }
    chain = ["input", *nodes, "output"]
    return _subgraph(dim, nodes, list(itertools.pairwise(chain)))


@_converter("snn_deploy.nn.SpikingGate")
def _our_gate(m: Any, ctx: Ctx) -> Any:
    """Value: Linear -> LI relay (``tau = dt``: ``v = W·x + b``); gate: Linear -> LIF; the two
    copied into ``snn_deploy.Gate``'s ``[a|g]``; then Linear -> LIF."""
    dim = m.dim
    nodes = {
        "value": _linear(m.value, ctx),
        "relay": nir.LI(tau=np.full(dim, ctx.dt), r=np.ones(dim), v_leak=np.zeros(dim)),
        "gate": _linear(m.gate, ctx),
        "gate_lif": _our_lif(m.gate_lif, ctx),
        "copy_a": _select(2 * dim, dim, 0),
        "copy_g": _select(2 * dim, dim, dim),
        "product": NirGate(dim=dim),
        "out": _linear(m.out, ctx),
        "out_lif": _our_lif(m.out_lif, ctx),
    }
    edges = [
        ("input", "value"), ("value", "relay"), ("relay", "copy_a"), ("copy_a", "product"),
        ("input", "gate"), ("gate", "gate_lif"), ("gate_lif", "copy_g"), ("copy_g", "product"),
        ("product", "out"), ("out", "out_lif"), ("out_lif", "output"),
    ]  # fmt: skip
    return _subgraph(dim, nodes, edges)


def _cuba(m: Any, ctx: Ctx, alpha: Any, beta: Any, threshold: Any, meta: dict[str, Any]) -> Any:
    """``u = alpha·u + x; v = beta·v + u`` (gain 1): snnTorch's exporter formulas at ``dt``."""
    tau_syn = _full(_decay_tau(alpha, ctx.dt, "alpha", m), ctx.shape)
    tau_mem = _full(_decay_tau(beta, ctx.dt, "beta", m), ctx.shape)
    return nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=tau_mem / ctx.dt,
        v_leak=np.zeros(ctx.shape),
        v_threshold=_full(threshold, ctx.shape),
        v_reset=np.zeros(ctx.shape),
        w_in=tau_syn / ctx.dt,
        metadata=meta,
    )


# ---------------------------------------------------------------- snnTorch


def _snntorch_reset(m: Any) -> dict[str, Any]:
    for flag in ("inhibition", "state_quant"):
        if getattr(m, flag, False):
            raise UnsupportedOpError(f"snnTorch {type(m).__name__}({flag}=...) has no NIR form")
    if (
        float(torch.as_tensor(m.graded_spikes_factor).max()) != 1.0
        or float(torch.as_tensor(m.graded_spikes_factor).min()) != 1.0
    ):
        raise UnsupportedOpError(f"snnTorch {type(m).__name__}: graded_spikes_factor must be 1")
    mech = m.reset_mechanism
    if mech == "none":
        raise UnsupportedOpError(
            f"snnTorch {type(m).__name__}(reset_mechanism='none') has no NIR form"
        )
    reset = ResetMode.ZERO if mech == "zero" else ResetMode.SUBTRACT
    meta = _meta(reset)
    timing = _snntorch_timing(m, reset)
    if timing is not ResetTiming.IMMEDIATE:
        meta[TIMING_KEY] = timing.value
    return meta


def _snntorch_timing(m: Any, reset: ResetMode) -> ResetTiming:
    """snnTorch's reset timing (docs/SEMANTICS.md §1.2): every neuron computes the pending bit
    ``r = mem > θ`` from its stored voltage first. ``reset_delay=True`` applies it after the
    input (subtract: ``mem -= r·θ``; zero: ``mem = 0`` where ``r``, dropping the input, except
    Leaky, which zeroes before the input: our immediate zero reset): LATE. ``reset_delay=False``
    also subtracts ``(s - r)·θ`` after the test (CARRY); its zero reset keeps ``r = 0`` for
    θ > 0, i.e. IMMEDIATE. RSynaptic's ``reset_delay=False`` branch assigns local variables
    only (snnTorch 1.0.0), so it always resets late."""
    kind = type(m).__name__
    delay = bool(getattr(m, "reset_delay", False)) or kind == "RSynaptic"
    if reset is ResetMode.ZERO:
        if not delay and float(torch.as_tensor(m.threshold).min()) <= 0:
            raise UnsupportedOpError(
                f"snnTorch {kind}(reset_mechanism='zero', reset_delay=False) with a threshold "
                "<= 0 doubles the voltage of a neuron that stays above it: not converted"
            )
        return ResetTiming.LATE if delay and kind != "Leaky" else ResetTiming.IMMEDIATE
    return ResetTiming.LATE if delay else ResetTiming.CARRY


@_converter("snntorch.Leaky")
def _snn_leaky(m: Any, ctx: Ctx) -> Any:
    return _lif(m, ctx, m.beta.clamp(0, 1), m.threshold, _snntorch_reset(m))


@_converter("snntorch.Synaptic")
def _snn_synaptic(m: Any, ctx: Ctx) -> Any:
    return _cuba(m, ctx, m.alpha.clamp(0, 1), m.beta.clamp(0, 1), m.threshold, _snntorch_reset(m))


def _recurrent_weight(m: Any, n: int) -> Any:
    if not m.all_to_all:
        return nir.Linear(weight=np.diag(_full(m.recurrent.V, (n,))))
    if not isinstance(m.recurrent, torch.nn.Linear):
        raise UnsupportedOpError(
            f"snnTorch {type(m).__name__}: only linear recurrence converts (not conv2d)"
        )
    return _linear(m.recurrent, Ctx(0.0, (n,)))


def _recurrent(neuron: Any, w_rec: Any, shape: tuple[int, ...]) -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array(shape)}),
            "lif": neuron,
            "w_rec": w_rec,
            "output": nir.Output(output_type={"output": np.array(shape)}),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        type_check=False,
    )


@_converter("snntorch.RLeaky")
def _snn_rleaky(m: Any, ctx: Ctx) -> Any:
    if len(ctx.shape) != 1:
        raise UnsupportedOpError("snnTorch RLeaky: only 1-d (linear) layers convert")
    return _recurrent(_snn_leaky(m, ctx), _recurrent_weight(m, ctx.shape[0]), ctx.shape)


@_converter("snntorch.RSynaptic")
def _snn_rsynaptic(m: Any, ctx: Ctx) -> Any:
    if len(ctx.shape) != 1:
        raise UnsupportedOpError("snnTorch RSynaptic: only 1-d (linear) layers convert")
    return _recurrent(_snn_synaptic(m, ctx), _recurrent_weight(m, ctx.shape[0]), ctx.shape)


# ---------------------------------------------------------------- Norse


def _norse_k(m: Any, inv: Any, what: str) -> Array:
    """Norse's per-step fraction ``dt_norse * tau_inv`` (its forward-Euler step)."""
    k = float(m.dt) * _np(inv)
    if np.any(k <= 0) or np.any(k > 1):
        raise UnsupportedOpError(f"Norse {type(m).__name__}: dt*{what} must be in (0, 1], got {k}")
    return k


@_converter("norse.torch.module.lif_box.LIFBoxCell")
def _norse_lifbox(m: Any, ctx: Ctx) -> Any:
    p = m.p
    k = _norse_k(m, p.tau_mem_inv, "tau_mem_inv")
    return nir.LIF(
        tau=_full(ctx.dt / k, ctx.shape),
        r=np.ones(ctx.shape),
        v_leak=_full(p.v_leak, ctx.shape),
        v_threshold=_full(p.v_th, ctx.shape),
        v_reset=_full(p.v_reset, ctx.shape),
        metadata=_meta(ResetMode.ZERO),
    )


@_converter("norse.torch.module.lif.LIFCell", "norse.torch.module.lif.LIF")
def _norse_lif(m: Any, ctx: Ctx) -> Any:
    p = m.p
    km = _norse_k(m, p.tau_mem_inv, "tau_mem_inv")
    ks = _norse_k(m, p.tau_syn_inv, "tau_syn_inv")
    return nir.CubaLIF(
        tau_syn=_full(ctx.dt / ks, ctx.shape),
        tau_mem=_full(ctx.dt / km, ctx.shape),
        r=np.ones(ctx.shape),
        v_leak=_full(p.v_leak, ctx.shape),
        v_threshold=_full(p.v_th, ctx.shape),
        v_reset=_full(p.v_reset, ctx.shape),
        w_in=_full(1.0 / ks, ctx.shape),  # Norse adds the input to i undamped: w_in = tau_syn/dt
        metadata=_meta(ResetMode.ZERO),
    )


_NORSE_RECURRENT = (
    "norse.torch.module.lif.LIFRecurrentCell",
    "norse.torch.module.lif.LIFRecurrent",
)


@_converter(*_NORSE_RECURRENT)
def _norse_lif_recurrent(m: Any, ctx: Ctx) -> Any:
    """Norse's ``lif_step``: ``i += W_in·x[t] + W_rec·z[t-1]``, then the LIFCell update.

    Against the input, the recurrent spikes arrive one step later in Norse, as our recurrent
    projection delivers them one step after our (already one step later) input projection: the
    recurrence is exact behind the input's shift, with no ``Delay``. ``autapses=False`` zeroed
    the diagonal of ``recurrent_weights`` when Norse built the module; its forward uses the
    weights as they are, and so do we.
    """
    if ctx.shape != (int(m.input_size),):
        raise UnsupportedOpError(
            f"Norse {type(m).__name__}: input shape {list(ctx.shape)}, expected "
            f"[{int(m.input_size)}] (input_size)"
        )
    n = (int(m.hidden_size),)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array(ctx.shape)}),
            "w_in": nir.Linear(weight=_np(m.input_weights)),
            "lif": _norse_lif(m, Ctx(ctx.dt, n)),
            "w_rec": nir.Linear(weight=_np(m.recurrent_weights)),
            "output": nir.Output(output_type={"output": np.array(n)}),
        },
        edges=[
            ("input", "w_in"),
            ("w_in", "lif"),
            ("lif", "w_rec"),
            ("w_rec", "lif"),
            ("lif", "output"),
        ],
        type_check=False,
    )


@_converter("norse.torch.module.iaf.IAFCell", "norse.torch.module.iaf.IAF")
def _norse_iaf(m: Any, ctx: Ctx) -> Any:
    p = m.p
    return nir.IF(
        r=np.ones(ctx.shape),
        v_threshold=_full(p.v_th, ctx.shape),
        v_reset=_full(p.v_reset, ctx.shape),
        metadata=_meta(ResetMode.ZERO),
    )


# ---------------------------------------------------------------- SpikingJelly


def _sj_reset(m: Any) -> tuple[float, dict[str, Any]]:
    """SpikingJelly's reset (``v_reset`` None: subtract) and its ``v - θ >= 0`` spike test:
    ``v >= θ`` (``ThresholdCompare.GE``; ``v - θ >= 0`` is ``v >= θ`` for every float)."""
    reset = ResetMode.SUBTRACT if m.v_reset is None else ResetMode.ZERO
    meta = {**_meta(reset), COMPARE_KEY: ThresholdCompare.GE.value}
    return (0.0 if m.v_reset is None else float(m.v_reset)), meta


def _sj_leaky(m: Any, ctx: Ctx, tau: float) -> Any:
    """``H = V - (V - V_reset)/τ + X`` (``decay_input=False``) or ``V + (X - (V - V_reset))/τ``."""
    v_reset, meta = _sj_reset(m)
    if tau < 1:
        raise UnsupportedOpError(
            f"SpikingJelly {type(m).__name__}: tau must be >= 1 step, got {tau}"
        )
    shape = ctx.shape
    return nir.LIF(
        tau=np.full(shape, tau * ctx.dt),
        r=np.full(shape, 1.0 if m.decay_input else tau),
        v_leak=np.full(shape, v_reset),
        v_threshold=np.full(shape, float(m.v_threshold)),
        v_reset=np.full(shape, v_reset),
        metadata=meta,
    )


@_converter("spikingjelly.activation_based.neuron.LIFNode")
def _sj_lif(m: Any, ctx: Ctx) -> Any:
    return _sj_leaky(m, ctx, float(m.tau))


@_converter("spikingjelly.activation_based.neuron.ParametricLIFNode")
def _sj_plif(m: Any, ctx: Ctx) -> Any:
    """The learned ``1/τ = sigmoid(w)`` is frozen at its exported value."""
    return _sj_leaky(m, ctx, 1.0 / float(torch.sigmoid(m.w.detach().double())))


@_converter("spikingjelly.activation_based.neuron.IFNode")
def _sj_if(m: Any, ctx: Ctx) -> Any:
    v_reset, meta = _sj_reset(m)
    return nir.IF(
        r=np.ones(ctx.shape),
        v_threshold=np.full(ctx.shape, float(m.v_threshold)),
        v_reset=np.full(ctx.shape, v_reset),
        metadata=meta,
    )


@_converter("spikingjelly.activation_based.layer.Dropout", stateless=True)
def _sj_dropout(m: Any, ctx: Ctx) -> Any:
    return _SKIP


# ---------------------------------------------------------------- Sinabs


def _sinabs_common(m: Any) -> dict[str, Any]:
    spike_fn = getattr(m.spike_fn, "__name__", type(m.spike_fn).__name__)
    if spike_fn != "SingleSpike":
        raise UnsupportedOpError(
            f"Sinabs {type(m).__name__}: spike_fn {spike_fn} emits several spikes per step; "
            "only SingleSpike converts (our neurons send one spike per step)"
        )
    if m.min_v_mem is not None:
        raise UnsupportedOpError(
            f"Sinabs {type(m).__name__}: min_v_mem (a voltage floor) has no NIR form"
        )
    if getattr(m, "tau_syn", None) is not None:
        raise UnsupportedOpError(f"Sinabs {type(m).__name__}: tau_syn is not converted")
    reset = type(m.reset_fn).__name__
    ge = {COMPARE_KEY: ThresholdCompare.GE.value}  # SingleSpike: v_mem - threshold >= 0
    if reset == "MembraneSubtract" and getattr(m.reset_fn, "subtract_value", None) is None:
        return {**_meta(ResetMode.SUBTRACT), **ge}
    if reset == "MembraneReset" and float(getattr(m.reset_fn, "reset_value", 0.0)) == 0.0:
        return {**_meta(ResetMode.ZERO), **ge}
    raise UnsupportedOpError(f"Sinabs {type(m).__name__}: reset_fn {m.reset_fn!r} does not convert")


@_converter("sinabs.layers.IAF", "sinabs.layers.IAFSqueeze")
def _sinabs_iaf(m: Any, ctx: Ctx) -> Any:
    meta = _sinabs_common(m)
    return nir.IF(
        r=np.ones(ctx.shape),
        v_threshold=_full(m.spike_threshold, ctx.shape),
        v_reset=np.zeros(ctx.shape),
        metadata=meta,
    )


@_converter("sinabs.layers.LIF", "sinabs.layers.LIFSqueeze")
def _sinabs_lif(m: Any, ctx: Ctx) -> Any:
    meta = _sinabs_common(m)
    k = 1.0 - np.exp(-1.0 / _np(m.tau_mem))  # Sinabs decays by exp(-1/tau_mem) per step
    tau = _full(ctx.dt / k, ctx.shape)
    return nir.LIF(
        tau=tau,
        r=np.ones(ctx.shape) if m.norm_input else tau / ctx.dt,
        v_leak=np.zeros(ctx.shape),
        v_threshold=_full(m.spike_threshold, ctx.shape),
        v_reset=np.zeros(ctx.shape),
        metadata=meta,
    )


@_converter("sinabs.layers.SumPool2d", stateless=True)
def _sinabs_sumpool(m: Any, ctx: Ctx) -> Any:
    return nir.SumPool2d(
        kernel_size=np.array(_pair(m.kernel_size)),
        stride=np.array(_pair(m.stride or m.kernel_size)),
        padding=np.array((0, 0)),
    )


# ---------------------------------------------------------------- graph building


def _modules(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The chain of leaf modules of nested ``torch.nn.Sequential`` containers, with the names
    the graph's nodes get (``_names``)."""
    leaves = _leaves(model)
    return list(zip(_names(leaves), [m for _, m in leaves], strict=True))


def _leaves(
    model: torch.nn.Module, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], torch.nn.Module]]:
    _resolve_registered()
    if isinstance(model, torch.nn.Sequential):
        out: list[tuple[tuple[str, ...], torch.nn.Module]] = []
        for name, child in model.named_children():
            out += _leaves(child, (*path, name))
        return out
    _lookup(model)
    return [(path, model)]


def _names(leaves: list[tuple[tuple[str, ...], torch.nn.Module]]) -> list[str]:
    """Node names: the module's own name (``fc1``; nested names joined by ``_``) where the
    model gives one, else ``<class><layer>`` (``linear1``, ``leaky1``, ``linear2``,
    ``synaptic2``): the lower-cased class name and the number of the layer, a layer being
    everything up to and including its neuron. ``Sequential`` indices (``0``, ``1``) are not
    names. A repeated name gets ``_2``, ``_3``."""
    out: list[str] = []
    taken = {"input", "output"}
    layer = 1
    for path, module in leaves:
        given = [p for p in path if not p.isdigit()]
        base = "_".join(path) if given else f"{type(module).__name__.lower()}{layer}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        out.append(name)
        if _lookup(module) not in _STATELESS:
            layer += 1
    return out


def _has_converter(module: torch.nn.Module) -> bool:
    _resolve_registered()
    return any(_class_name(cls) in _REGISTERED_BY_CLASS for cls in type(module).__mro__)


def _out_shape(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of a stateless module, from its plain torch ``forward``."""
    base = cast(  # the first torch.nn (or Sinabs pool) class in the MRO: a Module class
        type[torch.nn.Module],
        next(
            (
                c
                for c in type(module).__mro__
                if c.__module__.startswith(("torch.nn", "sinabs.layers.pool"))
            ),
            type(module),
        ),
    )
    with torch.no_grad():
        y = base.forward(
            module,
            torch.zeros(
                (1, *shape),
                dtype=next((p.dtype for p in module.parameters()), torch.get_default_dtype()),
            ),
        )
    return tuple(int(d) for d in y.shape[1:])


def _neuron_shape(result: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A neuron's output shape: its input's, or a subgraph's Output type (a Norse recurrent cell
    holds its input weights)."""
    if isinstance(result, nir.NIRGraph):
        return tuple(int(d) for d in result.nodes["output"].output_type["output"])
    return shape


def _first_shape(modules: list[tuple[str, torch.nn.Module]]) -> tuple[int, ...]:
    first = modules[0][1] if modules else None
    if isinstance(first, torch.nn.Linear):
        return (int(first.in_features),)
    if first is not None and _lookup(first) in _NORSE_RECURRENT:
        return (int(cast(Any, first).input_size),)
    raise InputFileError(
        "give input_shape (per sample, without batch and time): "
        "the model does not start with a Linear layer or a Norse recurrent cell"
    )


def to_nir(
    model: torch.nn.Module,
    *,
    dt: float = DEFAULT_DT,
    input_shape: tuple[int, ...] | None = None,
) -> nir.NIRGraph:
    """Convert a (nested) ``Sequential`` SNN to a NIR graph whose dynamics hold at ``dt``.

    Args:
        model: the model; BatchNorm layers use their running statistics.
        dt: the time step the graph will be lowered with (the per-step decays are exact there).
        input_shape: per-sample input shape; needed unless the model starts with a Linear or a Norse
            recurrent cell.

    Raises:
        UnsupportedOpError: a module has no converter (the message lists the supported ones).
    """
    modules = _modules(model)
    shape = tuple(input_shape) if input_shape is not None else _first_shape(modules)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges: list[tuple[str, str]] = []
    previous, delayed = "input", 0
    for name, module in modules:
        kind = _lookup(module)
        result = _CONVERTERS[kind](module, Ctx(dt, shape))
        stateless = kind in _STATELESS
        delayed = delayed + (kind in _DELAYED) if stateless else 0
        if delayed > 1:
            raise UnsupportedOpError(
                f"module {name!r}: two delayed snn_deploy.nn synapse layers (Linear/Conv2d) "
                "without a neuron between them; each projection has exactly one step of delay"
            )
        if result is _SKIP:
            continue
        new_shape = _out_shape(module, shape) if stateless else _neuron_shape(result, shape)
        if isinstance(result, FoldBatchNorm):
            nodes[previous] = _fold(nodes.get(previous), result, name)
            continue
        nodes[name] = result
        edges.append((previous, name))
        previous, shape = name, new_shape
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _fold(node: Any, bn: FoldBatchNorm, name: str) -> Any:
    """``BN(W x + b) = (s·W) x + (s·b + shift)`` per output channel."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        bias = node.bias if isinstance(node, nir.Affine) else np.zeros(node.weight.shape[0])
        return nir.Affine(weight=bn.scale[:, None] * node.weight, bias=bn.scale * bias + bn.shift)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        scale = bn.scale.reshape((-1,) + (1,) * (node.weight.ndim - 1))
        return type(node)(
            input_shape=node.input_shape,
            weight=scale * node.weight,
            stride=node.stride,
            padding=node.padding,
            dilation=node.dilation,
            groups=node.groups,
            bias=bn.scale * node.bias + bn.shift,
        )
    raise UnsupportedOpError(
        f"BatchNorm {name!r} must follow a Linear or Conv layer to be folded into it"
    )


# ---------------------------------------------------------------- files


def read_model(path: Path, *, trust_pickle: bool = False) -> tuple[Any, dict[str, Any]]:
    """Read a ``.pt``/``.pth`` file: a ``nir.NIRGraph`` or a module, plus checkpoint options."""
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
        total = 0
        for info in members:  # what torch.load will inflate, before it does
            total += info.file_size
            check_memory(path, f"archive member {info.filename!r} ({info.file_size} bytes)", total)
        names = [info.filename for info in members]
        if any(
            n.endswith(("/constants.pkl", "/code/__torch__.py")) or "/code/" in n for n in names
        ):
            raise InputFileError(
                f"{path} is a TorchScript archive: it keeps tensor ops but not the neuron module "
                "types, so the dynamics cannot be recovered; save a checkpoint "
                '{"architecture": [[class, kwargs], ...], "state_dict": ...} or a .nir file'
            )
        if any(n.endswith("serialized_exported_program.json") or "/models/" in n for n in names):
            raise InputFileError(
                f"{path} is a torch.export archive, which snn-deploy does not read (neuron types "
                "are lost); save a checkpoint or a .nir file instead"
            )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if "weights_only" not in str(exc) and "Unsupported global" not in str(exc):
            raise InputFileError(f"{path} is not a readable PyTorch file: {exc}") from exc
        if not trust_pickle:
            raise InputFileError(
                f"{path} holds pickled Python objects (e.g. a whole nn.Module); loading it runs "
                "code from the file. Pass --trust-pickle (trust_pickle=True) only if you trust "
                'it, or save a checkpoint {"architecture": ..., "state_dict": ...}'
            ) from exc
        warnings.warn(
            f"unpickling {path} with trust_pickle: this runs any code the file contains",
            UserWarning,
            stacklevel=2,
        )
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj, {}
    if isinstance(obj, dict) and "architecture" in obj:
        options = _options(obj, path)
        arch = obj["architecture"]
        if isinstance(arch, (bytes, bytearray)):
            return read_nir(path, data=bytes(arch)), options
        return _build(arch, obj.get("state_dict", {}), path, names=obj.get("names")), options
    raise InputFileError(
        f"{path}: expected a checkpoint dict with 'architecture' (and 'state_dict'), "
        f"got {type(obj).__name__}"
        + (f" with keys {sorted(obj)[:8]}" if isinstance(obj, dict) else "")
    )


class _AllocationLimit(TorchFunctionMode):
    """Checks each tensor a layer's constructor creates against ``max_memory()`` before it is
    allocated: a checkpoint's kwargs can declare any size (``Linear(30000, 30000)``: 3.6 GB).
    The tensor's shape comes from calling the same factory on the meta device."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path, self.layer, self.total = path, "", 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func in _device_constructors():
            probe = func(*args, **{**kwargs, "device": "meta"})
            self.total += probe.numel() * (probe.element_size() + COPY_BYTES)
            check_memory(
                self.path, f"{self.layer}: a tensor of shape {list(probe.shape)}", self.total
            )
        return func(*args, **kwargs)


def _options(checkpoint: dict[str, Any], path: Path) -> dict[str, Any]:
    """The checkpoint's ``input_shape`` (positive integers) and ``dt`` (a positive number)."""
    options: dict[str, Any] = {k: checkpoint[k] for k in ("input_shape", "dt") if k in checkpoint}
    shape = options.get("input_shape", [1])
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise InputFileError(f"{path}: input_shape is {shape!r}; expected positive integers")
    dt = options.get("dt", 1.0)
    if isinstance(dt, bool) or not isinstance(dt, int | float) or not 0 < dt < float("inf"):
        raise InputFileError(f"{path}: dt is {dt!r}; expected a positive number of seconds")
    return options


def _build(
    arch: Any, state_dict: dict[str, Any], path: Path, *, names: Any = None
) -> torch.nn.Module:
    """Rebuild a ``Sequential`` from ``[[class_name, kwargs], ...]`` of supported classes only,
    its modules named ``names`` (the source model's, by default their indices)."""
    if not isinstance(arch, list | tuple):
        raise InputFileError(
            f"{path}: architecture is a {type(arch).__name__}; expected [[class_name, kwargs], ...]"
        )
    layers = []
    limit = _AllocationLimit(path)
    for i, entry in enumerate(arch):
        name, kwargs = entry if isinstance(entry, list | tuple) and len(entry) == 2 else (0, 0)
        if not isinstance(name, str) or not isinstance(kwargs, dict):
            raise InputFileError(
                f"{path}: architecture[{i}] is {entry!r:.80}; expected [class_name, kwargs]"
            )
        if name not in _CONVERTERS:
            raise UnsupportedOpError(
                f"{path}: architecture[{i}] class {name!r} is not supported; supported: "
                f"{', '.join(supported())}"
            )
        cls = _import_class(name)
        assert cls is not None
        limit.layer = f"architecture[{i}] {name}"
        try:
            with limit:
                layers.append(cls(**kwargs))
        except (TypeError, ValueError, RuntimeError) as exc:  # the class refuses its arguments
            raise InputFileError(
                f"{path}: architecture[{i}] {name}(**{kwargs!r:.80}) fails: {exc}"
            ) from exc
    model = torch.nn.Sequential(*layers)
    if names is not None:
        _check_names(names, len(layers), path)
        model = torch.nn.Sequential(OrderedDict(zip(names, layers, strict=True)))
        state_dict = {_renamed(k, names): v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError) as exc:
        problem = " ".join(str(exc).split())  # torch's message spans lines
        raise InputFileError(f"{path}: state_dict does not fit the architecture: {problem}") from (
            exc
        )
    return model.eval()


def _check_names(names: Any, count: int, path: Path) -> None:
    """``names``: distinct module names, one per architecture entry."""
    if (
        not isinstance(names, list | tuple)
        or len(names) != count
        or len(set(names)) != count
        or not all(isinstance(v, str) and v and "." not in v for v in names)
    ):
        raise InputFileError(
            f"{path}: names is {names!r:.80}; expected {count} distinct module names (no '.'), "
            "one per architecture entry"
        )


def _renamed(key: str, names: Any) -> str:
    """A ``state_dict`` key ``"<index>.<rest>"`` with the index replaced by its module name."""
    index, _, rest = key.partition(".")
    if not index.isdigit() or int(index) >= len(names):
        return key  # load_state_dict names it as unexpected
    return f"{names[int(index)]}.{rest}"


# ---------------------------------------------------------------- writing checkpoints

_PLAIN = (type(None), bool, int, float, str, torch.dtype)


def _plain(value: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` reads ``value`` back as it is."""
    if type(value) in (list, tuple):  # not a namedtuple (Norse's LIFParameters): a class
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN) or (
        isinstance(value, torch.Tensor) and value.device.type != "meta"
    )


def _signature(cls: type) -> list[inspect.Parameter]:
    """The named constructor parameters of ``cls``: the first ``__init__`` along the MRO that
    takes more than ``*args, **kwargs`` (``snn_deploy.nn.Linear`` forwards to
    ``torch.nn.Linear``)."""
    for base in cls.__mro__:
        if "__init__" not in vars(base):
            continue
        params = list(inspect.signature(vars(base)["__init__"]).parameters.values())[1:]
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if named:
            return named
    return []


def _kwargs(module: torch.nn.Module) -> dict[str, Any]:
    """The constructor arguments of ``module``, read back from its attributes of the same name.

    An argument whose default is a bool but whose attribute is a tensor or ``None``
    (``Linear.bias``) is whether it is present; ``dtype`` is the parameters' dtype; an argument
    with no attribute, or whose value a safe checkpoint cannot hold (a surrogate function),
    keeps its default. ``checkpoint`` checks that nothing left out changes the conversion.
    """
    out: dict[str, Any] = {}
    for p in _signature(type(module)):
        if p.name == "dtype":
            dtype = next((t.dtype for t in module.parameters()), None)
            if dtype is not None and dtype != torch.get_default_dtype():
                out["dtype"] = dtype
            continue
        if p.name == "device" or not hasattr(module, p.name):
            continue
        value = getattr(module, p.name)
        if isinstance(p.default, bool) and not isinstance(value, bool):
            value = value is not None
        if isinstance(value, torch.Tensor) and value.numel() > 0 and _is_state(module, value):
            value = _scalar(value)  # the state_dict holds the exact (per-neuron) values
        elif isinstance(value, torch.Tensor):
            value = value.detach().clone()
        if _plain(value):
            out[p.name] = value
    return out


def _is_state(module: torch.nn.Module, value: torch.Tensor) -> bool:
    """Whether ``value`` is one of ``module``'s own parameters or buffers."""
    own = itertools.chain(module.parameters(recurse=False), module.buffers(recurse=False))
    return any(value is t for t in own)


def _scalar(value: torch.Tensor) -> float:
    """The first element, written as the shortest decimal that gives back its dtype's value
    (``0.9``, not ``0.8999999761581421``, for a float32 ``0.9``)."""
    x: Any = value.detach().flatten()[0].cpu().numpy()[()]  # a numpy scalar of the dtype
    return float(np.format_float_positional(x, unique=True)) if x.dtype.kind == "f" else float(x)


def checkpoint(
    model: torch.nn.Module,
    *,
    dt: float | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """The safe checkpoint of a (nested) ``Sequential`` chain (docs/FRONTENDS.md §1).

    ``{"architecture": [[class_name, kwargs], ...], "names": [...], "state_dict": ...}`` plus
    ``dt`` and ``input_shape`` when given: every leaf module of ``supported()`` with the
    constructor arguments read from its attributes (``_kwargs``), the module names (so that
    populations keep them) and the leaves' weights and buffers. The checkpoint is rebuilt and
    both models converted to NIR before it is returned; a difference in any node raises.

    Raises:
        UnsupportedOpError: a module has no converter, or its rebuilt copy converts
            differently (a constructor argument that a safe checkpoint cannot hold).
    """
    if not isinstance(model, torch.nn.Sequential):
        raise UnsupportedOpError(
            f"a checkpoint holds a torch.nn.Sequential chain; {type(model).__name__} is model "
            "code (traced by torch.fx): compile the live module, or save it as NIR"
        )
    modules = _modules(model)
    arch, state, names = [], {}, []
    for i, (name, module) in enumerate(modules):
        arch.append([_lookup(module), _kwargs(module)])
        names.append(name)
        for key, value in module.state_dict().items():
            state[f"{i}.{key}"] = value.detach().clone()
    ckpt: dict[str, Any] = {"architecture": arch, "names": names, "state_dict": state}
    if dt is not None:
        ckpt["dt"] = float(dt)
    if input_shape is not None:
        ckpt["input_shape"] = [int(d) for d in input_shape]
    step = DEFAULT_DT if dt is None else float(dt)
    shape = tuple(input_shape) if input_shape is not None else None
    rebuilt = _build(arch, state, Path("<checkpoint>"), names=names)
    with warnings.catch_warnings():  # the converters' advice is for compiling, not saving
        warnings.simplefilter("ignore")
        original = to_nir(model.eval(), dt=step, input_shape=shape)
        try:
            difference = _nir_difference(original, to_nir(rebuilt, dt=step, input_shape=shape))
        except UnsupportedOpError as exc:  # a dropped argument (Sinabs' spike_fn) broke it
            difference = f"the rebuilt model does not convert ({exc})"
    if difference is not None:
        raise UnsupportedOpError(
            f"the checkpoint does not reproduce the model: {difference}; a constructor "
            "argument of that module cannot be stored safely: save the model as NIR instead "
            "(nir.write(path, snn_deploy.frontends.torch.to_nir(model, dt=...)))"
        )
    return ckpt


def _nir_difference(a: Any, b: Any, where: str = "") -> str | None:
    """The first difference between two NIR graphs (nodes, edges, fields), or ``None``."""
    if type(a) is not type(b):
        return f"{where or 'graph'} is {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, nir.NIRGraph):
        if sorted(a.nodes) != sorted(b.nodes) or sorted(a.edges) != sorted(b.edges):
            return f"{where or 'graph'}: nodes or edges differ"
        for k in a.nodes:
            found = _nir_difference(a.nodes[k], b.nodes[k], f"{where}{k}")
            if found is not None:
                return found
        return None
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            same = np.shape(x) == np.shape(y) and np.array_equal(x, y)
        elif isinstance(x, dict) and isinstance(y, dict):
            same = x.keys() == y.keys() and all(
                np.array_equal(x[k], y[k]) if isinstance(x[k], np.ndarray) else x[k] == y[k]
                for k in x
            )
        else:
            same = bool(x == y)
        if not same:
            return f"node {where!r} field {f.name}"
    return None


def load(
    source: Path | torch.nn.Module,
    *,
    reset: ResetMode | None = None,
    trust_pickle: bool = False,
    dt: float | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Graph:
    """Load a PyTorch SNN (file or live module) into a verified IR graph.

    Args:
        source: a ``.pt``/``.pth`` file (formats in the module docstring) or a module.
        reset: override the reset mode of every spiking neuron.
        trust_pickle: allow unpickling a whole module (runs code from the file).
        dt: the compile time step (default: the checkpoint's ``dt``, else ``DEFAULT_DT``); the
            graph keeps the step its time constants are written for (``Graph.dt``).
        input_shape: per-sample input shape (default: the checkpoint's, else from a first Linear).

    Raises:
        InputFileError: the file cannot be read or is refused (pickle without trust).
        UnsupportedOpError: a module has no converter.
    """
    options: dict[str, Any] = {}
    model: Any = source
    if isinstance(source, Path):
        model, options = read_model(source, trust_pickle=trust_pickle)
    written = options.get("dt")  # NIR bytes: their time constants are at the checkpoint's dt
    if isinstance(model, torch.nn.Module):
        shape = input_shape or options.get("input_shape")
        step = float(dt or options.get("dt") or DEFAULT_DT)
        written = step
        shape = tuple(shape) if shape is not None else None
        if isinstance(model, torch.nn.Sequential) or _has_converter(model):
            model = to_nir(model.eval(), dt=step, input_shape=shape)
        else:  # real model code: traced (frontends/torch_fx.py)
            from snn_deploy.frontends.torch_fx import trace

            traced = trace(model.eval(), dt=step, input_shape=shape)
            logger.info("traced model: the output lags the source by %d steps", traced.latency)
            model = traced.graph
    graph = load_nir(
        model,
        reset=reset,
        origin=source if isinstance(source, Path) else None,
        # NIR we write, or the NIR bytes of a checkpoint: by the checkpoint format's definition
        # (docs/FRONTENDS.md §1) at its ``dt`` with our conventions, never another exporter's
        detect_exporter=False,
    )
    return graph if written is None else dataclasses.replace(graph, dt=float(written))
