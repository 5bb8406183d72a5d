"""The frozen, validated ``Target``: what a hardware or software target offers.

All numbers come from ``targets/*.toml`` (see targets/README.md); this module holds types only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import ResetMode


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Per-core and per-system capacities; None means unlimited (software targets)."""

    neurons_per_core: int | None = None
    synapse_memory_bits_per_core: int | None = None
    fan_in_axons_per_core: int | None = None
    fan_out_axons_per_core: int | None = None
    cores_per_chip: int | None = None
    chips: int | None = None
    max_delay_steps: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergyModel:
    """Energy per event in picojoules; None where the target has no figure."""

    synop_pj: float | None = None
    neuron_update_pj: float | None = None
    spike_pj: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A compile target.

    Attributes:
        name: the name users pass to ``--target``.
        description: one line for ``snn-deploy targets``.
        backend: the backend that emits and runs programs for this target.
        numeric: the neuron core's integer arithmetic.
        reset_modes: the reset modes the hardware implements.
        limits: capacities checked by the design rules.
        energy: per-event energies for the energy report.
        sources: dotted key (``limits.neurons_per_core``) -> where the number comes from.
        path: the TOML file it was loaded from.
    """

    name: str
    description: str
    backend: str
    numeric: NumericSpec
    reset_modes: frozenset[ResetMode]
    limits: Limits
    energy: EnergyModel
    sources: Mapping[str, str]
    path: Path
