"""The batched torch kernel: ``run.py``'s integer loop on torch tensors, on CUDA when torch
sees a GPU, else on the CPU; bit-exact (tests/backends/sim/test_torch_kernel.py proves it
equal to the NumPy reference on the compiled kernel's Hypothesis nets).

It covers populations and projections with everything the numeric formats have (wrap and
saturation, decay forms, current and voltage updates, source-by-source accumulation, input
latency and cap), delays, multi-level spikes, zero and subtract reset, late and carried
resets, ``>=`` thresholds and voltage read-outs; not product units (attention, gate), which
raise ``UnsupportedOpError``.

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
from snn_deploy.ir.net import Net, NumericSpec, Population, Projection
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


def _step(
    u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: _Pop, spec: NumericSpec
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``kernels.fixed_step`` of one population: new ``u``, ``v`` and the output."""
    bits, a = spec.decay.width, a << spec.input_shift
    if spec.current_update is CurrentUpdate.DECAY_THEN_ADD:
        u = _overflow(u - _lost(u, p.du, spec, bits) + a, spec.current)
    else:
        u = _overflow(u + a, spec.current)
        u = u - _lost(u, p.du, spec, bits)
    summed = _voltage(v, u, p, spec)
    if p.vth is None:  # a non-spiking population outputs its voltage
        v = _overflow(summed, spec.voltage)
        return u, v, v
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
        return u, v, spikes
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
    return u, v, count


# --------------------------------------------------------------------------- per-net tensors


@dataclass(frozen=True, slots=True)
class _Pop:
    """A population's per-neuron codes: the decay codes as ``_lost`` takes them, the bias
    ``bias_mant << bias_exp``, the threshold ``vth << threshold_shift`` (None: non-spiking)."""

    pop: Population
    du: torch.Tensor
    dv: torch.Tensor
    bias: torch.Tensor
    vth: torch.Tensor | None


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
        UnsupportedOpError: the net has product units, or (CUDA) a projection's sums need
            int64 products.
    """
    if net.products:
        raise UnsupportedOpError(
            f"the torch kernel has no product units (attention, gate): {sorted(net.products)}; "
            "it runs populations and projections; use kernel='numba' or 'numpy'"
        )
    spec, dev = net.numeric, device()
    assert spec is not None
    prepared = _prepare(net, dev)
    batch, steps = next(iter(data.values())).shape[:2]
    record = {k: torch.as_tensor(x, device=dev) for k, x in data.items()}
    peak = {k: int(np.abs(x).max()) for k, x in data.items()}
    for name, pop in net.populations.items():
        record[name] = torch.zeros((batch, steps, pop.size), dtype=torch.int64, device=dev)
        peak[name] = pop.levels if pop.spiking else 1 << (spec.voltage.width - 1)
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
    us = {k: torch.zeros_like(x) for k, x in record.items() if k in u} if record_state else {}
    vs = {k: torch.zeros_like(x) for k, x in us.items()}
    for step in range(steps):
        a = {k: torch.zeros_like(x) for k, x in u.items()}
        for i in prepared.order:
            proj = net.projections[i]
            src_t = step - net.lag(proj)
            if src_t < 0:
                continue
            x = record[proj.src][:, src_t]
            if prepared.each:  # kernels.accumulate: source by source, saturating
                w = prepared.weights[i]
                for j in torch.nonzero(x.any(dim=0)).flatten().tolist():
                    u[proj.dst] = (u[proj.dst] + x[:, j, None] * w[j]).clamp(
                        spec.current.min, spec.current.max
                    )
                continue
            acc = (x.to(matrices[i].dtype) @ matrices[i]).long()  # exact: see module
            assert proj.fixed is not None
            a[proj.dst] += _shift(acc, proj.fixed.exp)
        for name, p in prepared.pops.items():
            u[name], v[name], record[name][:, step] = _step(u[name], v[name], a[name], p, spec)
            if record_state:
                us[name][:, step], vs[name][:, step] = u[name], v[name]
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
        products={},
    )
