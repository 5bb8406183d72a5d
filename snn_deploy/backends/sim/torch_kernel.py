"""The batched torch kernel: ``run.py``'s integer loop on torch tensors, on CUDA when torch
sees a GPU, else on the CPU; bit-exact (tests/backends/sim/test_torch_kernel.py proves it
equal to the NumPy reference on the compiled kernel's Hypothesis nets).

It covers everything the compiled kernel does: every numeric format (wrap and saturation,
decay forms, current and voltage updates, source-by-source accumulation, input latency and
cap), delays, multi-level spikes, zero and subtract reset, late and carried resets, ``>=``
thresholds, voltage read-outs and product units (attention, gate; ``run._ProductState``).

State is int64, as in ``kernels.py``, whose functions these are (the same operations on
tensors; the comments there give each shift and bound its reason). A projection's product
runs in float32 or float64 where every partial sum is an integer below 2**24 or 2**53 (exact
in any summation order, as ``run.py`` does), else in int64 (the CPU only: torch has no int64
matrix product on CUDA). float32 is used only at torch's "highest" float32 matmul precision
(no TF32 or bfloat16 products).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Trace
from snn_deploy.backends.sim.run import _shifted, chip_order
from snn_deploy.errors import BackendUnavailableError, UnsupportedOpError
from snn_deploy.ir.net import Attention, Net, NumericSpec, Population, Product, Projection
from snn_deploy.ir.types import (
    Accumulation,
    CurrentUpdate,
    DecayForm,
    FixedPoint,
    Overflow,
    ResetMode,
    ResetTiming,
    ThresholdCompare,
    VoltageUpdate,
)

try:
    import torch
except ImportError as e:  # run.simulate imports this module only for kernel="torch"
    raise BackendUnavailableError(
        "the torch kernel needs PyTorch; install it with: pip install 'snn-deploy[torch]'"
    ) from e

Int = npt.NDArray[np.int64]


def device() -> str:
    """Where ``kernel="torch"`` runs: ``cuda`` when torch sees a GPU, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- kernels.py on tensors


def _shift(x: torch.Tensor, exp: int) -> torch.Tensor:
    return x << exp if exp >= 0 else x >> -exp


def _lost(x: torch.Tensor, code: torch.Tensor, spec: NumericSpec, bits: int) -> torch.Tensor:
    """``kernels.lost``: ``code`` is ``2**bits - (d + offset)`` (multiply form) or the dash
    ``d + offset`` (shift form), as ``compiled.Packed`` holds it."""
    if spec.decay_form is DecayForm.SHIFT:
        d = x >> code
        return torch.where((d == 0) & (x != 0), torch.sign(x), d)
    p = x * code
    return x - torch.sign(p) * (torch.abs(p) >> bits)


def _overflow(x: torch.Tensor, reg: FixedPoint) -> torch.Tensor:
    """``kernels.overflow``: wrap-once or saturation."""
    if reg.overflow is Overflow.SATURATE:
        return x.clamp(reg.min, reg.max)
    half, full = 1 << (reg.width - 1), 1 << reg.width
    return torch.where(x > half, x - full, torch.where(x <= -half, x + full, x))


def _crossed(v: torch.Tensor, th: torch.Tensor, ge: bool) -> torch.Tensor:
    return (v >= th if ge else v > th).long()


def _voltage(v: torch.Tensor, u: torch.Tensor, p: _Pop, spec: NumericSpec) -> torch.Tensor:
    """``kernels._voltage``."""
    loss = _lost(v, p.dv, spec, spec.decay.width)
    if spec.voltage_update is VoltageUpdate.SUM:
        return v - loss + u + p.bias
    neg = -loss
    neg = torch.where(neg > spec.voltage.max, neg - (1 << spec.voltage.width), neg)
    step = _overflow(_overflow(neg + u, spec.voltage) + p.bias, spec.voltage)
    return _overflow(v + step, spec.voltage)


