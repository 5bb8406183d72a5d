"""The bit-accurate neuron and synapse kernels: the specification every backend must match.

Integer kernels follow Lava 0.10.0's ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` exactly
(docs/SEMANTICS.md §2). All state is int64 holding the values of narrower registers; the
register widths come from ``NumericSpec``. Float kernels run the same discrete-time equations
without rounding: they are the float reference the quantized network is compared against.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import FixedPoint, Overflow

Int = npt.NDArray[np.int64]
Float = npt.NDArray[np.float64]


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


def overflow(x: Int, reg: FixedPoint) -> Int:
    """Apply a register's overflow rule (docs/SEMANTICS.md §2.3).

    Examples:
        >>> from snn_deploy.ir.types import FixedPoint, Overflow
        >>> u = FixedPoint(width=24, signed=True, overflow=Overflow.WRAP_ONCE)
        >>> overflow(np.array([2**23, 2**23 + 5, -2**23]), u)
        array([ 8388608, -8388603,  8388608])
    """
    if reg.overflow is Overflow.SATURATE:
        return np.clip(x, reg.min, reg.max)
    half, full = 1 << (reg.width - 1), 1 << reg.width
    return np.where(x > half, x - full, np.where(x <= -half, x + full, x))


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
) -> tuple[Int, Int, Int]:
    """One integer time step of a population; returns new ``u``, ``v`` and the output.

    ``a`` is the summed (already exponent-shifted) synaptic input. The output is the spikes
    (0/1) for a spiking population and ``v`` for a non-spiking one.
    """
    bits = spec.decay.width
    u = decay(u, du + spec.current_decay_offset, bits) + (a << spec.input_shift)
    u = overflow(u, spec.current)
    v = decay(v, dv + spec.voltage_decay_offset, bits) + u + bias
    v = overflow(v, spec.voltage)
    if vth is None:
        return u, v, v
    vth_eff = vth << spec.threshold_shift
    spikes = v > vth_eff
    v[spikes] = (v - vth_eff)[spikes] if subtract else 0  # v is this step's own array
    return u, v, spikes.astype(np.int64)


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
) -> tuple[Float, Float, Float]:
    """One float time step: the same equations as ``fixed_step`` without rounding or overflow."""
    u = (1.0 - alpha) * u + a
    v = (1.0 - beta) * v + u + bias
    if threshold is None:
        return u, v, v
    spikes = v > threshold
    v = np.where(spikes, v - threshold, v) if subtract else np.where(spikes, 0.0, v)
    return u, v, spikes.astype(np.float64)
