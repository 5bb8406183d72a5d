"""Lower a quantized ``Net`` to the FPGA program: one time-multiplexed LIF core per population
and one product unit (``attention.v``, ``gate.v``) per ``Attention`` or ``Gate``.

Every core holds its neurons' parameters, state and dense weight rows, plus one history buffer
per incoming projection (``delay + 2`` slots of source values). The datapath width of each
core is the smallest that holds every intermediate value of docs/SEMANTICS.md §2 for inputs
of ``INPUT_BITS`` bits, so the RTL never overflows where the simulator's int64 would not.
A product unit reads each operand from a two-slot history buffer of its source and sends its
outputs to its readers like a one-lane core. docs/FPGA.md describes the architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from snn_deploy.ir.net import Attention, IntArray, Net, NumericSpec, Population, Product
from snn_deploy.target.schema import FpgaBoard

INPUT_BITS = 8
"""Width of a graded input value (signed); binary spikes are 0 and 1."""

PIPELINE_CYCLES = 3
"""Cycles per neuron beyond its weight row: multiply, accumulate, shift-and-sum, update."""
CONTROL_CYCLES = 3
"""Cycles per step outside the cores: start, the end-of-step advance, the done pulse."""
ATTENTION_CYCLES = 4
"""Cycles per step of ``attention.v`` beyond one per state entry: three pipeline stages after
the issue (update, read, emit) and the flush."""
GATE_CYCLES = 2
"""Cycles per step of ``gate.v`` beyond one per element: the product stage and the flush."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CoreProjection:
    """One incoming projection of a core, as the core's weight row segment sees it.

    Attributes:
        name: the projection's name ("" for the zero placeholder of a core without inputs).
        src: the source population or input name.
        kind: "input" (graded, signed), "spikes" (0..D, unsigned: 0/1 for binary spikes) or
            "values" (a non-spiking population's ``v``, signed), or "none" (placeholder).
        src_size: number of source values.
        delay: extra steps beyond the one every projection has.
        exp: the weight exponent (floor shift of the sum).
        width: bits of one source value in the history buffer (``ceil(log2(D + 1))`` for
            spikes of D levels).
        src_lanes: values the source writes per cycle (its core's lanes; 1 for inputs).
        codes: ``[dst, src]`` weight codes (CSR; the core stores the rows dense, which only
            ``emit`` needs: a rejected net is never densified).
    """

    name: str
    src: str
    kind: str
    src_size: int
    delay: int
    exp: int
    width: int
    src_lanes: int
    codes: sp.csr_matrix

    @property
    def depth(self) -> int:
        """History buffer slots: the step being written plus ``delay + 1`` earlier ones."""
        return self.delay + 2


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Core:
    """A LIF core: one population, its incoming projections and its datapath widths.

    Attributes:
        index: core number (position in the netlist).
        pop: the population.
        lanes: neuron-update units; lane ``l`` of group ``g`` updates neuron ``g * lanes + l``.
        projections: incoming projections, in weight-row order.
        xw: width of a source value inside the core (signed).
        width: datapath width (accumulator, ``a``, ``u`` and ``v`` before overflow rules).
        u_width: stored ``u`` width.
        bias_width: width of ``bias_mant << bias_exp`` (signed).
        a_in: the largest possible ``|a << input_shift|`` (every source at its extreme).
    """

    index: int
    pop: Population
    lanes: int
    projections: tuple[CoreProjection, ...]
    xw: int
    width: int
    u_width: int
    bias_width: int
    a_in: int

    @property
    def row(self) -> int:
        """Weights per neuron."""
        return sum(p.src_size for p in self.projections)

    @property
    def groups(self) -> int:
        """Neuron groups, one per pass of the lanes."""
        return -(-self.pop.size // self.lanes)

    @property
    def cycles_per_step(self) -> int:
        """Clock cycles from ``start`` to the core going idle (the last cycle flushes)."""
        return self.groups * (self.row + PIPELINE_CYCLES) + 1


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OperandPort:
    """One operand of a product unit, read from a two-slot history buffer of its source.

    Attributes:
        role: ``q``, ``k``, ``v`` (Attention) or ``a``, ``g`` (Gate).
        src: the source population or input.
        kind: "input" (signed), "spikes" (0..D, unsigned) or "values" (a voltage, signed).
        width: bits of one source value in the buffer.
        src_size: number of source values.
        src_lanes: values the source writes per cycle (its core's lanes; 1 for inputs).
        index: per element of the unit, the source value it reads.
    """

    role: str
    src: str
    kind: str
    width: int
    src_size: int
    src_lanes: int
    index: IntArray

    @property
    def xw(self) -> int:
        """Signed width inside the unit: a spike count gets a zero sign bit."""
        return self.width + 1 if self.kind == "spikes" else self.width

    @property
    def binary(self) -> bool:
        """Binary spikes (0/1): the unit ANDs or masks instead of multiplying."""
        return self.kind == "spikes" and self.width == 1


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ProductUnit:
    """A product unit of the design: ``attention.v`` or ``gate.v`` and its operand buffers.

    Attributes:
        index: its output bus number, after the cores' (``out_valid_<index>``, ...).
        unit: the ``Attention`` or ``Gate`` of the net.
        operands: one port per operand, in the unit's order (q, k, v or a, g).
    """

    index: int
    unit: Product
    operands: tuple[OperandPort, ...]

    @property
    def width(self) -> int:
        """Bits of one output value (the output register)."""
        assert self.unit.fixed is not None
        return self.unit.fixed.output.width

    @property
    def cycles_per_step(self) -> int:
        """Clock cycles from ``start`` to the unit going idle: one per state entry (Attention:
        ``dim · d``) or element (Gate), plus the pipeline and the flush."""
        unit = self.unit
        if isinstance(unit, Attention):
            return unit.size * (unit.size // unit.heads) + ATTENTION_CYCLES
        return unit.size + GATE_CYCLES


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Program:
    """What ``emit`` writes and ``run`` simulates.

    Attributes:
        net: the quantized net.
        cores: one core per population, in ``net.populations`` order.
        units: one product unit per ``net.products`` entry, in that order.
        inputs: input name -> number of values.
        index_bits: width of every neuron / source index bus.
        target: the target name.
        board: the board's resources and clock.
    """

    net: Net
    cores: tuple[Core, ...]
    units: tuple[ProductUnit, ...]
    inputs: dict[str, int]
    index_bits: int
    target: str
    board: FpgaBoard

    @property
    def cycles_per_step(self) -> int:
        """Cycles of one time step: all cores and units run in parallel (inputs loaded
        before)."""
        units = [u.cycles_per_step for u in self.units]
        return max([*(c.cycles_per_step for c in self.cores), *units]) + CONTROL_CYCLES

    @property
    def input_cycles(self) -> int:
        """Cycles to write one step's input values (one per cycle)."""
        return sum(self.inputs.values())


def build_cores(net: Net, max_lanes: int = 1) -> tuple[Core, ...]:
    """One core per population with its projections and widths (no board checks).

    Args:
        net: a quantized net.
        max_lanes: a power of two; a core gets as many lanes as its neurons round up to a
            power of two, at most this.
    """
    spec = net.numeric
    assert spec is not None
    lanes = {k: min(max_lanes, 1 << (p.size - 1).bit_length()) for k, p in net.populations.items()}
    return tuple(_core(i, pop, net, spec, lanes) for i, pop in enumerate(net.populations.values()))


def build_units(net: Net, cores: tuple[Core, ...]) -> tuple[ProductUnit, ...]:
    """One unit per product of ``net``, numbered after ``cores`` (whose lanes its operand
    buffers take from their sources)."""
    spec = net.numeric
    assert spec is not None
    lanes = {c.pop.name: c.lanes for c in cores}
    roles = {"Attention": ("q", "k", "v"), "Gate": ("a", "g")}
    units = []
    for u, unit in enumerate(net.products.values()):
        ports = []
        for role, op in zip(roles[type(unit).__name__], unit.operands, strict=True):
            kind, width, _ = _source(net, op.src, spec)
            ports.append(
                OperandPort(
                    role=role,
                    src=op.src,
                    kind=kind,
                    width=width,
                    src_size=net.size_of(op.src),
                    src_lanes=lanes.get(op.src, 1),
                    index=op.index,
                )
            )
        units.append(ProductUnit(index=len(cores) + u, unit=unit, operands=tuple(ports)))
    return tuple(units)


def _source(net: Net, src: str, spec: NumericSpec) -> tuple[str, int, int]:
    """Kind, stored width and largest magnitude of a projection's source values.

    A spiking source of D levels sends counts 0..D: ``D.bit_length()`` (= ``ceil(log2(D + 1))``)
    unsigned bits, 1 for binary spikes; the largest magnitude D scales the worst-case sums.
    A product unit sends signed values of its output register's width.
    """
    if src in net.inputs:
        return "input", INPUT_BITS, 1 << (INPUT_BITS - 1)
    if src in net.products:
        fixed = net.products[src].fixed
        assert fixed is not None
        return "values", fixed.output.width, 1 << (fixed.output.width - 1)
    pop = net.populations[src]
    if pop.spiking:
        return "spikes", pop.levels.bit_length(), pop.levels
    return "values", spec.voltage.width, spec.voltage.max


def _core(index: int, pop: Population, net: Net, spec: NumericSpec, lanes: dict[str, int]) -> Core:
    fixed = pop.fixed
    assert fixed is not None
    projs = []
    for p in net.incoming(pop.name):
        assert p.fixed is not None
        kind, width, _ = _source(net, p.src, spec)
        projs.append(
            CoreProjection(
                name=p.name,
                src=p.src,
                kind=kind,
                src_size=net.size_of(p.src),
                delay=p.delay,
                exp=p.fixed.exp,
                width=width,
                src_lanes=lanes.get(p.src, 1),
                codes=sp.csr_matrix(p.fixed.codes, dtype=np.int64),
            )
        )
    if not projs:
        zero = sp.csr_matrix((pop.size, 1), dtype=np.int64)
        projs.append(
            CoreProjection(
                name="",
                src="",
                kind="none",
                src_size=1,
                delay=0,
                exp=0,
                width=1,
                src_lanes=1,
                codes=zero,
            )
        )
    # Signed source width inside the core: unsigned spike counts get a zero sign bit.
    xw = max(
        [
            2,
            *(p.width for p in projs if p.kind in ("input", "values")),
            *(p.width + 1 for p in projs if p.kind == "spikes"),
        ]
    )
    bias = fixed.bias_mant << fixed.bias_exp
    bias_width = max(2, int(np.abs(bias).max(initial=0)).bit_length() + 1)
    a_in, u_max, bounds = value_bounds(pop, projs, net, spec)
    width = max(int(b).bit_length() for b in bounds) + 1
    return Core(
        index=index,
        pop=pop,
        lanes=lanes[pop.name],
        projections=tuple(projs),
        xw=xw,
        width=width,
        u_width=u_max.bit_length() + 1,
        bias_width=bias_width,
        a_in=a_in,
    )


def value_bounds(
    pop: Population, projs: list[CoreProjection], net: Net, spec: NumericSpec
) -> tuple[int, int, list[int]]:
    """The largest ``|a << input_shift|``, the largest stored ``|u|``, and bounds on every
    intermediate magnitude of a core.

    ``|a|`` is bounded by the weight codes and the sources' ranges. ``u`` wraps once, so it
    stays within ``2**(w-1)`` while ``|a << input_shift| <= 2**w``; beyond that it settles
    below ``(|a << input_shift| - 2**w) / d`` where ``d`` is the smallest decay fraction.
    (``rules.current_bounded`` rejects ``d == 0`` with such inputs before this runs.)
    """
    fixed = pop.fixed
    assert fixed is not None
    half, full = 1 << (spec.current.width - 1), 1 << spec.current.width
    sums = []
    for p in projs:
        _, _, x_max = _source(net, p.src, spec) if p.kind != "none" else ("", 0, 0)
        acc = int(np.asarray(abs(p.codes).sum(axis=1)).max(initial=0)) * x_max
        sums.append((acc, acc << p.exp if p.exp >= 0 else -(-acc >> -p.exp)))
    a_in = sum(s for _, s in sums) << spec.input_shift
    u_max = half
    if a_in > full:
        d = int(fixed.du.min()) + spec.current_decay_offset
        u_max = max(half, -(-(a_in - full) * (1 << spec.decay.width) // max(d, 1)) + 1)
    bias = int(np.abs(fixed.bias_mant << fixed.bias_exp).max(initial=0))
    thresh = (1 << spec.threshold.width) << spec.threshold_shift
    bounds = [full, u_max + a_in, half + u_max + bias, thresh, *(a for pair in sums for a in pair)]
    return a_in, u_max, bounds
