"""The lowered IR: neuron populations joined by weighted projections, in discrete time.

``passes.lower`` folds every chain of stateless NIR nodes (Affine, Conv, pooling, Flatten,
Delay, ...) between two neuron nodes into one projection, a sparse matrix plus a delay, and
turns each neuron node into a population with per-step decays. This is the form every
backend consumes. ``passes.quantize`` fills the typed fixed-point slots (``fixed`` and
``Net.numeric``) and ``placement`` is the slot the mapping pass fills. docs/SEMANTICS.md states
the update rule for both the float and the integer form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import VerificationError
from snn_deploy.ir.types import (
    Accumulation,
    CurrentUpdate,
    DecayForm,
    FixedPoint,
    ResetMode,
    ResetTiming,
    ThresholdCompare,
    VoltageUpdate,
    WeightExpScope,
)

DEFAULT_DT = 1e-4
"""Seconds per step when none is given: the NIR paper's and snnTorch's exporter default."""

Shape = tuple[int, ...]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _frozen(arr: npt.ArrayLike, dtype: type) -> npt.NDArray[np.generic]:
    out: npt.NDArray[np.generic] = np.array(arr, dtype=dtype)
    out.setflags(write=False)
    return out


def _frozen_csr(m: sp.spmatrix | sp.sparray, dtype: type) -> sp.csr_matrix:
    csr = sp.csr_matrix(m, dtype=dtype)
    csr.sort_indices()
    for arr in (csr.data, csr.indices, csr.indptr):
        arr.setflags(write=False)
    return csr


@dataclass(frozen=True, slots=True, kw_only=True)
class NumericSpec:
    """The integer arithmetic of a target's neuron core (see docs/SEMANTICS.md §2).

    Every width here comes from a target TOML; the simulator reads nothing else. The fields
    after ``voltage`` generalise Lava's arithmetic to other cores (Xylo); their defaults are
    Lava's, so a format file that omits them describes Lava's core:

    * ``decay_form``, ``current_update``, ``accumulation``, ``voltage_update``: see their
      enums in ``ir.types``;
    * ``input_latency``: steps from an input value to the current of the population it feeds
      (1: Lava, whose synapses deliver the previous step; 0: Xylo, same step); projections
      from populations always take one step (plus their delay);
    * ``input_payload_max``: inputs are capped to this many events per channel and step
      (None: any payload);
    * ``weight_exp_scope``: one weight exponent per projection, or per chip matrix.
    """

    weight: FixedPoint
    weight_exp_min: int
    weight_exp_max: int
    decay: FixedPoint
    current_decay_offset: int
    voltage_decay_offset: int
    threshold: FixedPoint
    threshold_shift: int
    input_shift: int
    bias: FixedPoint
    bias_exp_min: int
    bias_exp_max: int
    current: FixedPoint
    voltage: FixedPoint
    decay_form: DecayForm = DecayForm.MULTIPLY
    current_update: CurrentUpdate = CurrentUpdate.DECAY_THEN_ADD
    accumulation: Accumulation = Accumulation.SUM
    voltage_update: VoltageUpdate = VoltageUpdate.SUM
    input_latency: int = 1
    input_payload_max: int | None = None
    weight_exp_scope: WeightExpScope = WeightExpScope.PROJECTION


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class NeuronFixed:
    """Integer parameters of a population, in the formats of ``Net.numeric``.

    Attributes:
        scale: integer voltage units per unit of the float ``v`` (a power of two).
        du: current decay codes; ``u`` loses ``(du + current_decay_offset) / 2**decay.width``.
        dv: voltage decay codes; ``v`` loses ``(dv + voltage_decay_offset) / 2**decay.width``.
        vth: threshold mantissas (compared as ``vth << threshold_shift``); None if non-spiking.
        bias_mant: bias mantissas; ``v`` gains ``bias_mant * 2**bias_exp`` every step.
        bias_exp: bias exponents.
        du2: decay codes of the second current ``u2`` (as ``du``); None: no second current.
    """

    scale: float
    du: IntArray
    dv: IntArray
    vth: IntArray | None
    bias_mant: IntArray
    bias_exp: IntArray
    du2: IntArray | None = None

    def __post_init__(self) -> None:
        for name in ("du", "dv", "vth", "bias_mant", "bias_exp", "du2"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _frozen(getattr(self, name), np.int64))


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where a contiguous range of a population's neurons lives (filled by mapping)."""

    start: int
    stop: int
    chip: int
    core: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Population:
    """A group of neurons with the discrete-time dynamics of docs/SEMANTICS.md §1.

    Attributes:
        name: the NIR node it came from.
        node_type: the NIR type name (LIF, CubaLIF, IF, LI, I, CubaLI, Threshold).
        shape: per-sample shape; the population is flat in C order.
        alpha: fraction of ``u`` lost per step (``dt/tau_syn``; 1: no synaptic memory).
        beta: fraction of ``v`` lost per step (``dt/tau_mem``; 0: no leak).
        bias: constant added to ``v`` every step.
        threshold: spike when ``v > threshold``; None for non-spiking (outputs ``v``).
        reset: what a spike does to ``v``.
        reset_timing: when the reset acts (``ResetTiming``; docs/SEMANTICS.md §1.2).
        threshold_compare: ``v > θ`` or ``v >= θ`` (``ThresholdCompare``), for the spike, each
            spike level and the pending bit of a late or carried reset.
        levels: the spike levels D of a spiking population: each step it emits the integer
            ``s = #{k in 1..D : v > k * threshold}`` (0..D), which projections multiply like a
            spike; zero reset sets ``v = 0`` where ``s > 0``, subtract reset removes
            ``s * threshold`` (docs/SEMANTICS.md §1.1). 1: binary spikes.
        voltage_scale: the integer voltage units per unit of ``v`` the source model fixes
            (``ir.nodes.Neuron.voltage_scale``); None lets the quantizer choose.
        alpha2: fraction of the second synaptic current ``u2`` lost per step; ``v``
            integrates ``u + u2`` (docs/SEMANTICS.md §1.3). None: one current (every
            target but Xylo, whose hidden neurons have two).
        fixed: integer parameters, set by quantization.
        placement: core placement, set by mapping.
    """

    name: str
    node_type: str
    shape: Shape
    alpha: FloatArray
    beta: FloatArray
    bias: FloatArray
    threshold: FloatArray | None
    reset: ResetMode
    levels: int = 1
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    threshold_compare: ThresholdCompare = ThresholdCompare.GT
    voltage_scale: float | None = None
    alpha2: FloatArray | None = None
    fixed: NeuronFixed | None = None
    placement: tuple[Placement, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "bias", "threshold", "alpha2"):
            if getattr(self, name) is not None:
                arr = np.broadcast_to(getattr(self, name), (self.size,))
                object.__setattr__(self, name, _frozen(arr, np.float64))

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))

    @property
    def spiking(self) -> bool:
        """True if the population emits spikes, False if it outputs its voltage."""
        return self.threshold is not None

    @property
    def currents(self) -> int:
        """Synaptic currents per neuron: 1, or 2 with ``alpha2``."""
        return 1 if self.alpha2 is None else 2


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SynapseFixed:
    """Integer weights: the projection adds ``(codes @ x) * 2**exp`` (floor shift when < 0).

    ``rounding`` records how the codes were rounded: ``nearest`` or ``compensated`` (error
    compensation on calibration activity, ``passes.quantize.compensated_codes``).
    """

    codes: sp.csr_matrix
    exp: int
    rounding: str = "nearest"

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", _frozen_csr(self.codes, np.int64))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Projection:
    """Weighted connection ``src -> dst``: ``a_dst[t] += W @ out_src[t - 1 - delay]``.

    Attributes:
        name: the NIR node names it was folded from, joined by ``+``.
        src: a population or an input name.
        dst: a population name.
        weight: ``[dst.size, src.size]`` float weights in units of ``v`` per unit of input.
        delay: extra steps beyond the one every projection has.
        synapse: the synaptic current of ``dst`` it adds into: 0 (``u``) or 1 (``u2``, which
            ``dst`` must have).
        fixed: integer weights, set by quantization.
    """

    name: str
    src: str
    dst: str
    weight: sp.csr_matrix
    delay: int = 0
    synapse: int = 0
    fixed: SynapseFixed | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _frozen_csr(self.weight, np.float64))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Operand:
    """One operand of a product unit: ``out_src[index]`` of the previous step.

    Attributes:
        src: the population or input it reads.
        index: which of the source's (flat) outputs, one per element of the unit.
    """

    src: str
    index: IntArray

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", _frozen(self.index, np.int64))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductFixed:
    """Integer registers of a product unit (set by quantization; docs/SEMANTICS.md §4.4).

    Attributes:
        output: the output register; the product saturates to it, never wraps.
        state: the attention state register ``S`` (saturating); None for a ``Gate``.
        shift: a ``Gate``'s product is floor-shifted right by it before saturating (drops the
            fraction bits of a voltage operand the next weights cannot use; 0: exact).
        scale: integer output units per unit of the float output (a power of two): 1 unless a
            ``Gate`` multiplies a non-spiking voltage: its voltage scale over ``2**shift``.
    """

    output: FixedPoint
    state: FixedPoint | None = None
    shift: int = 0
    scale: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Attention:
    """Linear spiking self-attention unit (docs/SEMANTICS.md §4.1-4.2).

    Per head ``h`` with channels ``h·d .. (h+1)·d - 1`` (``d = size / heads``), reading
    ``q``, ``k``, ``v`` of the previous step: ``S_h = sat(decay(S_h, decay[h]) + k_h ⊗ v_h)``,
    output ``sat(q_hᵀ · S_h)``; whole-clip (``causal=False``): ``S`` over the first ``steps``
    inputs, read in the next ``steps``.

    Attributes:
        name: the NIR node it came from.
        size: output elements (``dim``).
        heads: number of heads.
        q: query operand; k: key operand; v: value operand (``size`` elements each).
        decay: per head, the shift ``d`` of ``S -= trunc(S / 2**d)`` (0: no decay).
        causal: the causal recurrence, or the whole-clip form.
        steps: the clip length (whole clip); the causal plain state is sized for it.
        fixed: integer registers, set by quantization.
    """

    name: str
    size: int
    heads: int
    q: Operand
    k: Operand
    v: Operand
    decay: tuple[int, ...]
    causal: bool
    steps: int
    fixed: ProductFixed | None = None

    @property
    def operands(self) -> tuple[Operand, ...]:
        """``q``, ``k``, ``v``."""
        return (self.q, self.k, self.v)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Gate:
    """Elementwise gate unit: output ``sat(a ⊙ g)`` of the previous step's operands (§4.3).

    Attributes:
        name: the NIR node it came from.
        size: output elements.
        a: the gated value (any population's output, or an input).
        g: the gate (spikes or spike counts, or an input).
        fixed: integer registers, set by quantization.
    """

    name: str
    size: int
    a: Operand
    g: Operand
    fixed: ProductFixed | None = None

    @property
    def operands(self) -> tuple[Operand, ...]:
        """``a``, ``g``."""
        return (self.a, self.g)


