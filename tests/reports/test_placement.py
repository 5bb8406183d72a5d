"""Placement and utilization reports: schema, exact per-core numbers and traffic cut."""

from __future__ import annotations

import json

import numpy as np

from snn_deploy.passes.map import place
from snn_deploy.reports.placement import PLACEMENT_SCHEMA, placement, traffic_cut, utilization
from tests.passes.test_map import W, net, pop, proj, target


def _chain():
    # x(2) -dense-> a(4) -dense-> b(2); 2 neurons per core, 2 cores per chip
    return net(
        {"x": (2,)},
        [pop("a", 4), pop("b", 2, vth=20)],
        [proj("xa", "x", "a", np.ones((4, 2))), proj("ab", "a", "b", np.ones((2, 4)))],
    )


def test_placement_json_lists_ranges_in_net_order():
    t = target(neurons_per_core=2, cores_per_chip=2)
    got = placement(place(_chain(), t.limits))
    assert got == {
        "schema": PLACEMENT_SCHEMA,
        "ranges": [
            {"population": "a", "start": 0, "stop": 2, "chip": 0, "core": 0},
            {"population": "a", "start": 2, "stop": 4, "chip": 0, "core": 1},
            {"population": "b", "start": 0, "stop": 2, "chip": 1, "core": 0},
        ],
    }
    json.dumps(got)  # JSON-ready


def test_utilization_rows_and_traffic():
    t = target(
        neurons_per_core=2,
        synapse_memory_bits_per_core=100 * W,
        fan_in_axons_per_core=8,
        fan_out_axons_per_core=4,
        cores_per_chip=2,
    )
    u = utilization(place(_chain(), t.limits), t)
    assert u["cores_used"] == 3 and u["chips_used"] == 2
    assert u["encodings"] == {"xa": "dense", "ab": "dense"}
    first, _, last = u["cores"]
    assert first == {
        "chip": 0,
        "core": 0,
        "populations": ["a"],
        "neurons": 2,
        "neurons_pct": 100.0,
        "synapse_bits": 2 * 2 * W,
        "synapse_bits_pct": 4.0,
        "fan_in_axons": 2,
        "fan_in_axons_pct": 25.0,
        "fan_out_axons": 2,  # each a neuron reaches b's one core
        "fan_out_axons_pct": 50.0,
        "profiles": 1,
    }
    assert last["populations"] == ["b"] and last["synapse_bits"] == 2 * 4 * W
    assert last["fan_in_axons"] == 4 and last["fan_out_axons"] == 0
    # a -> b: 8 synapses, all between cores and between chips; 4 axons, all to chip 1
    assert u["traffic"] == {
        "synapses": 8,
        "inter_core_synapses": 8,
        "inter_chip_synapses": 8,
        "axons": 4,
        "inter_chip_axons": 4,
    }


def test_traffic_cut_is_zero_on_one_core():
    assert traffic_cut(place(_chain(), target().limits)) == (8, 0, 0)


def test_profiles_count_distinct_neuron_parameters():
    t = target(neurons_per_core=8)
    (row,) = utilization(place(_chain(), t.limits), t)["cores"]
    assert row["profiles"] == 2  # vth 10 (a) and vth 20 (b)
    assert row["neurons_pct"] == 75.0 and row["synapse_bits_pct"] is None
