"""The compiled integer simulator: ``kernels.py``'s update rule in numba, event-driven.

This is the fast path of integer runs; ``run.simulate(..., kernel="numpy")`` runs the readable
NumPy reference, and the tests prove the two equal bit for bit (tests/backends/sim/
test_compiled.py: Hypothesis random nets with wrap, saturation, graded inputs, delays,
multi-level spikes, subtract reset, late and carried resets, ``>=`` thresholds, voltage
read-outs and product units).

**Layout.** One sample's whole run is one int64 array ``rec[time, signal]``: the populations'
neurons first (so neuron ``n`` is signal ``n``), then the product units. The inputs are the
signals after those; they are read where they are, ``xin[time, signal - len(rec)]`` (the
caller's int64 array, or the inputs side by side when there are several), never copied into
the record. A projection with delay ``d`` reads ``rec[t - 1 - d]`` (or ``xin``) directly (the
record is the delay line). Every population signal of every step is written by ``_neurons``,
so the record is allocated without zero-filling; only the product units' columns are zeroed
(a unit writes nothing at step 0 and whole-clip attention nothing before its read-out).
The currents ``u`` (and the input ``a``) of neuron ``n`` are ``u[n]``; when a population has a
second current (docs/SEMANTICS.md §1.3) it is ``u[N + n]`` (``N`` neurons), so a projection
into it is one into destination ``N + dst`` and the projection loops need no special case.

**Projections are event-driven**: for every source whose output at that step is non-zero, its
weight row (all its targets) is added, times the payload, into the projection's accumulator;
the accumulator is floor-shifted by the projection's exponent (docs/SEMANTICS.md §2: the
exponent shifts the *sum*) and added to the destinations' input. Weight rows are stored dense
(``[source, destination]``, contiguous: the addition vectorises) above ``DENSE_ABOVE`` weight
density, else as per-source lists (CSC). The cost is proportional to the activity, so no
per-projection choice of a dense product is needed: at 100 % activity the loop is the dense
matrix-vector product. Weights are int16 when every code fits (the targets' 9-bit codes), and
the accumulator int32 when the largest possible sum fits in 31 bits, else both are int64; at a
step whose active sources bound the sum below 2**15 (a sparse step) dense rows add in int16.

**Neurons** update population by population in loops that vectorise (AVX2, four int64
lanes). AVX2 has no int64 multiply, so the multiply-form decay ``x · code >> bits`` is taken
from the float64 product of ``x`` as int32 (exact: ``|x · code| < 2**31 · 2**22 = 2**53`` for
codes of up to 22 bits; Lava's have 12) wherever every value a loop decays is below 2**31 in
magnitude, which ``_mode`` checks per population and step; elsewhere (wide registers,
wrapped or huge inputs) it is the int64 product. The net's format flags are a tuple
(``Packed.spec``): constants to the compiled loops, where an array could alias every store.

**Batch**: samples run in parallel (``numba.prange``), one sample per thread at a time, on
``numba.get_num_threads()`` threads. Per-net setup (the packed weights) is cached per ``Net``
object (``prepare``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.backends.base import MAX_INPUT_PAYLOAD, Trace, check_range
from snn_deploy.backends.sim.kernels import shift
from snn_deploy.backends.sim.run import chip_order
from snn_deploy.ir.net import Attention, Net, Projection
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

IMMEDIATE, LATE, CARRY = 0, 1, 2
"""``ResetTiming`` codes in ``Packed.pops``."""
TIMING_CODE = {ResetTiming.IMMEDIATE: IMMEDIATE, ResetTiming.LATE: LATE, ResetTiming.CARRY: CARRY}

INTEGER, FLOAT, SHIFT = 0, 1, 2
"""How ``_lost`` computes a decay: the multiply form in int64 or, where every value it decays
fits int32, in float64 (chosen per population and step, ``_neurons``); the shift form."""

DENSE_ABOVE = 1 / 8
"""Weight density above which a projection's rows are stored dense: a contiguous row adds 8 or
more lanes per instruction (AVX2, int32), a scattered entry one."""

CACHE_LINE = 64
"""Bytes; the dense weight rows start on one (``_aligned_copy``)."""

Int = npt.NDArray[np.int64]
Spec = tuple[int, ...]
F = TypeVar("F", bound=Callable[..., Any])


def _jit(fn: F) -> F:
    """``numba.njit`` with the compiled code cached on disk (typed as the Python function)."""
    return cast(F, numba.njit(cache=True)(fn))


def _jit_parallel(fn: F) -> F:
    """``_jit`` whose ``numba.prange`` loops run on ``numba.get_num_threads()`` threads."""
    return cast(F, numba.njit(cache=True, parallel=True)(fn))


# --------------------------------------------------------------------------- scalar kernels
# Each is kernels.py's array function for one value; the comments give the reason of each
# shift, width and bound there. They have no data-dependent branch (both forms are computed
# and one is selected), so that the neuron loops vectorise.


@_jit
def _decay(x: int, code: int, bits: int) -> int:
    """``kernels.decay``: ``x·code / 2**bits`` rounded toward zero (Lava's sign-magnitude
    shift); ``code`` is already ``2**bits - (du + offset)``."""
    p = x * code  # a negative p adds 2**bits - 1 first: its floor shift then rounds up
    return (p + ((p >> 63) & ((1 << bits) - 1))) >> bits


@_jit
def _lost(x: int, code: int, scaled: float, bits: int, mode: int) -> int:
    """``kernels.lost``: what a step's decay removes from ``x``. Multiply form:
    ``x - _decay(x, code, bits)``, or (``FLOAT``, for ``|x| < 2**31`` and ``bits <= 22``) the
    same from the float64 product ``x · scaled`` (``scaled = code / 2**bits``: exact, as
    ``|x · code| < 2**53``, and truncated toward zero as ``_decay`` rounds; AVX2 has no int64
    multiply, so only this form vectorises); shift form (``SHIFT``, ``code`` is the dash):
    ``x >> code``, or ``sign(x)`` where that is 0 and ``x != 0`` (the minimum step of one)."""
    if mode == SHIFT:
        d = x >> code
        return d + ((d == 0) & (x != 0)) * ((x > 0) - (x < 0))
    if mode == FLOAT:
        return x - int(np.int32(np.float64(np.int32(x)) * scaled))
    return x - _decay(x, code, bits)


@_jit
def _within(x: Int, limit: int) -> bool:
    """Every ``|x[i]| < limit`` (min and max: ``abs`` of the smallest int64 would wrap)."""
    lo, hi = 0, 0
    for i in range(x.shape[0]):
        lo, hi = min(lo, x[i]), max(hi, x[i])
    return -limit < lo and hi < limit


@_jit
def _overflow(x: int, wrap: bool, lo: int, hi: int, width: int) -> int:
    """``kernels.overflow``: Lava's wrap-once (one add or subtract of ``2**width`` outside
    ``(-2**(width-1), 2**(width-1)]``), or saturation to ``[lo, hi]``."""
    half, full = 1 << (width - 1), 1 << width
    wrapped = x - full * (x > half) + full * (x <= -half)
    saturated = min(max(x, lo), hi)
    return wrapped if wrap else saturated


@_jit
def _crossed(v: int, th: int, ge: bool) -> int:
    """``kernels.crossed``: 1 where ``v >= th`` (``ge``) or ``v > th``, else 0."""
    return int(v >= th) if ge else int(v > th)


@_jit
def _spike_count(v: int, vth_eff: int, levels: int, ge: bool) -> int:
    """``kernels.spike_count``: ``#{k in 1..levels : v ⋈ k·vth_eff}`` (floor division)."""
    if vth_eff > 0:
        return min(max((v - (0 if ge else 1)) // vth_eff, 0), levels)
    return levels if _crossed(v, 0, ge) else 0


# --------------------------------------------------------------------------- one step


@_jit
def _signals(rec: Int, xin: Int, t: int, start: int, size: int) -> Int:
    """Signals ``start .. start + size - 1`` at step ``t``: from the record, or (``start`` at or
    beyond its width) from the inputs ``xin``."""
    n_rec = rec.shape[1]
    if start >= n_rec:
        return xin[t, start - n_rec : start - n_rec + size]
    return rec[t, start : start + size]


@_jit
def _signal(rec: Int, xin: Int, t: int, i: int) -> int:
    """Signal ``i`` at step ``t`` (``_signals`` of one)."""
    n_rec = rec.shape[1]
    return int(xin[t, i - n_rec] if i >= n_rec else rec[t, i])


@_jit
def _gather(rec: Int, xin: Int, t: int, idx: Int, start: int, ops: Int, size: int) -> None:
    """``ops[e] = signal idx[e]`` at step ``t`` for ``e`` in ``start .. start + size - 1``:
    one operand, whose elements all come from one source (the record or the inputs)."""
    n_rec = rec.shape[1]
    if idx[start] >= n_rec:
        for e in range(start, start + size):
            ops[e] = xin[t, idx[e] - n_rec]
    else:
        for e in range(start, start + size):
            ops[e] = rec[t, idx[e]]


@_jit
def _project(
    rec: Int,
    xin: Int,
    t: int,
    a: Int,
    acc: npt.NDArray[np.integer[Any]],
    acc16: npt.NDArray[np.int16],
    active: Int,
    proj: Int,
    dense: npt.NDArray[np.integer[Any]],
    ptr: Int,
    rows: npt.NDArray[np.int32],
    data: npt.NDArray[np.integer[Any]],
    u: Int,
    spec: Spec,
) -> None:
    """Add every projection's input for step ``t`` into ``a`` (event-driven; see module).

    ``acc``, ``acc16`` and ``active`` are scratch space (the largest destination and source).
    Dense rows add into the int16 ``acc16`` (``vpaddw``, 16 lanes per AVX2 instruction,
    against ``vpmovsxwd`` + ``vpaddd`` on 8) at a step whose events bound every partial sum
    below 2**15, ``Σ|x_j| · max|w| < 2**15`` over the active sources ``j`` (``narrow``: the
    largest such ``Σ|x_j|``), else into ``acc``. With the source-by-source accumulation
    (``spec[10]``) each source's shifted weights go straight into ``u``, saturating
    (``_accumulate``), and ``a`` stays 0.
    """
    seen_src, seen_ts, events = -1, -1, 0
    for p in range(proj.shape[0]):
        src, n_src, dst, n_dst, lag, exp, is_dense, off, narrow = proj[p]
        ts = t - lag  # one step of synaptic delay (inputs: the format's latency) + the delay
        if ts < 0:
            continue
        x = _signals(rec, xin, ts, src, n_src)
        if spec[10] == 1:
            _accumulate(x, u, dst, n_dst, is_dense, off, dense, ptr, rows, data, spec[3],
                        spec[4])  # fmt: skip
            continue
        if src != seen_src or ts != seen_ts:  # projections of one source share its events
            seen_src, seen_ts, events = src, ts, 0  # the sources with a non-zero output
            for j in range(n_src):  # (only their rows add anything), gathered without a
                active[events] = j  # branch: a written j is kept if non-zero
                events += x[j] != 0
        out = a[dst : dst + n_dst]
        if is_dense:
            mass = ones = 0  # Σ|x_j|, each term capped at 2**15 (no overflow; a capped one
            for e in range(events):  # fails), and the binary spikes among them
                mass += min(abs(x[active[e]]), 1 << 15)
                ones += x[active[e]] == 1
            rows_p = dense[off : off + n_src * n_dst]
            if mass <= narrow:  # no partial sum leaves int16 (see above)
                acc16[:n_dst] = 0
                _add_rows(x, active[:events], rows_p, n_dst, acc16, ones)
                _flush(acc16, out, exp)
                continue
            acc[:n_dst] = 0
            _add_rows(x, active[:events], rows_p, n_dst, acc, ones)
            _flush(acc, out, exp)
            continue
        acc[:n_dst] = 0
        for j in active[:events]:
            for k in range(ptr[off + j], ptr[off + j + 1]):
                acc[rows[k]] += data[k] * x[j]
        _flush(acc, out, exp)


@_jit
def _flush(acc: npt.NDArray[np.integer[Any]], out: Int, exp: int) -> None:
    """``out += acc`` shifted by the projection's exponent (``out``'s length of ``acc``): the
    exponent floors the SUM (Lava shifts a_buff, not the weights)."""
    if exp >= 0:
        for i in range(out.shape[0]):
            out[i] += np.int64(acc[i]) << exp  # int64 before << (no int32 overflow)
    else:
        for i in range(out.shape[0]):
            out[i] += np.int64(acc[i]) >> -exp


@_jit
def _add_rows(
    x: Int,
    active: Int,
    rows: npt.NDArray[np.integer[Any]],
    n_dst: int,
    acc: npt.NDArray[np.integer[Any]],
    ones: int,
) -> None:
    """``acc += x[j] · rows[j]`` for every active source ``j`` (``rows`` is ``[src, dst]``,
    flat; ``ones`` of them are binary spikes, ``x[j] == 1``): the binary spikes first (moved to
    the front unless all are), four rows per pass over ``acc`` (a quarter of its loads and
    stores), then the rest times their payload. Integer sums do not depend on the order (no
    partial sum leaves the accumulator: ``simulate``)."""
    if ones < active.shape[0]:
        ones = 0
        for e in range(active.shape[0]):  # the binary spikes to the front
            if x[active[e]] == 1:
                active[ones], active[e] = active[e], active[ones]
                ones += 1
    for e in range(0, ones - ones % 4, 4):
        r0 = rows[active[e] * n_dst : (active[e] + 1) * n_dst]
        r1 = rows[active[e + 1] * n_dst : (active[e + 1] + 1) * n_dst]
        r2 = rows[active[e + 2] * n_dst : (active[e + 2] + 1) * n_dst]
        r3 = rows[active[e + 3] * n_dst : (active[e + 3] + 1) * n_dst]
        for i in range(n_dst):
            acc[i] += (r0[i] + r1[i]) + (r2[i] + r3[i])
    for e in range(ones - ones % 4, active.shape[0]):
        j = active[e]
        row = rows[j * n_dst : (j + 1) * n_dst]
        for i in range(n_dst):
            acc[i] += row[i] * x[j]


@_jit
def _accumulate(
    x: Int,
    u: Int,
    dst: int,
    n_dst: int,
    is_dense: int,
    off: int,
    dense: npt.NDArray[np.integer[Any]],
    ptr: Int,
    rows: npt.NDArray[np.int32],
    data: npt.NDArray[np.integer[Any]],
    lo: int,
    hi: int,
) -> None:
    """``kernels.accumulate``: source by source (index order), ``u = sat(u + x_j·w)`` with
    the weights already shifted (``code << exp``) when packed."""
    for j in range(x.shape[0]):
        if x[j] == 0:
            continue
        if is_dense:
            row = dense[off + j * n_dst : off + (j + 1) * n_dst]
            for i in range(n_dst):
                u[dst + i] = min(max(u[dst + i] + int(row[i]) * x[j], lo), hi)
            continue
        for k in range(ptr[off + j], ptr[off + j + 1]):
            i = dst + rows[k]
            u[i] = min(max(u[i] + int(data[k]) * x[j], lo), hi)


@_jit
def _current(u: int, a: int, code: int, scaled: float, spec: Spec, mode: int) -> int:
    """``kernels.current_step`` of one synaptic current (``code``: its ``cu`` or ``cu2``)."""
    bits, input_shift = spec[0], spec[1]
    u_wrap, u_lo, u_hi, u_width = spec[2] == 1, spec[3], spec[4], spec[5]
    # the input enters u scaled by 2**input_shift (Lava's act_shift = 6)
    if spec[12] == 1:  # add-then-decay (Xylo): the step's input is decayed too
        un = _overflow(u + (a << input_shift), u_wrap, u_lo, u_hi, u_width)
        return un - _lost(un, code, scaled, bits, mode)
    un = u - _lost(u, code, scaled, bits, mode) + (a << input_shift)  # Lava: kept(u) + input
    return _overflow(un, u_wrap, u_lo, u_hi, u_width)


@_jit
def _mode(u: Int, a: Int, spec: Spec) -> int:
    """``_lost``'s mode for a current ``u`` (or a voltage, ``a`` empty) at this step: ``FLOAT``
    where every value it decays is below 2**31 in magnitude and the decay codes have at most
    22 bits (so ``|x · code| < 2**31 · 2**22 = 2**53``). With add-then-decay that is
    ``u + (a << input_shift)`` after its overflow, below 2**31 when both terms are below 2**30
    (saturation never grows a magnitude; wrapping once keeps it below ``2**width``, and a
    register of 32 bits or more does not wrap below 2**31)."""
    if spec[11] == 1:
        return SHIFT
    if spec[0] > 22:
        return INTEGER
    if spec[12] == 1 and a.shape[0] > 0:
        small = _within(u, 1 << 30) and _within(a, 1 << (30 - min(spec[1], 30)))
    else:
        small = _within(u, 1 << 31)
    return FLOAT if small else INTEGER


@_jit
def _neurons(
    rec: Int,
    t: int,
    a: Int,
    w: Int,
    u: Int,
    v: Int,
    pops: Int,
    cu: Int,
    cu2: Int,
    cv: Int,
    scaled: npt.NDArray[np.float64],
    bias: Int,
    vth_eff: Int,
    spec: Spec,
) -> None:
    """``kernels.fixed_step`` for every neuron, writing its output to ``rec[t, n]``; the
    second current of neuron ``n`` (where ``cu2[n] >= 0``) is ``u[N + n]``, ``N`` neurons.

    Population by population in loops (the currents, the summed voltage into the scratch
    ``w``, the spikes and reset), each with its format's and population's choices made
    outside it and over slices indexed from 0, so that each loop vectorises. ``scaled`` is
    ``[cu, cu2, cv] / 2**bits`` as float64 (``_lost``'s ``FLOAT`` mode, chosen per current
    by ``_mode``).
    """
    v_wrap, v_lo, v_hi, v_width = spec[6] == 1, spec[7], spec[8], spec[9]
    bits, each_term = spec[0], spec[13] == 1
    second = cu.shape[0]  # where the second currents start in u and a
    two = cu2.shape[0] > 0  # some population has a second current
    for p in range(pops.shape[0]):
        start, stop, spiking, levels, subtract, timing, ge = pops[p]
        n_pop, pa, pw = stop - start, a[start:stop], w[start:stop]
        pu, pv, pcu, pcv = u[start:stop], v[start:stop], cu[start:stop], cv[start:stop]
        su, sv = scaled[0, start:stop], scaled[2, start:stop]
        pbias, pth, out = bias[start:stop], vth_eff[start:stop], rec[t, start:stop]
        mode = _mode(pu, pa, spec)
        if mode == FLOAT:  # the same loop three times, each with its mode a constant
            for n in range(n_pop):
                pu[n] = _current(pu[n], pa[n], pcu[n], su[n], spec, FLOAT)
        elif mode == SHIFT:
            for n in range(n_pop):
                pu[n] = _current(pu[n], pa[n], pcu[n], su[n], spec, SHIFT)
        else:
            for n in range(n_pop):
                pu[n] = _current(pu[n], pa[n], pcu[n], su[n], spec, INTEGER)
        pw[:] = pu  # what v integrates: u, or the exact sum u + u2
        if two:
            pu2, pa2 = u[second + start : second + stop], a[second + start : second + stop]
            pcu2, su2 = cu2[start:stop], scaled[1, start:stop]
            mode = _mode(pu2, pa2, spec)
            for n in range(n_pop):  # rare: one loop, the mode a variable
                if pcu2[n] >= 0:
                    pu2[n] = _current(pu2[n], pa2[n], pcu2[n], su2[n], spec, mode)
                    pw[n] += pu2[n]
        mode = _mode(pv, pa[:0], spec)
        if each_term:  # Xylo: three saturating additions; -loss in a v-wide register
            for n in range(n_pop):
                loss = _lost(pv[n], pcv[n], sv[n], bits, mode)
                neg = -loss if -loss <= v_hi else -loss - (1 << v_width)
                dvn = _overflow(_overflow(neg + pw[n], False, v_lo, v_hi, v_width) + pbias[n],
                                False, v_lo, v_hi, v_width)  # fmt: skip
                pw[n] = _overflow(pv[n] + dvn, False, v_lo, v_hi, v_width)
        elif mode == FLOAT:  # the new u, as Lava does
            for n in range(n_pop):
                pw[n] = pv[n] - _lost(pv[n], pcv[n], sv[n], bits, FLOAT) + pw[n] + pbias[n]
        else:
            for n in range(n_pop):
                pw[n] = pv[n] - _lost(pv[n], pcv[n], sv[n], bits, mode) + pw[n] + pbias[n]
        if not spiking:  # a non-spiking population outputs its voltage
            for n in range(n_pop):
                pv[n] = _overflow(pw[n], v_wrap, v_lo, v_hi, v_width)
                out[n] = pv[n]
        elif timing != IMMEDIATE:  # binary spikes; the pending bit from the stored v
            for n in range(n_pop):
                th = pth[n]
                r = _crossed(pv[n], th, ge == 1)
                vn = _overflow(pw[n] - subtract * r * th, v_wrap, v_lo, v_hi, v_width)
                if not subtract:  # the late zero reset drops this step's input
                    vn = vn * (1 - r)  # (subtract: inside the saturation)
                s = _crossed(vn, th, ge == 1)
                if timing == CARRY:  # the spike's own reset, less the θ already taken
                    vn = _overflow(vn - (s - r) * th, v_wrap, v_lo, v_hi, v_width)
                pv[n], out[n] = vn, s
        elif levels == 1:  # binary: > as Lava (or >=)
            for n in range(n_pop):
                vn = _overflow(pw[n], v_wrap, v_lo, v_hi, v_width)
                s = _crossed(vn, pth[n], ge == 1)
                pv[n], out[n] = vn - s * pth[n] if subtract else vn * (1 - s), s
        else:  # multi-level: the levels crossed (§1.1)
            for n in range(n_pop):
                vn = _overflow(pw[n], v_wrap, v_lo, v_hi, v_width)
                s = _spike_count(vn, pth[n], levels, ge == 1)
                pv[n], out[n] = vn - s * pth[n] if subtract else vn * (s == 0), s


@_jit
def _gates(rec: Int, xin: Int, t: int, gates: Int) -> None:
    """``kernels.gate`` for every element of every Gate: ``sat((a·g) >> shift)``."""
    for e in range(gates.shape[0]):
        out, pa, pg, sh, lo, hi = gates[e]
        y = (_signal(rec, xin, t - 1, pa) * _signal(rec, xin, t - 1, pg)) >> sh  # exact, floored
        rec[t, out] = min(max(y, lo), hi)  # product registers saturate, never wrap


@_jit
def _attention(
    rec: Int, xin: Int, t: int, s: Int, att: Int, idx: Int, decays: Int, ops: Int
) -> None:
    """``kernels.attention_update`` and ``attention_read`` for every Attention unit.

    At step ``t`` the unit reads input step ``n = t - 1``; whole-clip units accumulate for
    ``n < steps`` and then read the kept ``q`` of input step ``n - steps``, i.e. the record at
    ``t - 1 - steps`` (output 0 otherwise: ``rec`` starts at 0). The operands are first
    gathered into the scratch ``ops`` (laid out as ``idx``), so the loops over ``S`` read a
    contiguous array.
    """
    n = t - 1
    for w in range(att.shape[0]):
        out, heads, d, q, k, v, s_off, dec, causal, steps, s_lo, s_hi, a_lo, a_hi = att[w]
        size = heads * d
        if causal or n < steps:
            _gather(rec, xin, n, idx, k, ops, size)
            _gather(rec, xin, n, idx, v, ops, size)
            for h in range(heads):
                sh = decays[dec + h]
                for i in range(d):
                    kv = ops[k + h * d + i]
                    for j in range(d):
                        c = s_off + (h * d + i) * d + j
                        x = s[c]
                        if sh > 0:  # γ = 1 - 2**-sh, the lost part rounded toward zero
                            x -= x >> sh if x >= 0 else -((-x) >> sh)
                        x += kv * ops[v + h * d + j]
                        s[c] = min(max(x, s_lo), s_hi)  # S saturates, never wraps
        if not causal and (n < steps or n >= 2 * steps):
            continue
        tq = n if causal else n - steps
        _gather(rec, xin, tq, idx, q, ops, size)
        for h in range(heads):
            for j in range(d):
                y = 0
                for i in range(d):
                    y += ops[q + h * d + i] * s[s_off + (h * d + i) * d + j]
                rec[t, out + h * d + j] = min(max(y, a_lo), a_hi)  # A saturates


@_jit_parallel
def _run(
    rec: Int,
    xin: Int,
    record_u: Int,
    record_v: Int,
    u: Int,
    v: Int,
    s: Int,
    acc: npt.NDArray[np.integer[Any]],
    acc16: npt.NDArray[np.int16],
    active: Int,
    t0: int,
    t1: int,
    pops: Int,
    cu: Int,
    cu2: Int,
    cv: Int,
    scaled: npt.NDArray[np.float64],
    bias: Int,
    vth_eff: Int,
    spec: Spec,
    proj: Int,
    dense: npt.NDArray[np.integer[Any]],
    ptr: Int,
    rows: npt.NDArray[np.int32],
    data: npt.NDArray[np.integer[Any]],
    gates: Int,
    att: Int,
    att_idx: Int,
    att_decay: Int,
) -> None:
    """Steps ``t0 .. t1 - 1`` of every sample, in parallel over samples (``rec[b]``)."""
    n_neurons = u.shape[1]
    for b in numba.prange(rec.shape[0]):
        a = np.zeros(n_neurons, np.int64)
        w = np.zeros(n_neurons, np.int64)  # _neurons' scratch
        ops = np.empty(att_idx.shape[0], np.int64)  # _attention's
        for t in range(t0, t1):
            a[:] = 0
            _project(rec[b], xin[b], t, a, acc[b], acc16[b], active[b], proj, dense, ptr, rows,
                     data, u[b], spec)  # fmt: skip
            if t > 0:  # a product unit reads the previous step: nothing at step 0
                _gates(rec[b], xin[b], t, gates)
                _attention(rec[b], xin[b], t, s[b], att, att_idx, att_decay, ops)
            _neurons(rec[b], t, a, w, u[b], v[b], pops, cu, cu2, cv, scaled, bias, vth_eff, spec)
            if record_u.shape[1] > 0:
                record_u[b, t] = u[b]
                record_v[b, t] = v[b]


# --------------------------------------------------------------------------- packing


@dataclass(frozen=True, slots=True, kw_only=True)
class Packed:
    """A quantized net as the arrays ``_run`` takes (built once per net, ``prepare``).

    Attributes:
        signals: name -> (first signal, size) for populations, product units and inputs.
        neurons: number of population neurons (signals ``0 .. neurons - 1``).
        width: signals in the record, the neurons and the product units (the inputs follow).
        scratch: the largest source and the largest destination of any projection (the sizes
            of ``_run``'s ``active`` and ``acc``).
        pops: per population ``(start, stop, spiking, levels, subtract, timing, ge)`` (timing:
            ``IMMEDIATE``, ``LATE``, ``CARRY``; ge: 1 for ``v >= θ``).
        cu, cv: per neuron ``2**decay.width - (du + offset)`` and the same for ``dv``
            (multiply form); the dash ``du + offset`` (shift form).
        cu2: per neuron the same for ``du2``, -1 for a neuron with one current; empty when no
            population has a second current (then ``u`` holds no second currents).
        scaled: ``[cu, cu2, cv] / 2**decay.width`` per neuron, float64 (``_lost``'s ``FLOAT``
            mode; a row of zeros for an empty ``cu2``).
        bias: per neuron ``bias_mant << bias_exp``.
        vth_eff: per neuron ``vth << threshold_shift`` (0 for a non-spiking one).
        spec: ``(decay bits, input_shift, u wrap, u min, u max, u width, v wrap, v min,
            v max, v width, source-by-source accumulation, shift decay, add-then-decay,
            saturate-each-term)``, the last four 0/1.
        proj: per projection ``(src signal, src size, dst neuron, dst size, lag, exp, dense,
            offset, narrow)``, in the order the accumulation adds them (``run.chip_order``);
            the lag is ``Net.lag``, the offset points into ``dense`` or ``ptr``, ``narrow`` is
            ``(2**15 - 1) // max|code|``, the largest ``Σ|x_j|`` of a step whose sums fit
            int16 (``_project``). With the
            source-by-source accumulation the packed weights are already shifted.
        dense, ptr, rows, data: dense rows ``[src, dst]`` of every dense projection, and the
            per-source lists (CSC) of the others.
        row_sum: per projection, its source and the largest ``Σ_j |codes[i, j]|`` (for the
            accumulator width).
        gates: per Gate element ``(out, a, g, shift, min, max)`` (signal numbers).
        att, att_idx, att_decay: per Attention unit ``(out, heads, d, q, k, v, state offset,
            decay offset, causal, steps, S min, S max, A min, A max)``, the operand signals
            (``q``, ``k``, ``v`` offsets into ``att_idx``) and the per-head decay shifts.
        state: elements of every Attention state ``S`` together.
    """

    signals: dict[str, tuple[int, int]]
    neurons: int
    width: int
    scratch: tuple[int, int]
    pops: Int
    cu: Int
    cu2: Int
    cv: Int
    scaled: npt.NDArray[np.float64]
    bias: Int
    vth_eff: Int
    spec: Spec
    proj: Int
    dense: npt.NDArray[np.integer[Any]]
    ptr: Int
    rows: npt.NDArray[np.int32]
    data: npt.NDArray[np.integer[Any]]
    row_sum: list[tuple[str, int]]
    gates: Int
    att: Int
    att_idx: Int
    att_decay: Int
    state: int


_CACHE: weakref.WeakKeyDictionary[Net, Packed] = weakref.WeakKeyDictionary()


def prepare(net: Net) -> Packed:
    """The packed arrays of a quantized ``net``, built on its first run and then cached for as
    long as the ``Net`` object lives (nets are frozen values)."""
    packed = _CACHE.get(net)
    if packed is None:
        packed = _pack(net)
        _CACHE[net] = packed
    return packed


def _register(reg: FixedPoint) -> list[int]:
    return [int(reg.overflow is Overflow.WRAP_ONCE), reg.min, reg.max, reg.width]


def _pack(net: Net) -> Packed:
    spec = net.numeric
    assert spec is not None
    signals: dict[str, tuple[int, int]] = {}
    end = 0
    for name in [*net.populations, *net.products, *net.inputs]:
        signals[name] = (end, net.size_of(name))
        end += signals[name][1]
    width = end - sum(net.size_of(k) for k in net.inputs)
    pops, cu, cu2, cv, bias, vth = [], [], [], [], [], []
    unity = 1 << spec.decay.width
    shift_form = spec.decay_form is DecayForm.SHIFT
    each = spec.accumulation is Accumulation.SATURATE_EACH_SOURCE
    for name, pop in net.populations.items():
        f = pop.fixed
        assert f is not None
        start, size = signals[name]
        subtract = pop.reset is ResetMode.SUBTRACT
        ge = pop.threshold_compare is ThresholdCompare.GE
        timing = TIMING_CODE[pop.reset_timing]
        pops.append([start, start + size, int(pop.spiking), pop.levels, int(subtract), timing, ge])
        du = np.broadcast_to(f.du, size) + spec.current_decay_offset
        dv = np.broadcast_to(f.dv, size) + spec.voltage_decay_offset
        cu.append(du if shift_form else unity - du)
        cv.append(dv if shift_form else unity - dv)
        du2 = np.broadcast_to(0 if f.du2 is None else f.du2, size) + spec.current_decay_offset
        cu2.append(np.full(size, -1) if f.du2 is None else du2 if shift_form else unity - du2)
        bias.append(np.broadcast_to(shift(f.bias_mant, f.bias_exp), size))
        th = np.zeros(size, np.int64) if f.vth is None else f.vth << spec.threshold_shift
        vth.append(np.broadcast_to(th, size))
    order = chip_order(net) if each else list(range(len(net.projections)))
    projections = [net.projections[i] for i in order]
    n_neurons = sum(p.size for p in net.populations.values())
    codes = [_codes(p, each) for p in projections]
    small = all(np.abs(c.data).max(initial=0) < 2**15 for c in codes)
    wtype = np.int16 if small else np.int64  # the targets' 9-bit codes fit int16
    proj, dense, ptr, rows, data = [], [], [], [], []
    n_dense = n_sparse = n_ptr = 0
    for p, c in zip(projections, codes, strict=True):
        n_dst, n_src = c.shape
        is_dense = c.nnz > DENSE_ABOVE * n_dst * n_src
        if is_dense:
            dense.append(c.toarray().T.astype(wtype).ravel())
            off, n_dense = n_dense, n_dense + n_dst * n_src
        else:
            csc = sp.csc_matrix(c)
            ptr.append(csc.indptr[:-1].astype(np.int64) + n_sparse)
            rows.append(csc.indices.astype(np.int32))  # into the projection's accumulator
            data.append(csc.data.astype(wtype))
            off, n_ptr, n_sparse = n_ptr, n_ptr + n_src, n_sparse + csc.nnz
        src, dst = signals[p.src][0], signals[p.dst][0]
        dst += p.synapse * n_neurons  # the second currents follow the first in u and a
        assert p.fixed is not None
        top = int(np.abs(c.data).max(initial=0))
        narrow = (2**15 - 1) // max(top, 1)  # int16 sums: Σ|x_j| up to this (_project)
        row = [src, n_src, dst, n_dst, net.lag(p), p.fixed.exp, int(is_dense), off, narrow]
        proj.append(row)
    ptr.append(np.array([n_sparse]))  # closes the last source's list
    gates, att, att_idx, att_decay = _pack_products(net, signals)
    cu_all, cv_all = _cat(cu, np.int64), _cat(cv, np.int64)
    two = any(p.currents == 2 for p in net.populations.values())
    cu2_all = _cat(cu2, np.int64) if two else np.zeros(0, np.int64)
    scaled = np.stack([cu_all, cu2_all if two else 0 * cu_all, cv_all]) / unity
    return Packed(
        signals=signals,
        neurons=n_neurons,
        width=width,
        scratch=(max((r[1] for r in proj), default=0), max((r[3] for r in proj), default=0)),
        pops=np.array(pops, np.int64).reshape(-1, 7),
        cu=cu_all,
        cu2=cu2_all,
        cv=cv_all,
        scaled=scaled,  # float64: the division
        bias=_cat(bias, np.int64),
        vth_eff=_cat(vth, np.int64),
        spec=tuple(
            int(value)  # a tuple: constants in registers, not an array every store may alias
            for value in [
                spec.decay.width,
                spec.input_shift,
                *_register(spec.current),
                *_register(spec.voltage),
                int(each),
                int(shift_form),
                int(spec.current_update is CurrentUpdate.ADD_THEN_DECAY),
                int(spec.voltage_update is VoltageUpdate.SATURATE_EACH_TERM),
            ]
        ),
        proj=np.array(proj, np.int64).reshape(-1, 9),
        dense=_aligned_copy(_cat(dense, wtype)),
        ptr=_cat(ptr, np.int64),
        rows=_cat(rows, np.int32),
        data=_cat(data, wtype),
        row_sum=[
            (p.src, int(np.asarray(abs(c).sum(axis=1)).max(initial=0)))
            for p, c in zip(projections, codes, strict=True)
        ],
        gates=gates,
        att=att,
        att_idx=att_idx,
        att_decay=att_decay,
        state=sum(u.size * u.size // u.heads for u in _attentions(net)),
    )


def _codes(p: Projection, each: bool) -> sp.csr_matrix:
    """A projection's codes as packed: shifted by its exponent for the source-by-source
    accumulation (``run._shifted``), else as they are (the exponent shifts the sum)."""
    assert p.fixed is not None
    if not each:
        return p.fixed.codes
    out = p.fixed.codes.copy()
    out.data = shift(out.data.astype(np.int64), p.fixed.exp)
    return out


def _aligned_copy(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A C-contiguous copy of ``a`` whose first element starts a 64-byte cache line. NumPy's
    large arrays start 16 bytes into one (the page, then malloc's 16-byte header); dense
    weight rows there took 4 % longer (700-256r-20, one sample: 3.83-3.84 against 3.67-3.70 µs
    per sample-step, two runs). Aligning the accumulators as well was slower (3.98-4.00)."""
    buf = np.empty(a.nbytes + CACHE_LINE, np.uint8)
    start = -buf.ctypes.data % CACHE_LINE
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _cat(parts: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _attentions(net: Net) -> list[Attention]:
    return [u for u in net.products.values() if isinstance(u, Attention)]


def _pack_products(net: Net, signals: dict[str, tuple[int, int]]) -> tuple[Int, Int, Int, Int]:
    """The Gate elements and the Attention units as ``_gates`` and ``_attention`` take them."""
    gates: list[list[int]] = []
    att: list[list[int]] = []
    idx: list[int] = []
    decays: list[int] = []
    n_idx = state = 0
    for name, unit in net.products.items():
        f = unit.fixed
        assert f is not None
        out = signals[name][0]
        pos = [signals[op.src][0] + op.index for op in unit.operands]  # operand signals
        if not isinstance(unit, Attention):
            for e in range(unit.size):
                gates.append([out + e, pos[0][e], pos[1][e], f.shift, f.output.min, f.output.max])
            continue
        assert f.state is not None
        d = unit.size // unit.heads
        q, k, v = n_idx, n_idx + unit.size, n_idx + 2 * unit.size
        registers = [f.state.min, f.state.max, f.output.min, f.output.max]
        meta = [out, unit.heads, d, q, k, v, state, len(decays), int(unit.causal), unit.steps]
        att.append([*meta, *registers])
        idx += [*pos[0], *pos[1], *pos[2]]
        decays += unit.decay
        n_idx += 3 * unit.size
        state += unit.heads * d * d
    return (
        np.array(gates, np.int64).reshape(-1, 6),
        np.array(att, np.int64).reshape(-1, 14),
        np.array(idx, np.int64),
        np.array(decays, np.int64),
    )


@_jit
def _range(x: Int) -> tuple[int, int]:
    """The smallest and the largest value of ``x`` (flat), in one pass."""
    lo, hi = 0, 0
    for i in range(x.shape[0]):
        lo, hi = min(lo, x[i]), max(hi, x[i])
    return lo, hi


def _inputs(net: Net, data: dict[str, Int]) -> tuple[Int, dict[str, int]]:
    """The inputs as one int64 array ``[batch, time, signal]`` (the given array itself when
    there is one and it is C-contiguous), and each input's largest ``|x|``.

    Raises:
        InputFileError: a value beyond ``MAX_INPUT_PAYLOAD`` (``check_inputs`` leaves that check
            of int64 arrays to this pass; the message is ``check_inputs``'s).
    """
    peak = {}
    for name, x in data.items():
        lo, hi = _range(x.reshape(-1))  # a view: check_inputs' arrays are reshaped, not copied
        if max(hi, -lo) > MAX_INPUT_PAYLOAD:  # Python ints: -(-2**63) does not wrap
            check_range(name, x)
        peak[name] = max(hi, -lo)
    xs = [data[k] for k in net.inputs]
    xin = xs[0] if len(xs) == 1 else np.concatenate(xs, axis=2)
    return np.ascontiguousarray(xin), peak


def _peak(net: Net, inputs: dict[str, int]) -> dict[str, int]:
    """The largest |output| of every source: the inputs' own (``inputs``), a spiking
    population's top level, ``2**(width - 1)`` for a voltage or a product unit (their
    registers' bound)."""
    assert net.numeric is not None
    peak = dict(inputs)
    for name, pop in net.populations.items():
        peak[name] = pop.levels if pop.spiking else 1 << (net.numeric.voltage.width - 1)
    for name, unit in net.products.items():
        assert unit.fixed is not None
        peak[name] = 1 << (unit.fixed.output.width - 1)
    return peak


def simulate(
    net: Net,
    data: dict[str, Int],
    *,
    record_state: bool,
    progress: Callable[[int, int], None] | None,
) -> Trace:
    """Run the quantized ``net`` on int64 ``data`` (``[batch, time, size]`` per input).

    Without ``progress`` the whole run is one call of the compiled loop; with it, one call per
    chunk of steps (the state carries over) and ``progress(steps_done, steps)`` after each.
    """
    packed = prepare(net)
    batch, steps = next(iter(data.values())).shape[:2]
    xin, inputs = _inputs(net, data)
    peak = _peak(net, inputs)
    rec = np.empty((batch, steps, packed.width), np.int64)  # every neuron's every step is written
    rec[:, :, packed.neurons :] = 0  # product units: not every step (see module)
    # the accumulator is int32 where no partial sum of any projection can leave 31 bits
    bound = max((s * peak[src] for src, s in packed.row_sum), default=0)
    wide = bound >= 2**31 or packed.dense.dtype == np.int64
    acc: npt.NDArray[np.integer[Any]] = np.empty(
        (batch, packed.scratch[1]), np.int64 if wide else np.int32
    )  # zeroed per projection
    acc16 = np.empty((batch, packed.scratch[1]), np.int16)
    active = np.empty((batch, packed.scratch[0]), np.int64)  # written before read
    n = packed.neurons
    width = n + len(packed.cu2)  # the first currents, then the second ones (if any)
    u, v = np.zeros((batch, width), np.int64), np.zeros((batch, n), np.int64)
    record_u = np.empty((batch, steps if record_state else 0, width), np.int64)  # every step
    record_v = np.empty((batch, steps if record_state else 0, n), np.int64)  # written whole
    s = np.zeros((batch, packed.state), np.int64)
    chunk = steps if progress is None else max(1, steps // 100)
    for t0 in range(0, steps, chunk):
        t1 = min(steps, t0 + chunk)
        _run(
            rec, xin, record_u, record_v, u, v, s, acc, acc16, active, t0, t1,
            packed.pops, packed.cu, packed.cu2, packed.cv, packed.scaled, packed.bias,
            packed.vth_eff, packed.spec,
            packed.proj, packed.dense, packed.ptr, packed.rows, packed.data,
            packed.gates, packed.att, packed.att_idx, packed.att_decay,
        )  # fmt: skip
        if progress is not None:
            progress(t1, steps)

    def part(name: str, arr: Int, offset: int = 0) -> Int:
        start, size = packed.signals[name]
        return arr[:, :, offset + start : offset + start + size]

    def output(src: str) -> Int:  # an input read out is copied, not the caller's array
        return data[src].copy() if src in net.inputs else part(src, rec)

    pops = {k: part(k, rec) for k in net.populations}
    return Trace(
        outputs={out: output(src) for out, src in net.outputs.items()},
        populations=pops,
        u={k: part(k, record_u) for k in net.populations} if record_state else {},
        v={k: part(k, record_v) for k in net.populations} if record_state else {},
        products={k: part(k, rec) for k in net.products},
        u2={k: part(k, record_u, n) for k, p in net.populations.items() if p.currents == 2}
        if record_state
        else {},
    )