def _current(
    u: torch.Tensor, a: torch.Tensor, code: torch.Tensor, spec: NumericSpec
) -> torch.Tensor:
    """``kernels.current_step`` of one synaptic current."""
    bits, a = spec.decay.width, a << spec.input_shift
    if spec.current_update is CurrentUpdate.DECAY_THEN_ADD:
        return _overflow(u - _lost(u, code, spec, bits) + a, spec.current)
    u = _overflow(u + a, spec.current)
    return u - _lost(u, code, spec, bits)


def _step(
    u: torch.Tensor,
    u2: torch.Tensor | None,
    v: torch.Tensor,
    a: torch.Tensor,
    a2: torch.Tensor | None,
    p: _Pop,
    spec: NumericSpec,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``kernels.fixed_step`` of one population: new ``u``, ``u2`` (None without a second
    current), ``v`` and the output; ``v`` integrates the exact sum ``u + u2``."""
    u = _current(u, a, p.du, spec)
    if u2 is not None:
        assert a2 is not None
        assert p.du2 is not None
        u2 = _current(u2, a2, p.du2, spec)
    summed = _voltage(v, u if u2 is None else u + u2, p, spec)
    if p.vth is None:  # a non-spiking population outputs its voltage
        v = _overflow(summed, spec.voltage)
        return u, u2, v, v
    th, pop = p.vth, p.pop
    ge, subtract = pop.threshold_compare is ThresholdCompare.GE, pop.reset is ResetMode.SUBTRACT
    if pop.reset_timing is not ResetTiming.IMMEDIATE:  # kernels._fixed_delayed
        r = _crossed(v, th, ge)
        if subtract:
            v = _overflow(summed - r * th, spec.voltage)
        else:
            v = torch.where(r > 0, 0, _overflow(summed, spec.voltage))
        spikes = _crossed(v, th, ge)
        if pop.reset_timing is ResetTiming.CARRY:
            v = _overflow(v - (spikes - r) * th, spec.voltage)
        return u, u2, v, spikes
    v = _overflow(summed, spec.voltage)
    if pop.levels > 1:  # kernels.spike_count
        count = torch.where(
            th > 0,
            ((v - (0 if ge else 1)) // th.clamp(min=1)).clamp(0, pop.levels),
            torch.where(_crossed(v, torch.zeros_like(v), ge) > 0, pop.levels, 0),
        )
    else:
        count = _crossed(v, th, ge)
    v = v - count * th if subtract else torch.where(count > 0, 0, v)
    return u, u2, v, count


class _Unit:
    """``run._ProductState`` on tensors: the unit reads its operands' outputs of step
    ``t - 1``; causal attention updates ``S`` and reads it every step, whole-clip attention
    updates ``S`` and keeps ``q`` for ``n < steps`` and reads the kept ``q[n - steps]`` for
    ``steps <= n < 2·steps`` (output 0 otherwise)."""

    def __init__(self, unit: Product, batch: int, dev: str) -> None:
        assert unit.fixed is not None
        self.unit, self.fixed, self.batch, self.dev = unit, unit.fixed, batch, dev
        self.index = [torch.tensor(op.index, device=dev) for op in unit.operands]
        if isinstance(unit, Attention):
            d = unit.size // unit.heads
            self.shifts = torch.as_tensor(unit.decay, device=dev)[None, :, None, None]
            self.s = torch.zeros((batch, unit.heads, d, d), dtype=torch.int64, device=dev)
            self.kept_q: list[torch.Tensor] = []

    def step(self, record: dict[str, torch.Tensor], t: int) -> torch.Tensor:
        unit, f = self.unit, self.fixed
        out = torch.zeros((self.batch, unit.size), dtype=torch.int64, device=self.dev)
        if t == 0:  # no operand has an output yet
            return out
        x = [
            record[op.src][:, t - 1][:, i] for op, i in zip(unit.operands, self.index, strict=True)
        ]
        if not isinstance(unit, Attention):  # kernels.gate
            return ((x[0] * x[1]) >> f.shift).clamp(f.output.min, f.output.max)
        assert f.state is not None
        q, k, v = (o.reshape(self.batch, unit.heads, -1) for o in x)
        n = t - 1
        if unit.causal or n < unit.steps:  # kernels.attention_update, decay_shift
            lost = torch.sign(self.s) * (torch.abs(self.s) >> self.shifts)
            s = torch.where(self.shifts > 0, self.s - lost, self.s)
            self.s = (s + k[..., :, None] * v[..., None, :]).clamp(f.state.min, f.state.max)
        if not unit.causal:
            if n < unit.steps:
                self.kept_q.append(q)
                return out
            if n >= 2 * unit.steps:
                return out
            q = self.kept_q[n - unit.steps]
        a = (q[..., :, None] * self.s).sum(dim=-2)  # kernels.attention_read (no int64 bmm on CUDA)
        return a.clamp(f.output.min, f.output.max).reshape(self.batch, unit.size)


# --------------------------------------------------------------------------- per-net tensors


@dataclass(frozen=True, slots=True)
class _Pop:
    """A population's per-neuron codes: the decay codes as ``_lost`` takes them (``du2``: of
    the second current, None without one), the bias ``bias_mant << bias_exp``, the threshold
    ``vth << threshold_shift`` (None: non-spiking)."""

    pop: Population
    du: torch.Tensor
    dv: torch.Tensor
    bias: torch.Tensor
    vth: torch.Tensor | None
    du2: torch.Tensor | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A net's tensors on one device (built once per net and device, ``_prepare``)."""

    pops: dict[str, _Pop]
    weights: list[torch.Tensor]  # per projection: [src, dst] codes (shifted with ``each``)
    order: list[int]  # the projections in the order they add (``run.chip_order``)
    each: bool  # source-by-source saturating accumulation into ``u``


