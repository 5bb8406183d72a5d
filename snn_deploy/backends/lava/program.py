"""The Lava program: a pure description of the processes a quantized ``Net`` becomes.

Lava's ``LIF`` holds one ``du``, ``dv`` and ``vth`` per process, so a population whose
neurons differ in them is split into one block per distinct (du, dv, vth). Every block is a
process of the population's full size: its own neurons at their population indices, the
others *silent* (no bias, no synapse row: their ``u`` and ``v`` stay 0, and ``0 > vth << 6``
never holds, so they never spike). All blocks of a population therefore send spike vectors of
the same shape, disjoint in their non-zeros, and a synapse's input port sums them (Lava's
``PyInPortVectorDense.recv`` adds every connected port) into the population's whole spike
vector. So each projection becomes one synapse process per destination block, which computes
the projection's full sum for that block's rows and floor-shifts the sum once, as the
simulator does (docs/SEMANTICS.md §2). A synapse per (source block, destination block) would
floor each partial sum on its own, which differs for a negative exponent; Lava 0.10.0 cannot
concatenate the blocks' ports instead (``concat_with`` raises "ConcatPorts are not yet
supported" when the network compiles).

Each synapse is a ``Dense`` (or ``Sparse`` below 10 % density, or ``DelayDense``/
``DelaySparse`` with a delay) whose weights are our 9-bit codes given to Lava as MIXED sign mode
with ``num_weight_bits = 9``, so Lava's own clip and truncation leave them unchanged and its
``weight_exp`` shift of the sum is ours. Rows of the destination's other blocks are zero.

A population with multi-level spikes or reset by subtraction becomes a ``MultiLevelLIF``
(``multilevel.py``) instead of Lava's ``LIF``, and the synapses it feeds take its spikes as
integer payloads (``num_message_bits``: the bits of its top level).

Product units (``Attention``, ``Gate``; ``products.py``) are one Lava process each, reading
their operands' sources directly (every block of a source population connects to the
operand's port). Every non-spiking population is a ``VoltageLIF``, which sends its voltage
(what a ``Gate`` multiplies) and never resets: Lava's ``LIF`` with the largest threshold would
spike and reset a voltage at its saturation bound (``vth << 6`` = 8,388,544 < 2**23 − 1).
The synapses reading a unit take its output as an integer payload (``num_message_bits``: the
output register's width).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare

IntArray = npt.NDArray[np.int64]

MAX_PAYLOAD = 2**31 - 1
"""The largest spike a Lava LIF's ``s_out`` port (int32) carries."""

