"""Exporter profiles: what each framework's own NIR exporter writes, and how we read it back.

NIR is continuous-time, but every exporter writes its framework's discrete-time neuron with
its own convention (and some with known defects). A profile (``--exporter NAME``) turns those
numbers back into the framework's per-step dynamics at the compile ``dt`` (docs/SEMANTICS.md §1:
``tau = dt/(1 - decay)``, gain on the input ``R·dt/tau``), repairs the exporter's structural
defects (batch dimensions in Input/Output types, singleton dimensions, transposed weights) and
sets what the file leaves out (the reset mechanism and its timing, the threshold compare).
docs/FRONTENDS.md §7 has the table.

A profile also makes constants exact: the source frameworks have no synaptic delay, so an
Affine bias acts from their step 0, which is our step ``lag`` (the projections between the
graph's input and the neuron it feeds). ``gate_biases`` moves every such bias onto a node that
spikes at every step from step 0, behind a ``Delay`` of ``lag - 1`` steps, so no bias acts
before the input it is added to; the output at our step ``t + latency`` is then the source's at
``t`` (``latency`` per Output: ``snn_deploy.api.latency``).

``detect`` names the exporter whose signature a file carries, for a note to the user; it never
changes how a file is read.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from snn_deploy.errors import UnsupportedOpError
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare

Params = dict[str, Any]
Nodes = dict[str, Any]
Edges = list[tuple[str, str]]

NO_LEAK_TAU_STEPS = 2.0**60
"""``tau`` (in steps) that writes "no leak": ``1 - 2**-60`` is 1.0 in float64 and the integer
decay code rounds to 0, so the voltage is kept exactly (a clamped Spyx ``beta = 1``)."""

ROCKPOOL_MAX_SPIKES = 2**16
"""Rockpool's default ``max_spikes_per_dt``: its neurons emit up to this many spikes per step."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a parameter fix needs: the compile step and the exporter's own step (seconds), and
    snnTorch's ``reset_delay`` (``snntorch{reset_delay=false}``; its default is true)."""

    dt: float
    exporter_dt: float
    reset_delay: bool = True


@dataclass(frozen=True, slots=True)
class Profile:
    """One exporter's conventions.

    Attributes:
        name: the ``--exporter`` value.
        dt: the exporter's time step (seconds) where its numbers depend on one; overridden by
            ``NAME{dt=...}``.
        reset: the framework's default reset, for files that do not record it.
        levels: spike levels the framework's neurons emit by default (None: binary).
        compare: the framework's spike test, ``v > θ`` or ``v >= θ``.
        timing: the reset timing of a node type (NIR type name) with a reset mode; None: the
            reset acts in the spiking step.
        fix: rewrites one node's converted parameters (NIR type name, params, context).
        structure: repairs the flat node table (shapes, weight orientation) before shapes are
            inferred.
        warning: the documented bound where a default of the framework is not reproduced.
    """

    name: str
    dt: float | None
    reset: ResetMode
    fix: Callable[[str, Params, Context], Params]
    structure: Callable[[Nodes, Edges], Nodes] = field(default=lambda nodes, edges: nodes)
    levels: int | None = None
    compare: ThresholdCompare = ThresholdCompare.GT
    timing: Callable[[str, ResetMode, Context], ResetTiming] | None = None
    warning: str | None = None


def _scale_time(params: Params, factor: float) -> Params:
    """Every time constant times ``factor``: the per-step fractions ``dt/tau`` are kept."""
    out = dict(params)
    for key in ("tau", "tau_syn", "tau_mem", "tau_syn2"):
        if key in out:
            out[key] = out[key] * factor
    return out


def _snntorch(kind: str, params: Params, ctx: Context) -> Params:
    """``tau = dt_e/(1 - beta)``, ``r = tau/dt_e``, ``w_in = tau_syn/dt_e``: exact at dt_e."""
    return _scale_time(params, ctx.dt / ctx.exporter_dt)


