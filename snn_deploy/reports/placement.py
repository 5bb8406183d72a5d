"""Placement and per-core utilization of a mapped net (pure: plain, JSON-ready dicts).

``placement(net)`` is the content of ``placement.json``; ``utilization(net, target)`` the
per-core table plus spike-traffic estimates. Both measure the placed net with
``target.cost``, the model the ``map`` pass and the design rules use (docs/MAPPING.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn_deploy.ir.net import Net
from snn_deploy.target import cost
from snn_deploy.target.schema import Target

PLACEMENT_SCHEMA = "snn-deploy-placement/1"

_BLOCK = 1 << 22
"""Synapses compared at a time when counting the traffic cut (bounds temporary memory)."""


def placement(net: Net) -> dict[str, Any]:
    """``placement.json``: every population's neuron ranges with their chip and core."""
    rows = [
        {
            "population": pop.name,
            "start": pl.start,
            "stop": pl.stop,
            "chip": pl.chip,
            "core": pl.core,
        }
        for pop in net.populations.values()
        for pl in sorted(pop.placement or (), key=lambda p: p.start)
    ]
    return {"schema": PLACEMENT_SCHEMA, "ranges": rows}


def _pct(used: int, limit: int | None) -> float | None:
    return None if not limit else round(100.0 * used / limit, 2)


def utilization(net: Net, target: Target) -> dict[str, Any]:
    """Per-core use of every limited resource (with % of the limit) and spike traffic.

    ``cores_used`` counts the populations' cores and ``product_cores``, the cores each product
    unit occupies on its own (``cost.product_cores``; not in ``cores``).

    ``traffic``: ``synapses`` (all), ``inter_core_synapses`` and ``inter_chip_synapses``
    (synapses whose source and destination neurons are on different cores / chips: the
    synapse-weighted cut), ``axons`` (output axons, one per neuron per destination core: the
    spike messages per step if every neuron fires) and ``inter_chip_axons``. Synapses from
    inputs come from the host and are left out of the cut.
    """
    lim = target.limits
    usage = cost.core_usage(net, lim)
    rows = [
        {
            "chip": u.chip,
            "core": u.core,
            "populations": list(u.populations),
            "neurons": u.neurons,
            "neurons_pct": _pct(u.neurons, lim.neurons_per_core),
            "synapse_bits": u.synapse_bits,
            "synapse_bits_pct": _pct(u.synapse_bits, lim.synapse_memory_bits_per_core),
            "fan_in_axons": u.fan_in,
            "fan_in_axons_pct": _pct(u.fan_in, lim.fan_in_axons_per_core),
            "fan_out_axons": u.fan_out,
            "fan_out_axons_pct": _pct(u.fan_out, lim.fan_out_axons_per_core),
            "profiles": u.profiles,
        }
        for u in usage
    ]
    synapses, inter_core, inter_chip = traffic_cut(net)
    bounds = cost.core_lower_bounds(net, lim)
    units = cost.product_cores(net, lim)
    return {
        "cores_used": len(usage) + sum(units.values()),
        "product_cores": units,
        "chips_used": len({u.chip for u in usage}),
        "cores_lower_bound": max(bounds.values()) if bounds else None,
        "lower_bounds": bounds,
        "encodings": {
            proj.name: c.kind
            for proj, c in zip(
                net.projections, _costs_in_projection_order(net, target), strict=True
            )
        },
        "cores": rows,
        "traffic": {
            "synapses": synapses,
            "inter_core_synapses": inter_core,
            "inter_chip_synapses": inter_chip,
            "axons": sum(u.fan_out for u in usage),
            "inter_chip_axons": sum(u.fan_out_remote_chip for u in usage),
        },
    }


def _costs_in_projection_order(net: Net, target: Target) -> list[cost.ProjectionCost]:
    per_pop = cost.population_costs(net, target.limits)
    taken = {name: 0 for name in per_pop}
    out = []
    for proj in net.projections:
        out.append(per_pop[proj.dst][taken[proj.dst]])
        taken[proj.dst] += 1
    return out


def traffic_cut(net: Net) -> tuple[int, int, int]:
    """Synapses between populations: all, across cores, across chips (inputs excluded)."""
    offsets = cost.global_offsets(net)
    n = cost.total_ids(net)
    core_of = np.full(n, -1, dtype=np.int64)
    chip_of = np.full(n, -1, dtype=np.int64)
    pairs: dict[tuple[int, int], int] = {}
    for pop in net.populations.values():
        for pl in pop.placement or ():
            g = pairs.setdefault((pl.chip, pl.core), len(pairs))
            core_of[offsets[pop.name] + pl.start : offsets[pop.name] + pl.stop] = g
            chip_of[offsets[pop.name] + pl.start : offsets[pop.name] + pl.stop] = pl.chip
    total = inter_core = inter_chip = 0
    for proj in net.projections:
        if proj.src not in net.populations:
            continue
        m = cost.codes_of(proj)
        indptr = m.indptr.astype(np.int64)
        row = 0
        while row < m.shape[0]:
            stop = max(row + 1, int(np.searchsorted(indptr, indptr[row] + _BLOCK, "right")) - 1)
            src = m.indices[indptr[row] : indptr[stop]].astype(np.int64) + offsets[proj.src]
            dst = np.repeat(
                np.arange(row, stop) + offsets[proj.dst], np.diff(indptr[row : stop + 1])
            )
            total += int(src.size)
            inter_core += int(np.count_nonzero(core_of[src] != core_of[dst]))
            inter_chip += int(np.count_nonzero(chip_of[src] != chip_of[dst]))
            row = stop
    return total, inter_core, inter_chip