Product = Attention | Gate
"""A product unit of the lowered net."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False, weakref_slot=True)
class Net:
    """A lowered network: inputs, populations, projections and what the outputs read.

    Attributes:
        dt: the time step in seconds used to discretise the NIR graph.
        inputs: input name -> per-sample shape.
        populations: population name -> population, in graph order.
        projections: all projections.
        outputs: output name -> the population (or input) it records.
        numeric: the integer arithmetic, set by quantization (None: float network).
        products: product unit name -> unit (``Attention``, ``Gate``): activation×activation
            products, which projections read like populations (docs/SEMANTICS.md §4).
        input_latency: steps from an input value to the populations it feeds (1: the step
            after, as every projection; 0: the same step, Xylo's input). ``lower`` takes it
            from the target (``NumericSpec.input_latency``), so the float reference keeps the
            target's timing.
    """

    dt: float
    inputs: Mapping[str, Shape]
    populations: Mapping[str, Population]
    projections: tuple[Projection, ...]
    outputs: Mapping[str, str]
    numeric: NumericSpec | None = None
    products: Mapping[str, Product] = field(default_factory=dict)
    input_latency: int = 1

    def __post_init__(self) -> None:
        for name in ("inputs", "populations", "outputs", "products"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "projections", tuple(self.projections))

    @property
    def quantized(self) -> bool:
        """True once every population and projection has its integer slot filled."""
        return self.numeric is not None

    def size_of(self, name: str) -> int:
        """Number of elements of a population, product unit or input."""
        if name in self.populations:
            return self.populations[name].size
        if name in self.products:
            return self.products[name].size
        return int(np.prod(self.inputs[name]))

    def incoming(self, dst: str) -> tuple[Projection, ...]:
        """Projections into population ``dst``."""
        return tuple(p for p in self.projections if p.dst == dst)

    def replace(self, **changes: object) -> Net:
        """A copy with some fields replaced."""
        # mypy checks ``**changes`` against every field's type; the fields vary per call
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def readouts(self) -> tuple[str, ...]:
        """The populations an Output reads that feed no projection and no product unit: a
        chip's output (read-out) neurons, where it has them apart from hidden ones (Xylo)."""
        fed = {p.src for p in self.projections} | {
            op.src for u in self.products.values() for op in u.operands
        }
        read = set(self.outputs.values())
        return tuple(k for k in self.populations if k in read and k not in fed)

    def matrix_of(self, proj: Projection) -> str:
        """The chip weight matrix ``proj`` belongs to on a core of input, recurrent and
        output matrices (Xylo): ``input`` (from an input), ``output`` (into a read-out
        population, ``readouts``) or ``recurrent`` (between hidden populations)."""
        if proj.src in self.inputs:
            return "input"
        return "output" if proj.dst in self.readouts() else "recurrent"

    def lag(self, proj: Projection) -> int:
        """Steps from a source's output to ``proj``'s destination: ``input_latency`` for an
        input, else 1, plus the projection's delay."""
        return (self.input_latency if proj.src in self.inputs else 1) + proj.delay

    def verify(self) -> None:
        """Check names, matrix shapes, and that integer slots are all set or all unset."""
        if self.input_latency not in (0, 1) or (
            self.numeric is not None and self.input_latency != self.numeric.input_latency
        ):
            raise VerificationError(
                f"the net's input latency {self.input_latency} must be 0 or 1 and equal its "
                "numeric format's"
            )
        for out, src in self.outputs.items():
            if src not in self.populations and src not in self.inputs:
                raise VerificationError(f"output {out!r} reads {src!r}, which does not exist")
        for p in self.projections:
            if p.dst not in self.populations:
                raise VerificationError(f"projection {p.name!r} targets unknown {p.dst!r}")
            if not any(p.src in k for k in (self.populations, self.inputs, self.products)):
                raise VerificationError(f"projection {p.name!r} reads unknown {p.src!r}")
            want = (self.size_of(p.dst), self.size_of(p.src))
            if p.weight.shape != want:
                raise VerificationError(
                    f"projection {p.name!r}: weight {list(p.weight.shape)} != {list(want)}"
                )
            if p.delay < 0:
                raise VerificationError(f"projection {p.name!r}: negative delay {p.delay}")
            currents = self.populations[p.dst].currents
            if isinstance(p.synapse, bool) or p.synapse not in range(currents):
                raise VerificationError(
                    f"projection {p.name!r}: synapse {p.synapse!r}, but {p.dst!r} has "
                    f"{currents} synaptic current(s) (synapse 0..{currents - 1})"
                )
            if (p.fixed is None) == self.quantized:
                raise VerificationError(
                    f"projection {p.name!r}: integer weights must be set exactly when the "
                    "net is quantized"
                )
        for unit in self.products.values():
            self._verify_product(unit)
        for pop in self.populations.values():
            _verify_levels(pop)
            _verify_timing(pop)
            if (pop.fixed is None) == self.quantized:
                raise VerificationError(
                    f"population {pop.name!r}: integer parameters must be set exactly when "
                    "the net is quantized"
                )
            if pop.fixed is not None and (pop.fixed.du2 is None) != (pop.alpha2 is None):
                raise VerificationError(
                    f"population {pop.name!r}: the second current's decay codes (du2) must be "
                    "set exactly when it has a second current (alpha2)"
                )

    def _verify_product(self, unit: Product) -> None:
        kind = type(unit).__name__
        taken = [k for k in (self.inputs, self.populations) if unit.name in k]
        if taken:
            raise VerificationError(f"{kind} {unit.name!r}: the name is taken by another node")
        roles = ("q", "k", "v") if isinstance(unit, Attention) else ("a", "g")
        for role, op in zip(roles, unit.operands, strict=True):
            if op.src not in self.populations and op.src not in self.inputs:
                raise VerificationError(
                    f"{kind} {unit.name!r}: operand {role} reads {op.src!r}, which is no "
                    "population or input"
                )
            size = self.size_of(op.src)
            if op.index.shape != (unit.size,) or np.any((op.index < 0) | (op.index >= size)):
                raise VerificationError(
                    f"{kind} {unit.name!r}: operand {role} needs {unit.size} indices into "
                    f"{op.src!r} (size {size})"
                )
            src = self.populations.get(op.src)
            if role != "a" and src is not None and not src.spiking:
                raise VerificationError(
                    f"{kind} {unit.name!r}: operand {role} reads {op.src!r}, which outputs its "
                    "voltage; it must be spikes (spike counts)"
                )
        if isinstance(unit, Attention) and (
            unit.size % unit.heads
            or len(unit.decay) != unit.heads
            or (not unit.causal and any(unit.decay))
        ):
            raise VerificationError(
                f"Attention {unit.name!r}: {unit.heads} heads must divide size {unit.size} and "
                f"match decay {list(unit.decay)}, which must be 0 for whole-clip attention"
            )
        if (unit.fixed is None) == self.quantized:
            raise VerificationError(
                f"{kind} {unit.name!r}: integer registers must be set exactly when the net is "
                "quantized"
            )
        if unit.fixed is not None and (unit.fixed.state is None) != isinstance(unit, Gate):
            raise VerificationError(
                f"{kind} {unit.name!r}: an Attention has a state register, a Gate none"
            )


def _verify_levels(pop: Population) -> None:
    """Spike levels: an integer >= 1; more than one only for a spiking population whose
    thresholds are all positive (else every level would be crossed at once)."""
    levels = pop.levels
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise VerificationError(
            f"population {pop.name!r}: spike levels must be an integer >= 1, got {levels!r}"
        )
    if levels == 1:
        return
    if pop.threshold is None:
        raise VerificationError(
            f"population {pop.name!r} ({pop.node_type}) outputs its voltage, so it cannot have "
            f"{levels} spike levels"
        )
    if np.any(pop.threshold <= 0):
        raise VerificationError(
            f"population {pop.name!r}: {levels} spike levels need thresholds > 0, got min "
            f"{float(pop.threshold.min()):g}"
        )


def _verify_timing(pop: Population) -> None:
    """A late or carried reset: a spiking population with binary spikes; carry: subtract."""
    timing = pop.reset_timing
    if timing is ResetTiming.IMMEDIATE:
        return
    if pop.threshold is None or pop.levels != 1:
        raise VerificationError(
            f"population {pop.name!r}: a {timing.value} reset needs a spiking population with "
            f"binary spikes, got {'no threshold' if pop.threshold is None else pop.levels} "
            f"{'' if pop.threshold is None else 'spike levels'}".rstrip()
        )
    if timing is ResetTiming.CARRY and pop.reset is not ResetMode.SUBTRACT:
        raise VerificationError(
            f"population {pop.name!r}: a carried reset is a reset by subtraction, got "
            f"{pop.reset.value}"
        )