def _snntorch_timing(kind: str, reset: ResetMode, ctx: Context) -> ResetTiming:
    """snnTorch's reset timing (docs/SEMANTICS.md §1.2; ``frontends.torch._snntorch_timing``):
    ``reset_delay=True``: late, except Leaky's zero reset (it zeroes before the input: the
    immediate rule); ``reset_delay=False``: subtract carries, zero is immediate. An RLeaky is a
    LIF node here, read as Leaky: its late zero reset (which drops the input) needs the ``.pt``
    route."""
    if reset is ResetMode.SUBTRACT:
        return ResetTiming.LATE if ctx.reset_delay else ResetTiming.CARRY
    return ResetTiming.LATE if ctx.reset_delay and kind == "CubaLIF" else ResetTiming.IMMEDIATE


def _spikingjelly(kind: str, params: Params, ctx: Context) -> Params:
    """LIF ``tau = τ_steps·dt_e`` (exact at dt_e); IF ``r = 1/dt_e`` means ``v += x`` per step."""
    out = _scale_time(params, ctx.dt / ctx.exporter_dt)
    if kind == "IF":
        out["r"] = out["r"] * ctx.exporter_dt
    return out


def _norse(kind: str, params: Params, ctx: Context) -> Params:
    """Norse writes ``tau = dt_e/tau_inv``; its step decays by ``k = dt_e·tau_inv = dt_e²/tau``
    and adds the input to the synaptic current undamped (``w_in = 1/k_syn``)."""
    out = dict(params)
    for key in ("tau", "tau_mem", "tau_syn"):
        if key in out:
            out[key] = ctx.dt * out[key] / ctx.exporter_dt**2
    if kind in ("CubaLIF", "CubaLI"):
        out["w_in"] = out["w_in"] * out["tau_syn"] / ctx.dt
    return out


def _sinabs(kind: str, params: Params, ctx: Context) -> Params:
    """Sinabs writes ``tau`` in steps of an exponential decay ``exp(-1/tau)`` with
    ``norm_input`` (its default: ``r = 1``, input times ``1 - decay``)."""
    out = dict(params)
    if "tau" in out:
        out["tau"] = ctx.dt / -np.expm1(-1.0 / out["tau"])
    return out


def _lambert_w(y: Any) -> Any:
    """``x`` with ``x·exp(x) = y`` for ``y > 0`` (Newton from ``log1p(y)``), float64."""
    x = np.log1p(y)
    for _ in range(60):
        x = x - (x * np.exp(x) - y) / (np.exp(x) * (1 + x))
    return x


def _rockpool(kind: str, params: Params, ctx: Context) -> Params:
    """Rockpool writes ``r = tau·exp(-dt_e/tau)/dt_e``, so ``dt_e/tau = W(1/r)`` (Lambert W)
    recovers its step. Its neuron: ``i = (i + x)·exp(-dt_e/tau_syn)``, ``v = v·exp(-dt_e/tau_mem)
    + i``: input gain ``exp(-dt_e/tau_syn)`` on the current, gain 1 from current to voltage."""
    if kind not in ("LIF", "CubaLIF"):
        raise UnsupportedOpError(
            f"--exporter rockpool: a {kind} node has no Rockpool profile (LIF and CubaLIF only)"
        )
    out = dict(params)
    key = "tau" if kind == "LIF" else "tau_mem"
    x = _lambert_w(1.0 / out["r"])  # dt_e / tau_mem
    mem = -np.expm1(-x)  # 1 - exp(-dt_e/tau_mem), the voltage lost per step
    out[key] = ctx.dt / mem
    out["r"] = 1.0 / mem
    if kind == "CubaLIF":
        keep = np.exp(-x * params["tau_mem"] / out["tau_syn"])  # exp(-dt_e/tau_syn)
        out["tau_syn"] = ctx.dt / (1.0 - keep)
        out["w_in"] = keep / (1.0 - keep)
    return out