_CACHE: weakref.WeakKeyDictionary[Net, dict[str, _Prepared]] = weakref.WeakKeyDictionary()


def _prepare(net: Net, dev: str) -> _Prepared:
    prepared = _CACHE.setdefault(net, {})
    if dev not in prepared:
        prepared[dev] = _build(net, dev)
    return prepared[dev]


def _build(net: Net, dev: str) -> _Prepared:
    spec = net.numeric
    assert spec is not None

    def tensor(x: npt.ArrayLike, size: int) -> torch.Tensor:
        return torch.as_tensor(np.broadcast_to(np.asarray(x, np.int64), size).copy(), device=dev)

    def code(d: npt.NDArray[np.int64], offset: int) -> npt.NDArray[np.int64]:
        return (
            d + offset
            if spec.decay_form is DecayForm.SHIFT
            else (1 << spec.decay.width) - (d + offset)
        )

    pops = {}
    for name, pop in net.populations.items():
        f = pop.fixed
        assert f is not None
        vth = None if f.vth is None else tensor(f.vth << spec.threshold_shift, pop.size)
        pops[name] = _Pop(
            pop=pop,
            du=tensor(code(f.du, spec.current_decay_offset), pop.size),
            dv=tensor(code(f.dv, spec.voltage_decay_offset), pop.size),
            bias=tensor(f.bias_mant << f.bias_exp, pop.size),
            vth=vth,
            du2=None if f.du2 is None else tensor(code(f.du2, spec.current_decay_offset), pop.size),
        )
    each = spec.accumulation is Accumulation.SATURATE_EACH_SOURCE
    weights = []
    for proj in net.projections:
        assert proj.fixed is not None
        codes = _shifted(proj) if each else proj.fixed.codes.toarray().astype(np.int64)
        weights.append(torch.as_tensor(codes.T.copy(), device=dev))
    order = chip_order(net) if each else list(range(len(net.projections)))
    return _Prepared(pops=pops, weights=weights, order=order, each=each)


def _matmul_dtype(bound: int, dev: str) -> torch.dtype:
    """The exact dtype for sums up to ``bound`` (see module)."""
    if bound < 2**24 and torch.get_float32_matmul_precision() == "highest":
        return torch.float32
    if bound < 2**53:
        return torch.float64
    if dev != "cpu":
        raise UnsupportedOpError(
            f"a projection's sums reach {bound} >= 2**53: exact only in int64, which torch "
            "multiplies on the CPU only; use kernel='numba'"
        )
    return torch.int64


def _bound(proj: Projection, peak: dict[str, int]) -> int:
    """The largest |partial sum| of ``proj``'s product: its largest row of |codes| times its
    source's largest |output|."""
    assert proj.fixed is not None
    return int(np.asarray(abs(proj.fixed.codes).sum(axis=1)).max(initial=0)) * peak[proj.src]


