"""The frozen, validated ``Target``: what a hardware or software target offers.

All numbers come from ``targets/*.toml`` (see targets/README.md); this module holds types only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-core and per-system capacities; None means unlimited (software targets).

    ``spike_payload_bits`` is the widest integer payload a spike can carry: a population of D
    spike levels (docs/SEMANTICS.md §1.1) needs ``ceil(log2(D + 1))`` bits; 0 means binary
    spikes only. A product unit (docs/SEMANTICS.md §4.4) needs its state register within
    ``product_state_bits``, its output register within ``product_payload_bits`` (the graded
    spike that carries it) and all its state within ``product_state_bits_per_core`` (the units
    occupy cores of their own, docs/MAPPING.md). ``populations_per_core`` bounds how many
    populations share a core (1: a core per population, as the FPGA backend builds them).

    A core of three weight matrices (Xylo; ``Net.matrix_of``) is bounded by
    ``input_channels`` (all inputs together), ``hidden_neurons`` (every population that is
    not a read-out, plus the alias neurons that extend fan-out), ``output_neurons`` (the
    read-outs, ``Net.readouts``), ``hidden_fan_out`` (recurrent synapses of one hidden
    neuron; beyond it an alias neuron takes the rest, ``aliases_per_neuron`` each),
    ``synapse_bank_entries`` (recurrent synapses of one synaptic state), and the spike
    levels every hidden and every read-out neuron has (``hidden_spike_levels``,
    ``output_spike_levels``: the chip's, not a maximum).

    ``synaptic_currents`` bounds the synaptic currents of a neuron (``Population.currents``:
    1, or 2 with a second current); on a core of three matrices it bounds the hidden neurons
    and ``output_synaptic_currents`` the read-outs.
    """

    neurons_per_core: int | None = None
    synapse_memory_bits_per_core: int | None = None
    fan_in_axons_per_core: int | None = None
    fan_out_axons_per_core: int | None = None
    cores_per_chip: int | None = None
    chips: int | None = None
    max_delay_steps: int | None = None
    spike_payload_bits: int | None = None
    product_state_bits: int | None = None
    product_payload_bits: int | None = None
    product_state_bits_per_core: int | None = None
    populations_per_core: int | None = None
    input_channels: int | None = None
    hidden_neurons: int | None = None
    output_neurons: int | None = None
    hidden_fan_out: int | None = None
    synapse_bank_entries: int | None = None
    aliases_per_neuron: int | None = None
    hidden_spike_levels: int | None = None
    output_spike_levels: int | None = None
    synaptic_currents: int | None = None
    output_synaptic_currents: int | None = None


class Basis(enum.Enum):
    """What an energy figure was measured on: ``basis =`` of every figure in ``[energy]``.

    ``PUBLISHED``: published for the target's own hardware. ``LOIHI1``: borrowed from Loihi 1
    because nothing is published for the target's hardware (the reports mark it). ``XYLO_AUDIO3``:
    measured on SynSense's Xylo Audio 3, borrowed for Xylo Audio 2 likewise. ``CMOS_45NM``:
    one operation of 45 nm CMOS logic, no chip's figure (the paper-style energy, and the
    simulator's synaptic operation).
    """

    PUBLISHED = "published"
    LOIHI1 = "loihi1"
    XYLO_AUDIO3 = "xylo-audio3"
    CMOS_45NM = "cmos-45nm"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyModel:
    """Energy figures of a target (docs/ENERGY.md); None where the target has no sourced figure.

    Attributes:
        synop_pj: one synaptic operation (one event delivered over one synapse).
        neuron_update_pj: one neuron updated for one time step.
        spike_pj: one spike message to a core it is already on (the fallback per spike when
            the net is not placed).
        spike_inter_core_pj: one spike message to another core of the same chip.
        spike_inter_chip_pj: one spike message to a core on another chip.
        static_power_per_core_mw: static (leakage) power of one used core.
        step_time_us: wall-clock time of one time step (latency and static energy need it).
        mac_45nm_pj: one multiply-accumulate, 45 nm, for the paper-style "theoretical" energy.
        ac_45nm_pj: one accumulate, 45 nm, for the paper-style "theoretical" energy.
        cycle_pj: one clock cycle of a core whose backend counts cycles (``cycle_model`` in its
            notes: Xylo); then it replaces the per-event figures.
    """

    synop_pj: float | None = None
    neuron_update_pj: float | None = None
    spike_pj: float | None = None
    spike_inter_core_pj: float | None = None
    spike_inter_chip_pj: float | None = None
    static_power_per_core_mw: float | None = None
    step_time_us: float | None = None
    mac_45nm_pj: float | None = None
    ac_45nm_pj: float | None = None
    cycle_pj: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FpgaBoard:
    """An FPGA board's resources (``[fpga]`` in a target file), for the FPGA backend.

    Attributes:
        device: the FPGA part.
        family: Yosys synthesis family: "xc7" (``synth_xilinx``) or "ice40" (``synth_ice40``).
        luts: logic LUTs (6-input on xc7, 4-input on ice40).
        ffs: flip-flops.
        bram_blocks: block RAMs, in units of ``bram_block_bits``.
        bram_block_bits: bits of one block RAM unit (18 Kib RAMB18 on xc7, 4 Kib EBR on ice40).
        bram_max_width: widest port of one block RAM unit.
        dsps: DSP / multiplier blocks.
        clock_mhz: the board clock the latency figures use.
    """

    device: str
    family: str
    luts: int
    ffs: int
    bram_blocks: int
    bram_block_bits: int
    bram_max_width: int
    dsps: int
    clock_mhz: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A compile target.

    Attributes:
        name: the name users pass to ``--target``.
        description: one line for ``snn-deploy targets``.
        backend: the backend that emits and runs programs for this target.
        numeric: the neuron core's integer arithmetic.
        reset_modes: the reset modes the hardware implements.
        reset_timings: when a reset may act (docs/SEMANTICS.md §1.2); absent from the file:
            immediate only.
        threshold_compares: the spike tests it runs (``>``, ``>=``); absent: ``>`` only.
        products: the product units (``Attention``, ``Gate``; docs/SEMANTICS.md §4) its backend
            runs; absent from the file: none.
        limits: capacities checked by the design rules.
        energy: per-event energies for the energy report.
        energy_basis: per ``energy`` figure given, what it was measured on.
        fpga: board resources of an FPGA target, None otherwise.
        sources: dotted key (``limits.neurons_per_core``) -> where the number comes from.
        path: the TOML file it was loaded from.
        numeric_path: the ``targets/formats/`` file its arithmetic was loaded from.
    """

    name: str
    description: str
    backend: str
    numeric: NumericSpec
    reset_modes: frozenset[ResetMode]
    limits: Limits
    energy: EnergyModel
    energy_basis: Mapping[str, Basis]
    sources: Mapping[str, str]
    path: Path
    numeric_path: Path
    fpga: FpgaBoard | None = None
    products: frozenset[str] = frozenset()
    reset_timings: frozenset[ResetTiming] = frozenset({ResetTiming.IMMEDIATE})
    threshold_compares: frozenset[ThresholdCompare] = frozenset({ThresholdCompare.GT})
