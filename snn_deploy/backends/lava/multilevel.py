"""A multi-level (graded-spike) LIF for Lava 0.10.0: Lava's LIF whose spike is a level count.

``MultiLevelLIF`` is Lava's ``LIF`` process with four more Vars: ``levels`` (D),
``subtract`` (1: reset by subtraction, 0: reset to zero), ``timing`` (the index of the
``ResetTiming``: 0 immediate, 1 late, 2 carry) and ``ge`` (1: ``v >= θ``, 0: ``v > θ``). Its
process model
``PyMultiLevelLifModelBitAcc`` (tags ``bit_accurate_loihi``, ``fixed_pt``) is built like
Lava's ``PyLifModelBitAcc`` on ``AbstractPyLifModelFixed``, so its current and voltage update
is Lava's own code, with the spike and reset of docs/SEMANTICS.md §1.1
(``vth_eff = vth << 6``)::

    s = clip(ceil(v / vth_eff) - 1, 0, D) where v > 0, else 0     (= #{k in 1..D : v > k vth_eff})
    zero reset: v = 0 where s > 0;   subtract reset: v = v - s * vth_eff

A late or carried reset (docs/SEMANTICS.md §1.2, binary spikes) takes the pending bit
``r = v ⋈ vth_eff`` of the stored voltage before Lava's update: subtract lowers this step's
effective bias by ``r * vth_eff`` (so Lava's own saturation clips ``decay(v) + u + b - r·θ``),
zero sets ``v = 0`` where ``r`` after it; carry then subtracts ``(s - r) * vth_eff``.

``s`` leaves on the int32 ``s_out`` port as an integer payload; a ``Dense``/``Sparse`` reading
it needs ``num_message_bits > 0``, so that it computes ``W @ s`` (Lava v0.10.0
proc/dense/models.py) rather than summing the columns of the non-zero inputs. With D = 1 and
zero reset the model is Lava's LIF.

The spike is computed here in float64 from the ``ceil`` form, independently of the
simulator's integer floor division (``backends/sim/kernels.spike_count``); both are exact for
24-bit voltages, and the tests compare them bit for bit.

Importing this module imports Lava (through the Python 3.11 shim of ``compat``); ``build``
imports it only when it builds a network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.lava.compat import import_lava
from snn_deploy.backends.lava.program import MAX_PAYLOAD
from snn_deploy.ir.types import ResetTiming

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402


class MultiLevelLIF(LIF):  # type: ignore[misc]  # Lava is untyped
    """Lava's ``LIF`` with ``levels`` spike levels and an optional reset by subtraction.

    Args:
        levels: the spike levels D (1..``MAX_PAYLOAD``).
        subtract: reset by subtracting ``s * (vth << 6)`` instead of to zero.
        timing: when the reset acts (late and carry: binary spikes).
        ge: spike at ``v >= vth << 6`` instead of ``v > vth << 6``.
        **kwargs: ``LIF``'s parameters (shape, du, dv, vth, bias_mant, bias_exp, name, ...).
    """

    def __init__(
        self,
        *,
        levels: int = 1,
        subtract: bool = False,
        timing: ResetTiming = ResetTiming.IMMEDIATE,
        ge: bool = False,
        **kwargs: Any,
    ) -> None:
        if not 1 <= levels <= MAX_PAYLOAD:
            raise ValueError(f"levels must be in [1, {MAX_PAYLOAD}], got {levels}")
        if timing is not ResetTiming.IMMEDIATE and levels != 1:
            raise ValueError(f"a {timing.value} reset takes binary spikes, got {levels} levels")
        super().__init__(**kwargs)
        self.levels = Var(shape=(1,), init=int(levels))
        self.subtract = Var(shape=(1,), init=int(subtract))
        self.timing = Var(shape=(1,), init=list(ResetTiming).index(timing))
        self.ge = Var(shape=(1,), init=int(ge))


@implements(proc=MultiLevelLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyMultiLevelLifModelBitAcc(AbstractPyLifModelFixed):  # type: ignore[misc]  # untyped
    """Lava's bit-accurate LIF whose spike is the number of thresholds ``v`` exceeds (up to D).

    It derives from ``AbstractPyLifModelFixed``, as ``PyLifModelBitAcc`` does, because Lava's
    ``@implements`` refuses a subclass of a model that already implements ``LIF``; the ports,
    ``vth`` and the threshold scaling are copied from ``PyLifModelBitAcc``.
    """

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    levels: int = LavaPyType(int, np.int32, precision=31)
    subtract: int = LavaPyType(int, np.int32, precision=1)
    timing: int = LavaPyType(int, np.int32, precision=2)
    ge: int = LavaPyType(int, np.int32, precision=1)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.effective_vth = 0
        self.pending: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    def _crossed(self, v: npt.NDArray[Any], t: int) -> npt.NDArray[np.int64]:
        """1 where ``v >= t`` (``ge``) or ``v > t``."""
        out: npt.NDArray[np.int64] = (v >= t if self.ge else v > t).astype(np.int64)
        return out

    def subthr_dynamics(self, activation_in: npt.NDArray[Any]) -> None:
        """Lava's update; a late or carried reset first takes the pending bit of the stored
        ``v`` and applies it (subtract: through the effective bias, inside Lava's clip)."""
        if list(ResetTiming)[int(self.timing)] is ResetTiming.IMMEDIATE:
            super().subthr_dynamics(activation_in)
            return
        t = int(self.effective_vth)
        self.pending = self._crossed(self.v, t)
        if self.subtract:
            bias = getattr(self, "effective_bias")  # noqa: B009  (Lava's, untyped: set by scale_bias)
            self.effective_bias = bias - self.pending * t
            super().subthr_dynamics(activation_in)
            self.effective_bias = bias
        else:  # the late zero reset: after the input, which is lost
            super().subthr_dynamics(activation_in)
            self.v[self.pending > 0] = 0

    def scale_threshold(self) -> None:
        """``vth << 6``, once (Lava's ``vth_shift``), as ``PyLifModelBitAcc`` does."""
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self) -> npt.NDArray[np.int32]:
        """``clip(ceil(v / vth_eff) - 1, 0, D)`` where ``v > 0`` (``>``), or
        ``clip(floor(v / vth_eff), 0, D)`` where ``v >= 0`` (``>=``); every level when vth is 0.
        """
        v = self.v.astype(np.float64)  # |v| < 2**23: the quotient's ceil is exact in float64
        t = float(self.effective_vth)
        full = np.full(v.shape, float(self.levels))
        if self.ge:
            crossed = np.floor(v / t) if t > 0 else full
            s = np.where(v >= 0, np.clip(crossed, 0.0, float(self.levels)), 0.0)
        else:
            crossed = np.ceil(v / t) - 1.0 if t > 0 else full
            s = np.where(v > 0, np.clip(crossed, 0.0, float(self.levels)), 0.0)
        out: npt.NDArray[np.int32] = s.astype(np.int32)
        return out

    def reset_voltage(self, spike_vector: npt.NDArray[np.int32]) -> None:
        """Zero reset where a spike left, or subtract one effective threshold per level; a late
        reset acted before the test; a carried one subtracts ``(s - r)`` thresholds, clipped as
        Lava clips ``v``."""
        timing = list(ResetTiming)[int(self.timing)]
        if timing is ResetTiming.LATE:
            return
        if timing is ResetTiming.CARRY:
            t = np.int64(self.effective_vth)
            lim = np.int64(self.max_uv_val) - 1  # Lava's voltage bound, ±(2**23 - 1)
            v = self.v.astype(np.int64) - (spike_vector - self.pending) * t
            self.v[:] = np.clip(v, -lim, lim)
            return
        if self.subtract:
            self.v[:] = self.v - spike_vector * np.int32(self.effective_vth)
        else:
            self.v[spike_vector > 0] = 0


__all__ = ["MAX_PAYLOAD", "MultiLevelLIF", "PyMultiLevelLifModelBitAcc"]
