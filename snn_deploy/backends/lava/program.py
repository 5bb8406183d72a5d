"""The Lava program: a pure description of the processes a quantized ``Net`` becomes.

Lava's ``LIF`` holds one ``du``, ``dv`` and ``vth`` per process, so a population whose
neurons differ in them is split into one block per distinct (du, dv, vth); projections are
split to match. Every projection becomes a ``Dense`` (or ``Sparse`` below 10 % density, or
``DelayDense``/``DelaySparse`` with a delay) whose weights are our 9-bit codes given to Lava as
MIXED sign mode with ``num_weight_bits = 9``, so Lava's own clip and truncation leave them
unchanged and its ``weight_exp`` shift of the sum is ours (docs/SEMANTICS.md §2).

A population with multi-level spikes or reset by subtraction becomes a ``MultiLevelLIF``
(``multilevel.py``) instead of Lava's ``LIF``, and the synapses it feeds take its spikes as
integer payloads (``num_message_bits``: the bits of its top level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import ResetMode

IntArray = npt.NDArray[np.int64]

MAX_PAYLOAD = 2**31 - 1
"""The largest spike a Lava LIF's ``s_out`` port (int32) carries."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LifBlock:
    """One Lava ``LIF`` process: the neurons of a population sharing (du, dv, vth).

    ``vth`` of a non-spiking population is the largest mantissa; its voltage is recorded.
    ``levels`` > 1 or ``subtract`` make it a ``MultiLevelLIF`` (docs/SEMANTICS.md §1.1).
    """

    name: str
    population: str
    neurons: IntArray
    du: int
    dv: int
    vth: int
    bias_mant: IntArray
    bias_exp: IntArray
    spiking: bool
    levels: int = 1
    subtract: bool = False

    @property
    def multilevel(self) -> bool:
        """True if Lava's ``LIF`` cannot run it: it needs ``MultiLevelLIF``."""
        return self.levels > 1 or self.subtract

    @property
    def message_bits(self) -> int:
        """``num_message_bits`` of the synapses it feeds: 0 for binary spikes, else the bits of
        its top level (Lava then computes ``W @ s`` on the integer payloads)."""
        return self.levels.bit_length() if self.levels > 1 else 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SynapseBlock:
    """One Lava connection process from a block (or an input) to a block."""

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
    """Split populations by neuron profile and projections to match.

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
    members: dict[str, list[tuple[str, IntArray]]] = {
        k: [(k, np.arange(net.size_of(k)))] for k in net.inputs
    }
    for name, pop in net.populations.items():
        f = pop.fixed
        assert f is not None
        vth = f.vth if f.vth is not None else np.full(pop.size, spec.threshold.max)
        profiles = np.stack([f.du, f.dv, vth], axis=1)
        unique, which = np.unique(profiles, axis=0, return_inverse=True)
        members[name] = []
        for k, (du, dv, th) in enumerate(unique):
            idx = np.flatnonzero(which.ravel() == k)
            block = name if len(unique) == 1 else f"{name}#{k}"
            members[name].append((block, idx))
            blocks.append(
                LifBlock(
                    name=block,
                    population=name,
                    neurons=idx,
                    du=int(du),
                    dv=int(dv),
                    vth=int(th),
                    bias_mant=f.bias_mant[idx],
                    bias_exp=f.bias_exp[idx],
                    spiking=pop.spiking,
                    levels=pop.levels,
                    subtract=pop.spiking and pop.reset is ResetMode.SUBTRACT,
                )
            )
    synapses: list[SynapseBlock] = []
    for proj in net.projections:
        assert proj.fixed is not None
        for src, src_idx in members[proj.src]:
            for dst, dst_idx in members[proj.dst]:
                codes = proj.fixed.codes[dst_idx][:, src_idx]
                if codes.nnz:
                    synapses.append(
                        SynapseBlock(
                            name=f"{proj.name}:{src}->{dst}",
                            src=src,
                            dst=dst,
                            codes=sp.csr_matrix(codes),
                            exp=proj.fixed.exp,
                            delay=proj.delay,
                        )
                    )
    return LavaProgram(net=net, blocks=tuple(blocks), synapses=tuple(synapses))