def simulate(
    net: Net,
    data: dict[str, Int],
    *,
    record_state: bool,
    progress: Callable[[int, int], None] | None,
) -> Trace:
    """Run the quantized ``net`` on int64 ``data`` (``[batch, time, size]`` per input), all
    samples at once, on ``device()``.

    Raises:
        UnsupportedOpError: (CUDA) a projection's sums need int64 products.
    """
    spec, dev = net.numeric, device()
    assert spec is not None
    prepared = _prepare(net, dev)
    batch, steps = next(iter(data.values())).shape[:2]
    record = {k: torch.tensor(x, device=dev) for k, x in data.items()}
    peak = {k: int(np.abs(x).max()) for k, x in data.items()}
    for name, pop in net.populations.items():
        record[name] = torch.zeros((batch, steps, pop.size), dtype=torch.int64, device=dev)
        peak[name] = pop.levels if pop.spiking else 1 << (spec.voltage.width - 1)
    for name, unit in net.products.items():
        assert unit.fixed is not None
        record[name] = torch.zeros((batch, steps, unit.size), dtype=torch.int64, device=dev)
        peak[name] = 1 << (unit.fixed.output.width - 1)
    units = {k: _Unit(unit, batch, dev) for k, unit in net.products.items()}
    matrices = (
        []
        if prepared.each
        else [
            w.to(_matmul_dtype(_bound(p, peak), dev))
            for w, p in zip(prepared.weights, net.projections, strict=True)
        ]
    )
    u = {
        k: torch.zeros((batch, p.size), dtype=torch.int64, device=dev)
        for k, p in net.populations.items()
    }
    v = {k: torch.zeros_like(x) for k, x in u.items()}
    u2 = {k: torch.zeros_like(u[k]) for k, p in prepared.pops.items() if p.du2 is not None}
    us = {k: torch.zeros_like(x) for k, x in record.items() if k in u} if record_state else {}
    vs = {k: torch.zeros_like(x) for k, x in us.items()}
    u2s = {k: torch.zeros_like(us[k]) for k in u2} if record_state else {}
    for step in range(steps):
        a = {k: torch.zeros_like(x) for k, x in u.items()}
        a2 = {k: torch.zeros_like(x) for k, x in u2.items()}
        for i in prepared.order:
            proj = net.projections[i]
            src_t = step - net.lag(proj)
            if src_t < 0:
                continue
            x = record[proj.src][:, src_t]
            if prepared.each:  # kernels.accumulate: source by source, saturating
                w, into = prepared.weights[i], u2 if proj.synapse else u
                for j in torch.nonzero(x.any(dim=0)).flatten().tolist():
                    into[proj.dst] = (into[proj.dst] + x[:, j, None] * w[j]).clamp(
                        spec.current.min, spec.current.max
                    )
                continue
            acc = (x.to(matrices[i].dtype) @ matrices[i]).long()  # exact: see module
            assert proj.fixed is not None
            (a2 if proj.synapse else a)[proj.dst] += _shift(acc, proj.fixed.exp)
        for name, unit_state in units.items():
            record[name][:, step] = unit_state.step(record, step)
        for name, p in prepared.pops.items():
            u[name], second, v[name], record[name][:, step] = _step(
                u[name], u2.get(name), v[name], a[name], a2.get(name), p, spec
            )
            if second is not None:
                u2[name] = second
            if record_state:
                us[name][:, step], vs[name][:, step] = u[name], v[name]
                if name in u2s:
                    u2s[name][:, step] = u2[name]
        if progress is not None:
            progress(step + 1, steps)

    def out(x: torch.Tensor) -> Int:
        arr: Int = x.cpu().numpy()
        return arr

    return Trace(
        outputs={k: out(record[src]) for k, src in net.outputs.items()},
        populations={k: out(record[k]) for k in net.populations},
        u={k: out(x) for k, x in us.items()},
        v={k: out(x) for k, x in vs.items()},
        products={k: out(record[k]) for k in net.products},
        u2={k: out(x) for k, x in u2s.items()},
    )
