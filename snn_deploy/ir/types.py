"""Value types shared by the IR: fixed-point formats, neuron reset modes and timings, and
threshold compares."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class ResetMode(enum.Enum):
    """What a spiking neuron does to its membrane voltage after a spike.

    NIR defines only ``v = v_reset`` (ZERO after the voltage origin is moved to ``v_reset``);
    SUBTRACT (``v -= v_threshold``) is what Sinabs and snnTorch's ``reset_mechanism="subtract"``
    do. NIR files carry no reset mode, so frontends set it and ``snn-deploy --reset`` overrides it.
    """

    ZERO = "zero"
    SUBTRACT = "subtract"


class ResetTiming(enum.Enum):
    """When a spike's reset acts on the voltage (docs/SEMANTICS.md §1.2).

    With ``r = v_prev ⋈ θ`` the pending bit (the stored voltage of the previous step compared
    as the threshold test compares), each step ``v = decay(v) + u + b``, then:

    * IMMEDIATE: ``s = v ⋈ θ``; zero: ``v = 0`` where ``s``; subtract: ``v -= s·θ``.
      Lava's LIF and NIR.
    * LATE: the previous step's reset lands now, after the input: subtract ``v -= r·θ``, zero
      ``v = 0`` where ``r`` (the step's input is lost); then ``s = v ⋈ θ`` and no reset in this
      step. snnTorch's default ``reset_delay=True``.
    * CARRY (subtract only): ``v -= r·θ``, ``s = v ⋈ θ``, then ``v -= (s - r)·θ``: the reset
      of the spiking step, and a voltage still above θ after it carries one θ into the next
      step's test, given back if that step does not fire. snnTorch's ``reset_delay=False``.

    Non-immediate timings take binary spikes (one spike level).
    """

    IMMEDIATE = "immediate"
    LATE = "late"
    CARRY = "carry"


class ThresholdCompare(enum.Enum):
    """How a voltage is compared with a threshold: ``v > θ`` (Lava, NIR, snnTorch, Norse) or
    ``v >= θ`` (SpikingJelly, Sinabs, Rockpool, Xylo). With spike levels D the count is
    ``#{k in 1..D : v ⋈ k·θ}`` (docs/SEMANTICS.md §1.1)."""

    GT = ">"
    GE = ">="


class DecayForm(enum.Enum):
    """How a neuron core decays ``u`` and ``v`` each step (docs/SEMANTICS.md §2.4).

    MULTIPLY (Lava 0.10.0): ``kept(x, c) = sign(p)·(|p| >> bits)`` with
    ``p = x·(2**bits - c)``; the code ``c`` is the fraction lost in ``2**-bits`` units.
    SHIFT (Xylo's "dash"): ``lost(x, d) = x >> d`` (floor), or ``sign(x)`` where that is 0 and
    ``x != 0`` (the minimum step of one); ``kept = x - lost``; the code ``d`` loses ``2**-d``.
    """

    MULTIPLY = "multiply"
    SHIFT = "shift"


class CurrentUpdate(enum.Enum):
    """Where a step's synaptic input enters the current ``u``.

    DECAY_THEN_ADD (Lava): ``u = kept(u) + a``: the input is not decayed in its own step.
    ADD_THEN_DECAY (Xylo): ``u = kept(u + a)``: the input is decayed in its own step.
    """

    DECAY_THEN_ADD = "decay-then-add"
    ADD_THEN_DECAY = "add-then-decay"


class Accumulation(enum.Enum):
    """How the synaptic inputs of one step are summed into a neuron's current.

    SUM (Lava): each projection's exact integer sum is shifted by its exponent, the sums add
    and the current register's overflow rule applies once, to the result.
    SATURATE_EACH_SOURCE (Xylo): each weight is shifted (``code << exp``, ``exp >= 0``) and,
    source by source in chip order (inputs, then populations, in the net's order; each in
    index order), ``payload · weight`` is added to the current with saturation.
    """

    SUM = "sum"
    SATURATE_EACH_SOURCE = "saturate-each-source"


class VoltageUpdate(enum.Enum):
    """How ``v`` takes its decay, the current and the bias.

    SUM (Lava): ``v = ovf(kept(v) + u + bias)``: one overflow of the whole sum.
    SATURATE_EACH_TERM (Xylo): ``dv = sat(-lost(v) + u)``, ``dv = sat(dv + bias)``,
    ``v = sat(v + dv)``: three saturating additions.
    """

    SUM = "sum"
    SATURATE_EACH_TERM = "saturate-each-term"


class WeightExpScope(enum.Enum):
    """Which projections share one weight exponent.

    PROJECTION (Lava): each projection has its own. MATRIX (Xylo): one per weight matrix of
    the chip (``ir.net.Net.matrix_of``: input, recurrent, output), shared by every projection
    it holds.
    """

    PROJECTION = "projection"
    MATRIX = "matrix"


class Overflow(enum.Enum):
    """What an integer register does with a value outside its range.

    SATURATE clips to the range. WRAP_ONCE is Lava 0.10.0's current register: one addition or
    subtraction of ``2**width`` when the value leaves ``(-2**(width-1), 2**(width-1)]``
    (docs/SEMANTICS.md); it is not a two's-complement wrap.
    """

    SATURATE = "saturate"
    WRAP_ONCE = "wrap-once"


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedPoint:
    """An integer register format: ``width`` bits, signed or not, and its overflow behaviour.

    Real values are ``integer / scale`` where the scale belongs to the neuron population
    (``ir.net.NeuronFixed.scale``); the format itself only bounds the integers.

    Examples:
        >>> w = FixedPoint(width=8, signed=True)
        >>> (w.min, w.max)
        (-128, 127)
        >>> w.quantize(np.array([126.5, 127.5, -128.5, 300.0]))
        (array([ 126,  127, -128,  127]), 2)
    """

    width: int
    signed: bool
    overflow: Overflow = Overflow.SATURATE
    symmetric: bool = False
    """If true the range is ``[-max, max]`` (Lava's voltage register), not ``[-max-1, max]``."""

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 62:
            raise ValueError(f"FixedPoint width must be 1..62 bits, got {self.width}")

    @property
    def min(self) -> int:
        """The smallest representable integer."""
        if not self.signed:
            return 0
        return -self.max if self.symmetric else -(1 << (self.width - 1))

    @property
    def max(self) -> int:
        """The largest representable integer."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def quantize(self, x: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], int]:
        """Round to nearest (ties to even) and saturate; never wrap.

        Args:
            x: real values already multiplied by their scale.

        Returns:
            The int64 codes and how many values were clipped to the range.
        """
        r = np.rint(np.asarray(x, dtype=np.float64))
        clipped = int(np.count_nonzero((r < self.min) | (r > self.max)))
        return np.clip(r, self.min, self.max).astype(np.int64), clipped
