"""The bit-accurate neuron and synapse kernels: the specification every backend must match.

Integer kernels follow Lava 0.10.0's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` exactly
(docs/SEMANTICS.md §2); multi-level spikes (``levels > 1``, §1.1) extend that neuron, and the
Lava backend runs them with its own process model (``backends/lava/multilevel.py``). All state
is int64 holding the values of narrower registers; the register widths come from
``NumericSpec``. Float kernels run the same discrete-time equations without rounding: they are
the float reference the quantized network is compared against. The product kernels
(``attention_update``, ``attention_read``, ``gate``; docs/SEMANTICS.md §4) take either.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import (
    CurrentUpdate,
    DecayForm,
    FixedPoint,
    Overflow,
    ResetTiming,
    VoltageUpdate,
)

Int = npt.NDArray[np.int64]
Float = npt.NDArray[np.float64]
Array = npt.NDArray[Any]
"""An integer or a float array: the product kernels run both."""


def shift(x: Int, exp: int | Int) -> Int:
    """``x * 2**exp`` as a left shift, or a floor (arithmetic) right shift when ``exp < 0``.

    Examples:
        >>> shift(np.array([5, -5]), -1)
        array([ 2, -3])
        >>> shift(np.array([5, -5]), 2)
        array([ 20, -20])
    """
    if np.ndim(exp) == 0:  # one exponent (a projection's): no per-element select
        e = int(exp)
        return x << e if e >= 0 else x >> -e
    exp = np.asarray(exp)
    return np.where(exp >= 0, x << np.maximum(exp, 0), x >> np.maximum(-exp, 0))


def decay(x: Int, code: Int, bits: int) -> Int:
    """``x * (2**bits - code) / 2**bits`` rounded toward zero (sign-magnitude shift).

    Lava computes ``sign(p) * (|p| >> bits)``; a plain ``>>`` would round toward minus infinity.

    Examples:
        >>> decay(np.array([7, -7]), np.array(2048), 12)
        array([ 3, -3])
    """
    p = x * ((1 << bits) - code)
    out: Int = np.sign(p) * (np.abs(p) >> bits)
    return out


def shift_lost(x: Int, dash: Int) -> Int:
    """The part of ``x`` a bit-shift ("dash") decay removes: ``x >> dash`` (floor), or
    ``sign(x)`` where that is 0 and ``x != 0`` (Xylo's minimum decay step of one).

    Examples:
        >>> shift_lost(np.array([7, -7, 1, -1, 0, 16]), np.array(2))
        array([ 1, -2,  1, -1,  0,  4])
    """
    d = x >> dash
    out: Int = np.where((d == 0) & (x != 0), np.sign(x), d)
    return out


def lost(x: Int, code: Int, spec: NumericSpec, offset: int) -> Int:
    """What one step's decay removes from ``x`` (``code + offset``: the population's decay
    code and the format's offset), in the format's ``decay_form``: ``x - decay(...)``
    (MULTIPLY, Lava) or ``shift_lost`` (SHIFT, Xylo)."""
    if spec.decay_form is DecayForm.SHIFT:
        return shift_lost(x, code + offset)
    return x - decay(x, code + offset, spec.decay.width)


def accumulate(u: Int, x: Int, weights: Int, reg: FixedPoint) -> Int:
    """Add one projection's input into ``u`` source by source, saturating after each (the
    ``SATURATE_EACH_SOURCE`` accumulation): ``u = sat(u + x_j · weights[:, j])`` for
    ``j = 0, 1, ...``. ``u`` is ``[batch, dst]``, ``x`` ``[batch, src]``, ``weights`` the
    shifted weights ``[dst, src]``. A silent source adds 0, which changes nothing.

    Examples:
        >>> reg = FixedPoint(width=8, signed=True)
        >>> accumulate(np.array([[100]]), np.array([[1, 1]]), np.array([[100, -100]]), reg)
        array([[27]])
    """
    for j in np.flatnonzero(np.any(x != 0, axis=0)):
        u = np.clip(u + x[:, j, None] * weights[None, :, j], reg.min, reg.max)
    return u


def overflow(x: Int, reg: FixedPoint) -> Int:
    """Apply a register's overflow rule (docs/SEMANTICS.md §2.3).

    Examples:
        >>> from snn_deploy.ir.types import FixedPoint, Overflow, ResetTiming
        >>> u = FixedPoint(width=24, signed=True, overflow=Overflow.WRAP_ONCE)
        >>> overflow(np.array([2**23, 2**23 + 5, -2**23]), u)
        array([ 8388608, -8388603,  8388608])
    """
    if reg.overflow is Overflow.SATURATE:
        return np.clip(x, reg.min, reg.max)
    half, full = 1 << (reg.width - 1), 1 << reg.width
    return np.where(x > half, x - full, np.where(x <= -half, x + full, x))


def crossed(v: Array, threshold: Array, ge: bool) -> Array:
    """The threshold test: ``v >= threshold`` when ``ge``, else ``v > threshold`` (Lava's).

    Examples:
        >>> crossed(np.array([63, 64, 65]), np.array(64), False)
        array([False, False,  True])
        >>> crossed(np.array([63, 64, 65]), np.array(64), True)
        array([False,  True,  True])
    """
    out: Array = v >= threshold if ge else v > threshold
    return out


def spike_count(v: Int, vth_eff: Int, levels: int, ge: bool = False) -> Int:
    """The multi-level spike ``#{k in 1..levels : v ⋈ k * vth_eff}`` of integer voltages.

    ``v > k * t`` is ``k <= (v - 1) // t`` and ``v >= k * t`` is ``k <= v // t`` for ``t > 0``
    (exact integer division), so the count is ``clip((v - 1) // t, 0, levels)`` (``>``) or
    ``clip(v // t, 0, levels)`` (``>=``); a threshold of 0 is crossed at every level by any
    ``v > 0`` (``>``) or ``v >= 0`` (``>=``).

    Examples:
        >>> spike_count(np.array([-5, 0, 1, 100, 101, 200, 201, 301, 1000]), np.array(100), 3)
        array([0, 0, 0, 0, 1, 1, 2, 3, 3])
        >>> spike_count(np.array([-5, 0, 99, 100, 199, 200, 300]), np.array(100), 3, ge=True)
        array([0, 0, 0, 1, 1, 2, 3])
        >>> spike_count(np.array([0, 1]), np.array(0), 3)
        array([0, 3])
    """
    tie = 0 if ge else 1  # v >= k·t is v - 0 >= k·t; v > k·t is v - 1 >= k·t on integers
    count: Int = np.where(
        vth_eff > 0,
        np.clip((v - tie) // np.maximum(vth_eff, 1), 0, levels),
        np.where(crossed(v, np.zeros_like(v), ge), levels, 0),
    )
    return count


def fixed_step(
    u: Int,
    v: Int,
    a: Int,
    *,
    du: Int,
    dv: Int,
    bias: Int,
    vth: Int | None,
    subtract: bool,
    spec: NumericSpec,
    levels: int = 1,
    timing: ResetTiming = ResetTiming.IMMEDIATE,
    ge: bool = False,
    u2: Int | None = None,
) -> tuple[Int, Int, Int]:
    """One integer time step of a population; returns new ``u``, ``v`` and the output.

    ``a`` is the summed (already exponent-shifted) synaptic input (0 when the format
    accumulates source by source into ``u``, which ``u`` then already holds: ``accumulate``).
    The current takes it before or after its decay (``spec.current_update``); the voltage
    takes its decay, the new ``u`` and the bias with one overflow or three saturations
    (``spec.voltage_update``); a population with a second current passes ``u2``, already
    updated this step (``current_step``), and the voltage takes ``u + u2`` (one exact sum,
    as xylosim adds its ``i_syn``s, docs/SEMANTICS.md §1.3). The output of a spiking
    population is its spikes: 0/1 when ``levels`` is 1, else the spike count
    ``s = #{k in 1..levels : v ⋈ k * (vth << threshold_shift)}`` (``⋈`` is ``>=`` when ``ge``,
    else ``>``); zero reset sets ``v = 0`` where ``s > 0``, subtract reset removes
    ``s * (vth << threshold_shift)``, at the time ``timing`` says (docs/SEMANTICS.md §1.2). A
    non-spiking population outputs ``v``.
    """
    u = current_step(u, a, du, spec)
    summed = _voltage(v, u if u2 is None else u + u2, dv, bias, spec)
    if vth is None:
        v = overflow(summed, spec.voltage)
        return u, v, v
    vth_eff = vth << spec.threshold_shift
    if timing is not ResetTiming.IMMEDIATE:
        return _fixed_delayed(u, v, summed, vth_eff, subtract, spec, timing, ge)
    v = overflow(summed, spec.voltage)
    if levels > 1:
        count = spike_count(v, vth_eff, levels, ge)
        v = v - count * vth_eff if subtract else np.where(count > 0, 0, v)
        return u, v, count
    spikes = crossed(v, vth_eff, ge)
    v[spikes] = (v - vth_eff)[spikes] if subtract else 0  # v is this step's own array
    return u, v, spikes.astype(np.int64)


def current_step(u: Int, a: Int, du: Int, spec: NumericSpec) -> Int:
    """One step of a synaptic current: ``u`` takes the input ``a`` (scaled by ``input_shift``)
    before or after its decay (``spec.current_update``), within the current's register.

    Examples:
        >>> from snn_deploy.target.load import load_target
        >>> xylo = load_target("xylo-audio2").numeric
        >>> current_step(np.array([0, 32767]), np.array([8, 8]), np.array(2), xylo)
        array([    6, 24576])
    """
    a = a << spec.input_shift  # Lava's act_shift = 6; Xylo: 0
    if spec.current_update is CurrentUpdate.DECAY_THEN_ADD:
        return overflow(u - lost(u, du, spec, spec.current_decay_offset) + a, spec.current)
    # decay the input of this step too; kept(x) never leaves the register
    u = overflow(u + a, spec.current)
    out: Int = u - lost(u, du, spec, spec.current_decay_offset)
    return out


def _voltage(v: Int, u: Int, dv: Int, bias: Int, spec: NumericSpec) -> Int:
    """The voltage before its overflow rule and the spike test: ``kept(v) + u + bias``
    (SUM), or Xylo's three saturating additions (SATURATE_EACH_TERM, already in range)."""
    loss = lost(v, dv, spec, spec.voltage_decay_offset)
    if spec.voltage_update is VoltageUpdate.SUM:
        out: Int = v - loss + u + bias
        return out
    # -lost is held in a register of the voltage's width: the one value out of range,
    # -(-2**(w-1)) (dash 0 of the most negative v), wraps to itself (Xylo: int16 negation)
    neg = -loss
    neg = np.where(neg > spec.voltage.max, neg - (1 << spec.voltage.width), neg)
    step = overflow(overflow(neg + u, spec.voltage) + bias, spec.voltage)
    return overflow(v + step, spec.voltage)


def _fixed_delayed(
    u: Int,
    v_prev: Int,
    v: Int,
    vth_eff: Int,
    subtract: bool,
    spec: NumericSpec,
    timing: ResetTiming,
    ge: bool,
) -> tuple[Int, Int, Int]:
    """``fixed_step`` of a late or carried reset (binary spikes), from the decayed and summed
    voltage ``v`` (before saturation) and the stored ``v_prev``."""
    pending = crossed(v_prev, vth_eff, ge).astype(np.int64)  # the pending bit r
    if subtract:  # inside the saturation: v = sat(decay(v) + u + b - r·θ)
        v = overflow(v - pending * vth_eff, spec.voltage)
    else:  # the late zero reset acts after the input, which is lost
        v = np.where(pending > 0, 0, overflow(v, spec.voltage))
    spikes = crossed(v, vth_eff, ge).astype(np.int64)
    if timing is ResetTiming.CARRY:  # the spike's own reset, less the θ already taken
        v = overflow(v - (spikes - pending) * vth_eff, spec.voltage)
    return u, v, spikes


def float_step(
    u: Float,
    v: Float,
    a: Float,
    *,
    alpha: Float,
    beta: Float,
    bias: Float,
    threshold: Float | None,
    subtract: bool,
    levels: int = 1,
    timing: ResetTiming = ResetTiming.IMMEDIATE,
    ge: bool = False,
    u2: Float | None = None,
) -> tuple[Float, Float, Float]:
    """One float time step: the same equations as ``fixed_step`` without rounding or overflow.

    ``u2``: the second current after this step's ``(1 - alpha2) * u2 + a2``, which ``v`` adds.

    With ``levels > 1`` the output is ``#{k in 1..levels : v ⋈ k * threshold}``, each product
    ``k * threshold`` rounded as a float (thresholds must be > 0). A late or carried reset
    computes ``v - r·θ`` and ``v - (s - r)·θ`` in that order, as snnTorch does, so the float
    rounding is the same.
    """
    pending = (
        None if threshold is None or timing is ResetTiming.IMMEDIATE else crossed(v, threshold, ge)
    )
    u = (1.0 - alpha) * u + a
    v = (1.0 - beta) * v + (u if u2 is None else u + u2) + bias
    if threshold is None:
        return u, v, v
    if pending is not None:
        r = pending.astype(np.float64)
        v = v - r * threshold if subtract else np.where(pending, 0.0, v)
        spikes = crossed(v, threshold, ge).astype(np.float64)
        if timing is ResetTiming.CARRY:
            v = v - (spikes - r) * threshold
        return u, v, spikes
    if levels > 1:
        count = float_spike_count(v, threshold, levels, ge)
        v = v - count * threshold if subtract else np.where(count > 0, 0.0, v)
        return u, v, count
    spikes = crossed(v, threshold, ge)
    v = np.where(spikes, v - threshold, v) if subtract else np.where(spikes, 0.0, v)
    return u, v, spikes.astype(np.float64)


def float_spike_count(v: Float, threshold: Float, levels: int, ge: bool = False) -> Float:
    """``#{k in 1..levels : v ⋈ k * threshold}`` for float ``v`` and thresholds > 0.

    ``clip(ceil(v / threshold) - 1, 0, levels)`` (``>``; ``floor(v / threshold)`` for ``>=``)
    can be one off where ``v / threshold`` rounds across an integer, so the estimate is
    corrected by one comparison each way; the errors of the division and of ``k * threshold``
    are below one level while ``levels < 2**50``.

    Examples:
        >>> float_spike_count(np.array([0.3, 0.30000000000000004, 0.31, -1.0]), np.array(0.1), 3)
        array([2., 2., 3., 0.])
        >>> float_spike_count(np.array([0.2, 0.19, 0.30000000000000004]), np.array(0.1), 3, ge=True)
        array([2., 1., 3.])
    """
    q = v / threshold
    count = np.clip(np.floor(q) if ge else np.ceil(q) - 1.0, 0.0, levels)
    up = (count < levels) & crossed(v, (count + 1.0) * threshold, ge)
    count = np.where(up, count + 1.0, count)
    out: Float = np.where((count > 0) & ~crossed(v, count * threshold, ge), count - 1.0, count)
    return out


# --------------------------------------------------------------------------- products (§4)


def decay_shift(x: Array, shifts: Int) -> Array:
    """``x - trunc(x / 2**d)`` per element (``d`` broadcast against ``x``); ``d = 0``: ``x``.

    The decay of the attention state (docs/SEMANTICS.md §4.1), ``γ = 1 - 2**-d`` rounded
    toward zero. Integer arrays use a sign-magnitude shift, as Lava's decays do; floats the
    same value with ``trunc``, so an integer-valued float state decays exactly as the integer
    one (float and integer attention agree bit for bit).

    Examples:
        >>> decay_shift(np.array([7, -7, 8, 1]), np.array([1, 1, 0, 1]))
        array([ 4, -4,  8,  1])
        >>> decay_shift(np.array([7.0, -7.0, 8.0, 1.0]), np.array([1, 1, 0, 1]))
        array([ 4., -4.,  8.,  1.])
    """
    if np.issubdtype(x.dtype, np.integer):
        lost = np.sign(x) * (np.abs(x) >> shifts)
    else:
        lost = np.trunc(x * np.exp2(-shifts.astype(np.float64)))
    out: Array = np.where(shifts > 0, x - lost, x)
    return out


def attention_update(s: Array, k: Array, v: Array, shifts: Int, state: FixedPoint | None) -> Array:
    """One state update of every head: ``S = sat(decay(S, d_h) + k ⊗ v)``.

    ``s`` is ``[batch, heads, d, d]`` (row: key channel, column: value channel), ``k`` and
    ``v`` are ``[batch, heads, d]``, ``shifts`` the per-head decay shifts. ``state`` is the
    integer register (saturating: never wraps); None in float runs.
    """
    s = decay_shift(s, shifts[None, :, None, None]) + k[..., :, None] * v[..., None, :]
    return s if state is None else saturate(s, state)


def attention_read(s: Array, q: Array, output: FixedPoint | None) -> Array:
    """The output of every head, ``A_h = sat(q_hᵀ · S_h)`` (``[batch, heads, d]``).

    Binary ``q`` makes this a sum of the rows of ``S`` where ``q`` spikes (AND + popcount when
    ``k`` and ``v`` are binary too); spike counts weigh the rows.
    """
    a = np.einsum("bhi,bhij->bhj", q, s)
    return a if output is None else saturate(a, output)


def gate(a: Array, g: Array, output: FixedPoint | None, shift: int = 0) -> Array:
    """The elementwise gate ``y = sat((a ⊙ g) >> shift)`` (docs/SEMANTICS.md §4.3).

    The shift is a floor shift of the exact product (integer runs only); float runs (``output``
    None) return ``a ⊙ g``.
    """
    y = a * g
    return y if output is None else saturate(y >> shift, output)


def saturate(x: Array, reg: FixedPoint) -> Array:
    """Clip to a product register's range (they saturate whatever ``reg.overflow`` says).

    Examples:
        >>> saturate(np.array([-200, 5, 200]), FixedPoint(width=8, signed=True))
        array([-128,    5,  127])
    """
    out: Array = np.clip(x, reg.min, reg.max)
    return out
