"""Value types shared by the IR: fixed-point formats and neuron reset modes."""

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