def _drop_output_type(node: Any) -> Any:
    out = copy.copy(node)
    out.input_type, out.output_type = {}, {}
    return out


def _spyx(kind: str, params: Params, ctx: Context) -> Params:
    """Spyx writes ``tau = dt/(1 - beta)`` and ``r = beta`` with its raw ``beta``, which its
    forward clamps to ``[0, 1]`` (a negative ``tau`` is a raw ``beta > 1``: no leak)."""
    out = dict(params)
    if kind == "IF":
        return out
    if kind not in ("LIF", "LI"):
        raise UnsupportedOpError(
            f"--exporter spyx: a {kind} node has no Spyx profile (LIF, LI and IF only)"
        )
    beta = np.clip(out["r"], 0.0, 1.0)
    loss = np.where(beta == 1.0, 1.0 / NO_LEAK_TAU_STEPS, 1.0 - beta)
    out["tau"] = ctx.dt / loss
    out["r"] = 1.0 / loss  # gain 1: v = beta·v + x
    return out


def _spyx_structure(nodes: Nodes, edges: Edges) -> Nodes:
    """Spyx stores Linear/Affine weights as haiku's ``[in, out]``: transpose them."""
    out = dict(nodes)
    for name, node in nodes.items():
        if isinstance(node, (nir.Linear, nir.Affine)):
            fixed = copy.copy(node)
            fixed.weight = np.asarray(node.weight).T
            fixed.input_type = {"input": np.array(fixed.weight.shape[1:])}
            fixed.output_type = {"output": np.array(fixed.weight.shape[:1])}
            out[name] = fixed
    return out


def _batch_structure(nodes: Nodes, edges: Edges) -> Nodes:
    """nirtorch-based exporters (Norse, Sinabs, Rockpool) write the sample's batch (and time)
    dimensions into the Input and Output types: keep the dimensions the first node reads (a
    Linear/Affine reads the last one; anything else all but the batch dimension)."""
    out = dict(nodes)
    for name, node in nodes.items():
        if isinstance(node, nir.Output):
            out[name] = _drop_output_type(node)
        shape = (
            np.atleast_1d(node.input_type.get("input", []))
            if isinstance(node, nir.Input)
            else np.zeros(0)
        )
        if len(shape) < 2:
            continue
        first = next((nodes[d] for s, d in edges if s == name and d in nodes), None)
        fixed = copy.copy(node)
        kept = shape[-1:] if isinstance(first, (nir.Linear, nir.Affine)) else shape[1:]
        fixed.input_type, fixed.output_type = {"input": kept}, {"output": kept}
        out[name] = fixed
    return out


PROFILES: dict[str, Profile] = {
    "snntorch": Profile(
        name="snntorch",
        dt=1e-4,
        reset=ResetMode.SUBTRACT,
        fix=_snntorch,
        timing=_snntorch_timing,
        warning=(
            "snnTorch's export_to_nir records neither reset_mechanism nor reset_delay: "
            "read as its defaults reset_mechanism='subtract', reset_delay=True (the reset "
            "lands one step late); pass --reset zero or --exporter "
            "'snntorch{reset_delay=false}' if the model was trained otherwise"
        ),
    ),
    "norse": Profile(
        name="norse", dt=1e-3, reset=ResetMode.ZERO, fix=_norse, structure=_batch_structure
    ),
    "sinabs": Profile(
        name="sinabs",
        dt=None,
        reset=ResetMode.SUBTRACT,
        fix=_sinabs,
        structure=_batch_structure,
        compare=ThresholdCompare.GE,
    ),
    "spikingjelly": Profile(
        name="spikingjelly",
        dt=1e-4,
        reset=ResetMode.ZERO,
        fix=_spikingjelly,
        compare=ThresholdCompare.GE,
    ),
    "rockpool": Profile(
        name="rockpool",
        dt=None,
        reset=ResetMode.SUBTRACT,
        fix=_rockpool,
        structure=_batch_structure,
        levels=ROCKPOOL_MAX_SPIKES,
        warning=(
            "Rockpool computes in float32, snn-deploy's float reference in float64: they agree "
            "on >= 99 % of spike slots, the others one spike level apart, where a float32 "
            "voltage rounds across a multiple of the threshold (docs/FRONTENDS.md §7)"
        ),
    ),
    "spyx": Profile(
        name="spyx",
        dt=None,
        reset=ResetMode.SUBTRACT,
        fix=_spyx,
        structure=_spyx_structure,
        warning=(
            "Spyx LIF resets one step late (it subtracts θ after the next step's input) and "
            "emits the spike of a voltage one step later; snn-deploy reads the late reset "
            "but not the late spike: exact only where the clamped beta is 1 "
            "(docs/FRONTENDS.md §7)"
        ),
    ),
}
"""Every NIR exporter profile (``lava-dl`` writes netx ``.net`` files, read exactly as they are,
and has no NIR exporter to profile)."""