PRODUCT_PAYLOAD_BITS = 32
"""The widest (signed) output register a product unit's int32 ``s_out`` port carries."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LifBlock:
    """One Lava ``LIF`` process: the neurons of a population sharing (du, dv, vth).

    The process has ``size`` neurons, one per neuron of the population; ``neurons`` are the
    block's own (population indices, which are also their process indices), and the others are
    silent (``bias_mant`` 0, no synapse rows). ``levels`` > 1, ``subtract``, a late or carried
    ``timing`` or ``ge`` (``v >= θ``) make it a ``MultiLevelLIF`` (docs/SEMANTICS.md §1.1-1.2);
    a non-spiking population is a ``VoltageLIF``,
    which never resets and sends ``v`` (``vth``, the largest mantissa, is not compared).
    """

    name: str
    population: str
    size: int
    neurons: IntArray
    du: int
    dv: int
    vth: int
    bias_mant: IntArray
    bias_exp: IntArray
    spiking: bool
    levels: int = 1
    subtract: bool = False
    timing: ResetTiming = ResetTiming.IMMEDIATE
    ge: bool = False

    @property
    def multilevel(self) -> bool:
        """True if Lava's ``LIF`` cannot run it: it needs ``MultiLevelLIF`` (spike levels, a
        subtract reset, a late or carried reset, or ``v >= θ``)."""
        return (
            self.levels > 1 or self.subtract or self.ge or self.timing is not ResetTiming.IMMEDIATE
        )

    @property
    def message_bits(self) -> int:
        """``num_message_bits`` of the synapses it feeds: 0 for binary spikes, else the bits of
        its top level (Lava then computes ``W @ s`` on the integer payloads)."""
        return self.levels.bit_length() if self.levels > 1 else 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SynapseBlock:
    """One Lava connection process of a projection into one block.

    Attributes:
        src: the source population, every block of which feeds the process's one input port
            (or an input name, one ``RingBuffer``).
        dst: the destination block.
        codes: ``[dst population size, src size]`` weight codes; rows of other blocks are 0.
    """

    name: str
    src: str
    dst: str
    codes: sp.csr_matrix
    exp: int
    delay: int


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LavaProgram:
    """Everything needed to build the Lava process graph of ``net``."""

    net: Net
    blocks: tuple[LifBlock, ...]
    synapses: tuple[SynapseBlock, ...]


def lower_program(net: Net) -> LavaProgram:
    """Split populations by neuron profile and projections by destination block.

    Raises:
        DesignRuleError: a non-spiking population feeds a projection (Lava LIF sends spikes
            only), or a population has more spike levels than the int32 spike port holds,
            listing every such case.
    """
    spec = net.numeric
    if spec is None:
        raise ValueError("the Lava backend takes a quantized net")
    graded = sorted(
        {
            p.src
            for p in net.projections
            if p.src in net.populations and not net.populations[p.src].spiking
        }
    )
    if graded:
        raise DesignRuleError(
            "cannot run on Loihi: "
            + "; ".join(
                f"[spiking-source] {name} ({net.populations[name].node_type}) outputs its voltage "
                "but feeds a projection, and a Lava LIF sends only spikes; fix: make it a "
                "spiking neuron or read it out as an Output"
                for name in graded
            )
        )
    _check_product_payloads(net)
    wide = [p for p in net.populations.values() if p.levels > MAX_PAYLOAD]
    if wide:
        raise DesignRuleError(
            "cannot run in Lava: "
            + "; ".join(
                f"[spike-payload] {p.name}: {p.levels} spike levels, but a Lava LIF sends int32 "
                f"spikes; fix: use at most {MAX_PAYLOAD} spike levels"
                for p in wide
            )
        )
    blocks: list[LifBlock] = []
    labels: dict[str, IntArray] = {}  # population -> the block index of each neuron
    for name, pop in net.populations.items():
        f = pop.fixed
        assert f is not None
        vth = f.vth if f.vth is not None else np.full(pop.size, spec.threshold.max)
        profiles = np.stack([f.du, f.dv, vth], axis=1)
        unique, which = np.unique(profiles, axis=0, return_inverse=True)
        labels[name] = which.ravel()
        for k, (du, dv, th) in enumerate(unique):
            idx = np.flatnonzero(labels[name] == k)
            blocks.append(
                LifBlock(
                    name=name if len(unique) == 1 else f"{name}#{k}",
                    population=name,
                    size=pop.size,
                    neurons=idx,
                    du=int(du),
                    dv=int(dv),
                    vth=int(th),
                    bias_mant=_only(f.bias_mant, idx),
                    bias_exp=_only(f.bias_exp, idx),
                    spiking=pop.spiking,
                    levels=pop.levels,
                    subtract=pop.spiking and pop.reset is ResetMode.SUBTRACT,
                    timing=pop.reset_timing,
                    ge=pop.spiking and pop.threshold_compare is ThresholdCompare.GE,
                )
            )
    by_population = {name: [b for b in blocks if b.population == name] for name in net.populations}
    synapses: list[SynapseBlock] = []
    for proj in net.projections:
        assert proj.fixed is not None
        dst_blocks = by_population[proj.dst]
        for block, codes in zip(
            dst_blocks,
            _split_rows(proj.fixed.codes, labels[proj.dst], len(dst_blocks)),
            strict=True,
        ):
            if codes.nnz:
                synapses.append(
                    SynapseBlock(
                        name=f"{proj.name}:{proj.src}->{block.name}",
                        src=proj.src,
                        dst=block.name,
                        codes=codes,
                        exp=proj.fixed.exp,
                        delay=proj.delay,
                    )
                )
    return LavaProgram(net=net, blocks=tuple(blocks), synapses=tuple(synapses))


def _check_product_payloads(net: Net) -> None:
    """Every product unit's output register fits the int32 ``s_out`` payload."""
    wide = [
        (name, unit.fixed.output.width)
        for name, unit in net.products.items()
        if unit.fixed is not None and unit.fixed.output.width > PRODUCT_PAYLOAD_BITS
    ]
    if wide:
        raise DesignRuleError(
            "cannot run in Lava: "
            + "; ".join(
                f"[product-payload] {name}: output register {bits} bits, but a Lava product "
                f"unit sends int32 payloads (limit {PRODUCT_PAYLOAD_BITS} bits); fix: fewer "
                "steps, heads of fewer channels or a larger Gate shift"
                for name, bits in wide
            )
        )


def _only(values: IntArray, idx: IntArray) -> IntArray:
    """``values`` at ``idx``, 0 elsewhere (a block's silent neurons)."""
    out = np.zeros_like(values)
    out[idx] = values[idx]
    return out


def _split_rows(codes: sp.csr_matrix, label: IntArray, blocks: int) -> list[sp.csr_matrix]:
    """``codes`` once per block ``k``, with the rows of the other blocks zero (same shape and
    dtype); ``label[i]`` is the block of row ``i``."""
    if blocks == 1:
        return [codes.copy()]  # writeable, like the split ones: the net's arrays are read-only
    coo = codes.tocoo()
    row_block = label[coo.row]
    order = np.argsort(row_block, kind="stable")
    bounds = np.searchsorted(row_block[order], np.arange(blocks + 1))
    out = []
    for k in range(blocks):
        take = order[bounds[k] : bounds[k + 1]]
        out.append(
            sp.csr_matrix(
                (coo.data[take], (coo.row[take], coo.col[take])),
                shape=codes.shape,
                dtype=codes.dtype,
            )
        )
    return out
