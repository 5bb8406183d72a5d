"""Activity-based energy: event counts from a simulation trace times the target's energies."""

from __future__ import annotations

from typing import Any

import numpy as np

from snn_deploy.backends.base import Trace
from snn_deploy.ir.net import Net
from snn_deploy.target.schema import Target


def activity(net: Net, trace: Trace, inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """Total synaptic operations, neuron updates and spikes over the whole batch.

    A synaptic operation is one non-zero source value delivered over one synapse: each step, a
    projection costs ``sum_j [x_j != 0] * (synapses in column j)``.
    """
    record = {**{k: v for k, v in inputs.items()}, **trace.populations}
    sops = 0
    for proj in net.projections:
        codes = proj.fixed.codes if proj.fixed is not None else proj.weight
        fan_out = np.diff(codes.tocsc().indptr)
        active = np.count_nonzero(record[proj.src].reshape(-1, codes.shape[1]), axis=0)
        sops += int(active @ fan_out)
    batch, steps = next(iter(trace.populations.values())).shape[:2]
    updates = batch * steps * sum(p.size for p in net.populations.values())
    spikes = sum(
        int(np.count_nonzero(trace.populations[k])) for k, p in net.populations.items() if p.spiking
    )
    return {
        "samples": int(batch),
        "steps": int(steps),
        "synops": sops,
        "neuron_updates": updates,
        "spikes": spikes,
    }


def energy(counts: dict[str, int], target: Target) -> dict[str, Any]:
    """Energy per inference from ``activity`` counts (only the terms the target has figures for)."""
    e = target.energy
    per = {k: counts[k] / counts["samples"] for k in ("synops", "neuron_updates", "spikes")}
    terms = {
        "synops": (per["synops"], e.synop_pj),
        "neuron_updates": (per["neuron_updates"], e.neuron_update_pj),
        "spikes": (per["spikes"], e.spike_pj),
    }
    breakdown = {k: n * pj * 1e-6 for k, (n, pj) in terms.items() if pj is not None}
    return {
        "counts": counts,
        "per_inference": per,
        "breakdown_uj": breakdown,
        "total_uj_per_inference": sum(breakdown.values()),
        "energy_pj": {k: pj for k, (_, pj) in terms.items() if pj is not None},
    }