EXPORTERS = (*PROFILES, "lava-dl")
"""The ``--exporter`` choices."""


def parse(spec: str) -> tuple[Profile, float | None, bool]:
    """``NAME`` or ``NAME{dt=SECONDS,reset_delay=true|false}``: the profile, the exporter's
    step (None: no step) and snnTorch's ``reset_delay`` (true unless given).

    Raises:
        UnsupportedOpError: an unknown name or option, or a malformed or non-positive ``dt``.
    """
    match = re.fullmatch(r"([a-z-]+)(?:\{([^}]*)\})?", spec.strip())
    name = match.group(1) if match else spec
    if name not in PROFILES:
        raise UnsupportedOpError(
            f"--exporter {spec!r}: unknown exporter for a NIR file; known: "
            f"{', '.join(PROFILES)} (lava-dl writes .net files, read as they are)"
        )
    profile = PROFILES[name]
    raw = (match.group(2) if match else None) or ""
    options = {k.strip(): v for k, _, v in (i.partition("=") for i in raw.split(",") if i.strip())}
    known = {"dt", "reset_delay"} if name == "snntorch" else {"dt"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UnsupportedOpError(
            f"--exporter {spec!r}: unknown option {unknown[0]!r}; {name} takes "
            f"{', '.join(sorted(known))}"
        )
    delay = options.get("reset_delay", "true").strip().lower()
    if delay not in ("true", "false"):
        raise UnsupportedOpError(f"--exporter {spec!r}: reset_delay must be true or false")
    if "dt" not in options:
        return profile, profile.dt, delay == "true"
    try:
        dt = float(options["dt"])
    except ValueError:
        dt = math.nan
    if not (dt > 0 and math.isfinite(dt)):
        raise UnsupportedOpError(f"--exporter {spec!r}: dt must be a positive number of seconds")
    return profile, dt, delay == "true"


def detect(nodes: Nodes, edges: Edges) -> tuple[str, str] | None:
    """The exporter whose signature the flat node table carries, and the signature seen."""
    names = list(nodes)
    if any(re.fullmatch(r"\d+_\w+Torch", k) for k in names):
        return "rockpool", "node names like '0_LinearTorch'"
    for src, dst in edges:
        node, first = nodes.get(src), nodes.get(dst)
        if not (isinstance(node, nir.Input) and isinstance(first, (nir.Linear, nir.Affine))):
            continue
        shape = np.atleast_1d(node.input_type.get("input", []))
        weight = np.shape(first.weight)
        if len(shape) == 1 and weight[1] != shape[0] == weight[0]:
            return "spyx", f"the first Linear weight is [in, out] = {list(weight)}"
        if len(shape) > 1 and int(shape[-1]) == weight[1]:
            return "norse", f"the Input type {list(shape)} carries a batch dimension"
    neurons = [v for v in nodes.values() if isinstance(v, (nir.LIF, nir.CubaLIF, nir.IF))]
    for v in neurons:
        if isinstance(v, nir.IF) and np.allclose(np.asarray(v.r), 1e4):
            return "spikingjelly", "IF r = 1/dt = 1e4"
        tau = np.asarray(getattr(v, "tau", getattr(v, "tau_mem", np.nan)), dtype=np.float64)
        r = np.asarray(v.r, dtype=np.float64)
        if isinstance(v, (nir.LIF, nir.CubaLIF)) and np.allclose(r * 1e-4, tau) and np.all(r > 1):
            return "snntorch", "r = tau/1e-4 (snnTorch's hard-coded dt)"
        if isinstance(v, nir.LIF) and np.all(r == 1) and np.all(tau >= 1):
            return "sinabs", "LIF tau in steps (>= 1) with r = 1"
    return None


def lags(
    edges: Edges, sources: list[str], neurons: set[str], delays: dict[str, int]
) -> dict[str, int]:
    """Each reachable node's lag: the steps between a source's value and the node's (the
    shortest path; an edge into a neuron is one projection, one step; a ``Delay`` node adds its
    ``delays`` steps; recurrent edges never shorten a path)."""
    lag = dict.fromkeys(sources, 0)
    frontier = list(sources)
    while frontier:
        following = []
        for s, d in edges:
            if s not in frontier:
                continue
            step = lag[s] + (1 if d in neurons else 0) + delays.get(d, 0)
            if step < lag.get(d, step + 1):
                lag[d] = step
                following.append(d)
        frontier = following
    return lag


ONSET = "bias_onset"
"""The node that spikes at every step from step 0; gated biases enter through it."""

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold)


