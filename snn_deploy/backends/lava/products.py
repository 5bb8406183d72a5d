"""The product units (``Attention``, ``Gate``; docs/SEMANTICS.md §4) as Lava 0.10.0 processes.

``Attention`` and ``Gate`` are Lava processes with bit-accurate CPU process models
(``PyAttentionModelBitAcc``, ``PyGateModelBitAcc``; tags ``bit_accurate_loihi``, ``fixed_pt``),
and ``VoltageLIF`` is Lava's LIF that sends its voltage as a graded payload: the non-spiking
population a ``Gate`` multiplies (its value operand ``a``).

**Ports and timing.** A unit has one ``InPort`` per operand (``q_in``, ``k_in``, ``v_in``;
``a_in``, ``g_in``), each as wide as the operand's *source* (a population, every block of which
connects to it, so the port sums their disjoint vectors, or an input's ``RingBuffer``), and
the unit selects its elements with the operand's ``index``. Every step the model first sends
the output it computed in the previous step, then receives the operands and computes the next
one (send, then receive: the order of Lava's ``Dense``), so its output at step ``t`` is made of
its operands' outputs of step ``t − 1``, as docs/SEMANTICS.md §4 says. ``s_out`` is an int32
graded payload; the synapses reading it take ``num_message_bits`` = the output register's
width and multiply it like a multi-level spike.

**Arithmetic.** Written from docs/SEMANTICS.md §4, apart from the simulator's kernels
(``backends/sim/kernels.py``), which the tests compare it with bit for bit: the attention decay
is the sign-magnitude shift ``S − sign(S)·(|S| >> d)``, the read a matrix product per head,
saturation a clip to the signed register ``[−2**(w−1), 2**(w−1) − 1]``; the gate
floor-shifts the exact int64 product. Registers are int64 (``ProductFixed`` widths up to 62
bits); what leaves on ``s_out`` must fit int32 (``program.lower_program`` checks).

Importing this module imports Lava; ``build`` imports it only when a net has product units.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.lava.compat import import_lava

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402

Int = npt.NDArray[np.int64]


def _register(width: int) -> tuple[int, int]:
    """The range of a signed saturating register of ``width`` bits."""
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


class Attention(AbstractProcess):  # type: ignore[misc]  # Lava is untyped
    """Linear spiking self-attention (docs/SEMANTICS.md §4.1-4.2) as a Lava process.

    Args:
        size: output elements (``dim``); ``heads`` divides it.
        heads: number of heads.
        sources: the sizes of the ``q``, ``k`` and ``v`` operands' sources (port widths).
        index: per operand, which ``size`` elements of its source it reads.
        decay: per head, the decay shift ``d`` (0: none).
        causal: the causal recurrence (True) or whole-clip attention.
        steps: the clip length of whole-clip attention.
        state_bits: the width of the saturating state register ``S``.
        output_bits: the width of the saturating output register ``A``.
        name: the unit's name.
    """

    def __init__(
        self,
        *,
        size: int,
        heads: int,
        sources: tuple[int, int, int],
        index: tuple[Int, Int, Int],
        decay: tuple[int, ...],
        causal: bool,
        steps: int,
        state_bits: int,
        output_bits: int,
        name: str,
    ) -> None:
        super().__init__(shape=(size,), name=name)
        d = size // heads
        self.q_in = InPort(shape=(sources[0],))
        self.k_in = InPort(shape=(sources[1],))
        self.v_in = InPort(shape=(sources[2],))
        self.s_out = OutPort(shape=(size,))
        self.q_index = Var(shape=(size,), init=np.asarray(index[0]))
        self.k_index = Var(shape=(size,), init=np.asarray(index[1]))
        self.v_index = Var(shape=(size,), init=np.asarray(index[2]))
        self.decay = Var(shape=(heads,), init=np.asarray(decay))
        self.causal = Var(shape=(1,), init=int(causal))
        self.steps = Var(shape=(1,), init=steps)
        self.state_bits = Var(shape=(1,), init=state_bits)
        self.output_bits = Var(shape=(1,), init=output_bits)
        self.state = Var(shape=(heads, d, d), init=0)
        self.kept_q = Var(shape=(1 if causal else steps, size), init=0)
        self.read = Var(shape=(1,), init=0)
        self.a = Var(shape=(size,), init=0)

    def operand_ports(self) -> tuple[InPort, InPort, InPort]:
        """``q_in``, ``k_in``, ``v_in``: the order of ``ir.net.Attention.operands``."""
        return (self.q_in, self.k_in, self.v_in)


class Gate(AbstractProcess):  # type: ignore[misc]  # Lava is untyped
    """The elementwise gate ``y = sat((a ⊙ g) >> shift)`` (docs/SEMANTICS.md §4.3).

    Args:
        size: output elements.
        sources: the sizes of the ``a`` and ``g`` operands' sources (port widths).
        index: per operand, which ``size`` elements of its source it reads.
        shift: the floor shift of the product.
        output_bits: the width of the saturating output register.
        name: the unit's name.
    """

    def __init__(
        self,
        *,
        size: int,
        sources: tuple[int, int],
        index: tuple[Int, Int],
        shift: int,
        output_bits: int,
        name: str,
    ) -> None:
        super().__init__(shape=(size,), name=name)
        self.a_in = InPort(shape=(sources[0],))
        self.g_in = InPort(shape=(sources[1],))
        self.s_out = OutPort(shape=(size,))
        self.a_index = Var(shape=(size,), init=np.asarray(index[0]))
        self.g_index = Var(shape=(size,), init=np.asarray(index[1]))
        self.shift = Var(shape=(1,), init=shift)
        self.output_bits = Var(shape=(1,), init=output_bits)
        self.y = Var(shape=(size,), init=0)

    def operand_ports(self) -> tuple[InPort, InPort]:
        """``a_in``, ``g_in``: the order of ``ir.net.Gate.operands``."""
        return (self.a_in, self.g_in)


class VoltageLIF(LIF):  # type: ignore[misc]  # Lava is untyped
    """Lava's ``LIF`` that never spikes and sends its voltage ``v`` as a graded payload.

    A non-spiking population (LI, CubaLI, I) outputs ``v`` (docs/SEMANTICS.md §1): Lava's LIF
    sends only spikes (what a ``Gate`` multiplies is the voltage), and with its largest
    threshold it would still spike and reset a voltage at the saturation bound.
    """


_OPERAND = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
_PAYLOAD = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


@implements(proc=Attention, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyAttentionModelBitAcc(PyLoihiProcessModel):  # type: ignore[misc]  # Lava is untyped
    """Send last step's ``A``; then ``S = sat(S − fix(S / 2**d) + k ⊗ v)``, ``A = sat(qᵀ S)``.

    Whole-clip attention accumulates ``S`` and keeps ``q`` for its first ``steps`` reads
    (``A = 0``), then reads the kept ``q`` in order for ``steps`` more reads (``A = 0`` after).
    """

    q_in: PyInPort = _OPERAND
    k_in: PyInPort = _OPERAND
    v_in: PyInPort = _OPERAND
    s_out: PyOutPort = _PAYLOAD
    q_index: Int = LavaPyType(np.ndarray, np.int64)
    k_index: Int = LavaPyType(np.ndarray, np.int64)
    v_index: Int = LavaPyType(np.ndarray, np.int64)
    decay: Int = LavaPyType(np.ndarray, np.int64)
    causal: Int = LavaPyType(np.ndarray, np.int64)
    steps: Int = LavaPyType(np.ndarray, np.int64)
    state_bits: Int = LavaPyType(np.ndarray, np.int64)
    output_bits: Int = LavaPyType(np.ndarray, np.int64)
    state: Int = LavaPyType(np.ndarray, np.int64)
    kept_q: Int = LavaPyType(np.ndarray, np.int64)
    read: Int = LavaPyType(np.ndarray, np.int64)
    a: Int = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        self.s_out.send(self.a)
        heads, d, _ = self.state.shape
        q, k, v = (
            port.recv().astype(np.int64)[index].reshape(heads, d)
            for port, index in (
                (self.q_in, self.q_index),
                (self.k_in, self.k_index),
                (self.v_in, self.v_index),
            )
        )
        n, steps = int(self.read[0]), int(self.steps[0])
        self.read[0] = n + 1
        causal = bool(self.causal[0])
        if causal or n < steps:
            self._accumulate(k, v)
        if not causal:
            if n >= 2 * steps:
                self.a[:] = 0
                return
            if n < steps:
                self.kept_q[n] = q.ravel()
                self.a[:] = 0
                return
            q = self.kept_q[n - steps].reshape(heads, d)
        lo, hi = _register(int(self.output_bits[0]))
        self.a[:] = np.clip(np.matmul(q[:, None, :], self.state)[:, 0, :], lo, hi).ravel()

    def _accumulate(self, k: Int, v: Int) -> None:
        s, d = self.state, self.decay[:, None, None]
        lost = np.where(d > 0, np.sign(s) * (np.abs(s) >> d), 0)  # d = 0: no decay
        s = s - lost + k[:, :, None] * v[:, None, :]
        lo, hi = _register(int(self.state_bits[0]))
        self.state[:] = np.clip(s, lo, hi)


@implements(proc=Gate, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyGateModelBitAcc(PyLoihiProcessModel):  # type: ignore[misc]  # Lava is untyped
    """Send last step's ``y``; then ``y = sat((a ⊙ g) >> shift)`` of this step's operands."""

    a_in: PyInPort = _OPERAND
    g_in: PyInPort = _OPERAND
    s_out: PyOutPort = _PAYLOAD
    a_index: Int = LavaPyType(np.ndarray, np.int64)
    g_index: Int = LavaPyType(np.ndarray, np.int64)
    shift: Int = LavaPyType(np.ndarray, np.int64)
    output_bits: Int = LavaPyType(np.ndarray, np.int64)
    y: Int = LavaPyType(np.ndarray, np.int64)

    def run_spk(self) -> None:
        self.s_out.send(self.y)
        a = self.a_in.recv().astype(np.int64)[self.a_index]
        g = self.g_in.recv().astype(np.int64)[self.g_index]
        lo, hi = _register(int(self.output_bits[0]))
        self.y[:] = np.clip(np.right_shift(a * g, int(self.shift[0])), lo, hi)


@implements(proc=VoltageLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyVoltageLifModelBitAcc(AbstractPyLifModelFixed):  # type: ignore[misc]  # Lava is untyped
    """Lava's bit-accurate LIF update (``AbstractPyLifModelFixed``) with no threshold: the
    output is ``v`` and nothing resets it."""

    s_out: PyOutPort = _PAYLOAD
    vth: int = LavaPyType(int, np.int32, precision=17)

    def scale_threshold(self) -> None:
        """No threshold is compared."""
        self.isthrscaled = True

    def spiking_activation(self) -> npt.NDArray[np.int32]:
        """The voltage itself."""
        out: npt.NDArray[np.int32] = self.v.copy()
        return out

    def reset_voltage(self, spike_vector: npt.NDArray[np.int32]) -> None:
        """No reset: the population does not spike."""


MODELS: dict[type, type] = {
    Attention: PyAttentionModelBitAcc,
    Gate: PyGateModelBitAcc,
    VoltageLIF: PyVoltageLifModelBitAcc,
}
"""Each process class and its model, for ``exception_proc_model_map``."""

__all__ = ["MODELS", "Attention", "Gate", "VoltageLIF"]