def gate_biases(
    nodes: Nodes, edges: Edges, dt: float, onset_metadata: dict[str, Any]
) -> tuple[Nodes, Edges]:
    """Every Affine bias into a neuron at lag ``L`` enters through ``ONSET`` and a ``Delay`` of
    ``L - 1`` steps, so it acts from our step ``L`` (the source's step 0), never before its input.

    Affine nodes that feed anything but neurons keep their bias (folded, acting from step 0).
    """
    neurons = {k for k, v in nodes.items() if isinstance(v, NEURON_TYPES)}
    delays = {
        k: round(float(np.max(v.delay)) / dt) for k, v in nodes.items() if isinstance(v, nir.Delay)
    }
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    lag = lags(edges, inputs, neurons, delays)
    out, new_edges = dict(nodes), list(edges)
    for name, node in nodes.items():
        targets = [d for s, d in edges if s == name]
        bias = np.asarray(getattr(node, "bias", 0.0), dtype=np.float64)
        if not isinstance(node, nir.Affine) or not np.any(bias) or not targets:
            continue
        if not all(d in neurons and d in lag for d in targets) or len(targets) != 1:
            continue
        (target,) = targets
        out[name] = nir.Linear(weight=np.asarray(node.weight))
        if ONSET not in out:
            one = np.ones(1)
            out[ONSET] = nir.LIF(
                tau=one * dt,  # loses its whole voltage per step: v = 2 > 1 at every step
                r=one,
                v_leak=2 * one,
                v_threshold=one,
                v_reset=0 * one,
                metadata=onset_metadata,
            )
            out[f"{ONSET}_loop"] = nir.Linear(weight=np.zeros((1, 1)))  # a node needs an input
            new_edges += [(ONSET, f"{ONSET}_loop"), (f"{ONSET}_loop", ONSET)]
        start = ONSET
        if lag[target] > 1:
            start = f"{name}_bias_delay"
            out[start] = nir.Delay(delay=np.full(1, (lag[target] - 1) * dt))
            new_edges.append((ONSET, start))
        out[f"{name}_bias"] = nir.Linear(weight=bias.reshape(-1, 1))
        new_edges += [(start, f"{name}_bias"), (f"{name}_bias", target)]
    return out, new_edges
