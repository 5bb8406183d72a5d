"""Energy report: exact event and message counts on hand-computed nets, the hardware model,
the paper-style energy, and the trace summary."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from snn_deploy import api
from snn_deploy.backends.base import Trace
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Gate, Net, Placement
from snn_deploy.reports.energy import (
    StepTime,
    activity,
    energy,
    messages,
    paper_energy,
    summary_lines,
    trace_summary,
)
from snn_deploy.target import cost
from snn_deploy.target.load import load_target
from snn_deploy.target.schema import Basis, EnergyModel
from tests.passes.test_map import net, pop, proj


def _placed(n: Net, where: dict[str, list[tuple[int, int, int, int]]]) -> Net:
    """``where``: population -> [(start, stop, chip, core)]."""
    pops = {
        name: dataclasses.replace(
            p,
            placement=tuple(
                Placement(start=a, stop=b, chip=c, core=k) for a, b, c, k in where[name]
            ),
        )
        for name, p in n.populations.items()
    }
    return n.replace(populations=pops)


def _hand_net() -> Net:
    """x(2) -> a(3) -> b(2), plus a0 -> a2. a0,a1 and b0 on chip 0 core 0; a2 on chip 0
    core 1; b1 on chip 1 core 0."""
    n = net(
        {"x": (2,)},
        [pop("a", 3), pop("b", 2)],
        [
            proj("xa", "x", "a", [[1, 0], [1, 1], [0, 1]]),
            proj("aa", "a", "a", [[0, 0, 0], [0, 0, 0], [1, 0, 0]]),
            proj("ab", "a", "b", [[1, 1, 0], [0, 0, 1]]),
        ],
    )
    return _placed(n, {"a": [(0, 2, 0, 0), (2, 3, 0, 1)], "b": [(0, 1, 0, 0), (1, 2, 1, 0)]})


def _hand_trace() -> tuple[dict[str, np.ndarray], Trace]:
    """One sample, 3 steps: x0 fires twice, x1 once; a0 twice, a1 and a2 once; b1 once."""
    x = np.array([[[1, 0], [1, 1], [0, 0]]])
    a = np.array([[[0, 0, 0], [1, 0, 1], [1, 1, 0]]])
    b = np.array([[[0, 0], [0, 0], [0, 1]]])
    return {"x": x}, Trace(outputs={"y": b}, populations={"a": a, "b": b}, u={}, v={})


def test_counts_are_exact_on_a_hand_computed_net():
    inputs, trace = _hand_trace()
    c = activity(_hand_net(), trace, inputs)
    # synops: xa 2*2 + 1*2 = 6 (every x column has 2 synapses); aa: a0 2 * 1 = 2;
    # ab: (2 + 1 + 1) * 1 = 4
    assert c["projections"]["xa"]["synops"] == 6
    assert c["projections"]["aa"]["synops"] == 2
    assert c["projections"]["ab"]["synops"] == 4
    assert (c["samples"], c["steps"], c["synops"], c["neuron_updates"], c["spikes"]) == (
        1,
        3,
        12,
        15,
        5,
    )
    assert c["populations"]["a"] == {
        "neurons": 3,
        "spiking": True,
        "spikes": 4,
        "firing_rate": 4 / 9,
        "neuron_updates": 9,
        "synops_in": 8,
    }
    assert c["populations"]["b"]["spikes"] == 1 and c["populations"]["b"]["synops_in"] == 4
    assert c["inputs"] == {"x": {"neurons": 2, "events": 3, "rate": 0.5}}
    # axons: x0 -> core (0,0); x1 -> (0,0), (0,1); a0 -> (0,0) [ab], (0,1) [aa];
    # a1 -> (0,0); a2 (on core (0,1)) -> (1,0). Times the events: x0 2, x1 1, a0 2, a1 1, a2 1.
    assert c["messages"] == {"intra_core": 3, "inter_core": 2, "inter_chip": 1, "from_host": 4}
    json.dumps(c)


def test_dense_encoded_projections_send_to_every_core_of_their_destination():
    """With the loihi1 limits xa and ab are dense-encoded (cheaper than sparse), so every source
    neuron has an axon on every core holding a destination row, as ``target.cost`` counts."""
    inputs, trace = _hand_trace()
    c = activity(_hand_net(), trace, inputs, load_target("loihi1"))
    # x0, x1 -> (0,0), (0,1): 2 * 2 + 1 * 2 = 6 from the host.
    # a0 (2 events) -> (0,0), (1,0), (0,1); a1 (1) -> (0,0), (1,0); a2 (1) -> (0,0), (1,0).
    assert c["messages"] == {"intra_core": 3, "inter_core": 3, "inter_chip": 4, "from_host": 6}
    assert c["synops"] == 12  # synaptic operations count non-zero synapses only


def test_messages_when_every_neuron_fires_once_equal_the_fan_out_axons():
    n = _hand_net()
    limits = load_target("loihi1").limits
    ones = {name: np.ones(n.size_of(name), dtype=np.int64) for name in [*n.inputs, *n.populations]}
    got = messages(n, ones, load_target("loihi1"))
    usage = cost.core_usage(n, limits)
    assert got is not None
    assert got["intra_core"] + got["inter_core"] + got["inter_chip"] == sum(
        u.fan_out for u in usage
    )
    assert got["inter_chip"] == sum(u.fan_out_remote_chip for u in usage)


def test_unplaced_net_has_no_message_counts():
    inputs, trace = _hand_trace()
    n = net(
        {"x": (2,)},
        [pop("a", 3), pop("b", 2)],
        [proj("xa", "x", "a", np.ones((3, 2))), proj("ab", "a", "b", np.ones((2, 3)))],
    )
    c = activity(n, trace, inputs)
    assert c["messages"] is None
    e = energy(c, load_target("loihi1"))
    assert e["breakdown_uj"]["spikes"] == pytest.approx(5 * 1.7e-6)
    assert any("not placed" in s for s in e["not_modelled"])


def _target(**figures: float):
    return dataclasses.replace(
        load_target("loihi1"),
        energy=EnergyModel(**figures),
        energy_basis=dict.fromkeys(figures, Basis.PUBLISHED),
        sources={f"energy.{k}": "a test figure" for k in figures},
    )


def test_energy_is_counts_times_figures():
    inputs, trace = _hand_trace()
    c = activity(_hand_net(), trace, inputs)
    t = _target(
        synop_pj=2.0,
        neuron_update_pj=1.0,
        spike_pj=0.5,
        spike_inter_core_pj=3.0,
        spike_inter_chip_pj=7.0,
        static_power_per_core_mw=1.0,
        step_time_us=10.0,
    )
    e = energy(c, t, cores_used=3)
    # 12 * 2 + 15 * 1 + 3 * 0.5 + 2 * 3 + 1 * 7 = 53.5 pJ
    assert e["dynamic_uj_per_inference"] == pytest.approx(53.5e-6)
    assert e["breakdown_uj"]["messages_inter_chip"] == pytest.approx(7e-6)
    # 1 mW * 3 cores * 3 steps * 10 us = 90 nJ
    assert e["static_uj_per_inference"] == pytest.approx(0.09)
    assert e["total_uj_per_inference"] == pytest.approx(0.09 + 53.5e-6)
    assert e["latency"]["wall_clock_s"] == pytest.approx(30e-6)
    assert e["latency"]["model_time_s"] == pytest.approx(3e-3)
    # host messages have no figure: listed, so the total is a lower bound
    assert e["total_is_lower_bound"] and e["not_modelled"][0].startswith("messages_from_host: 4")


def test_missing_figures_are_reported_not_guessed():
    inputs, trace = _hand_trace()
    c = activity(_hand_net(), trace, inputs)
    e = energy(c, load_target("loihi1"), cores_used=3)
    assert "messages_inter_chip" not in e["breakdown_uj"]
    assert e["static_uj_per_inference"] is None and e["latency"]["wall_clock_s"] is None
    text = " ".join(e["not_modelled"])
    assert "messages_inter_chip: 1 per inference" in text and "static energy" in text
    assert e["figures"]["synop_pj"] == {
        "value": 23.6,
        "unit": "pJ",
        "basis": "published",
        "source": load_target("loihi1").sources["energy.synop_pj"],
    }
    assert e["figures"]["synop_pj"]["source"].startswith('Davies et al., "Loihi: A Neuromorphic')
    assert e["per_inference"]["synops"] == 12


def test_a_target_without_figures_has_no_energy_and_a_backend_step_time_gives_latency():
    """The FPGA targets: no figure for any event, so the dynamic and total energy are None
    (not 0); the backend's time per step (its cycles at its clock) gives the wall clock, in
    place of the target's ``step_time_us``, which it has none of."""
    inputs, trace = _hand_trace()
    c = activity(_hand_net(), trace, inputs)
    fpga = load_target("fpga-artix7-35t")
    e = energy(c, fpga, cores_used=2)
    assert e["energy_pj"] == {} and e["breakdown_uj"] == {}
    assert e["dynamic_uj_per_inference"] is None and e["total_uj_per_inference"] is None
    assert e["latency"]["wall_clock_s"] is None
    assert "wall-clock time unknown" in e["latency"]["note"]
    notes = {"latency": {"us_per_step": 31.88, "basis": "3188 cycles at 100 MHz"}}
    timed = energy(c, fpga, 2, notes)
    assert timed["latency"]["wall_clock_s"] == pytest.approx(3 * 31.88e-6)
    assert timed["latency"]["note"] == "3 steps x 31.88 us (3188 cycles at 100 MHz)"
    assert timed["total_uj_per_inference"] is None
    assert "no energy figure for any of these events" in "\n".join(
        summary_lines({"target": fpga.name, "energy": timed, "paper_energy": None})
    )
    assert StepTime.from_notes(notes) == StepTime(us=31.88, basis="3188 cycles at 100 MHz")
    assert StepTime.from_notes({"lif_processes": 2}) is None and StepTime.from_notes(None) is None


def test_per_inference_divides_by_samples():
    inputs, trace = _hand_trace()
    two = {"x": np.concatenate([inputs["x"]] * 2)}
    pops = {k: np.concatenate([v] * 2) for k, v in trace.populations.items()}
    c = activity(_hand_net(), Trace(outputs={}, populations=pops, u={}, v={}), two)
    assert c["synops"] == 24
    assert energy(c, load_target("loihi1"))["per_inference"]["synops"] == 12


def test_paper_energy_follows_the_formula():
    inputs, trace = _hand_trace()
    p = paper_energy(activity(_hand_net(), trace, inputs), load_target("loihi1"))
    assert p is not None
    rows = {r["projection"]: r for r in p["layers"]}
    # first layer xa: 4 dense MACs; aa: fr(a) = 4 / 9, SOPs = 4/9 * 3 * 1; ab: 4/9 * 3 * 3
    assert rows["xa"]["first_layer"] and rows["xa"]["macs"] == 4 and rows["xa"]["sops"] == 0
    assert rows["aa"]["sops"] == pytest.approx(4 / 3) and rows["ab"]["sops"] == pytest.approx(4)
    assert p["sops_trace"] == 6  # aa 2 + ab 4
    assert p["snn_uj"] == pytest.approx((4.6 * 4 + 0.9 * 16 / 3) * 1e-6)
    assert p["snn_uj_first_layer_all_steps"] == pytest.approx((4.6 * 12 + 0.9 * 16 / 3) * 1e-6)
    assert p["ann_macs"] == 8 and p["ann_uj"] == pytest.approx(4.6 * 8e-6)


def test_paper_energy_needs_the_45nm_figures():
    inputs, trace = _hand_trace()
    assert paper_energy(activity(_hand_net(), trace, inputs), _target(synop_pj=1.0)) is None


def _relay_net() -> Net:
    """x -> p1 -> p2, one neuron each: every input spike makes p1 spike one step later."""
    return net(
        {"x": (1,)},
        [pop("p1", 1, vth=1), pop("p2", 1, vth=1)],
        [proj("x1", "x", "p1", [[10]]), proj("12", "p1", "p2", [[10]])],
    )


@pytest.mark.parametrize("steps", [10, 20, 40])
def test_simulated_counts_on_a_relay(steps):
    x = np.zeros((1, steps, 1), dtype=np.int64)
    x[:, ::2] = 1  # fixed rate 1/2
    n = _relay_net()
    c = activity(n, simulate(n, {"x": x}), {"x": x})
    # p1 fires at 1, 3, ..., steps - 1; p2 at 2, 4, ..., steps - 2
    assert c["populations"]["p1"]["spikes"] == steps // 2
    assert c["populations"]["p2"]["spikes"] == steps // 2 - 1
    assert c["synops"] == steps // 2 + steps // 2
    assert c["neuron_updates"] == 2 * steps


def test_fewer_steps_give_proportionally_lower_sop_energy():
    """The paper-style SOP energy scales with T at a fixed firing rate (the claim papers make
    when they cut time steps); the first-layer MACs do not."""
    n, t = _relay_net(), load_target("sim")
    out = {}
    for steps in (40, 16):
        x = np.zeros((1, steps, 1), dtype=np.int64)
        x[:, ::2] = 1
        out[steps] = paper_energy(activity(n, simulate(n, {"x": x}), {"x": x}), t)
    assert out[40]["sops"] == pytest.approx(out[16]["sops"] * 40 / 16)
    assert out[40]["first_layer_macs"] == out[16]["first_layer_macs"] == 1
    sop_uj = {k: v["snn_uj"] - v["e_mac_pj"] * v["first_layer_macs"] * 1e-6 for k, v in out.items()}
    assert sop_uj[40] == pytest.approx(sop_uj[16] * 40 / 16)


def test_trace_summary_is_small_and_exact():
    inputs, trace = _hand_trace()
    s = trace_summary(_hand_net(), trace, inputs, max_neurons=4, max_steps=2)
    x, a, b = s["groups"]
    assert b["raster"] == {"neurons": 1, "steps": 2, "rows": ["00"]}  # b1 fires at step 2
    assert (x["name"], x["kind"], a["kind"]) == ("x", "input", "population")
    assert a["firing_rate"] == pytest.approx(4 / 9)
    assert a["rate_per_step"] == [0.0, pytest.approx(2 / 3, abs=1e-6)]
    # 4 neurons shared by 3 groups: 1 each; first 2 steps
    assert a["raster"] == {"neurons": 1, "steps": 2, "rows": ["01"]}
    assert x["raster"]["rows"] == ["11"]
    json.dumps(s)


def test_trace_summary_of_a_long_run_stays_small():
    rng = np.random.default_rng(0)
    n = net({"x": (300,)}, [pop("a", 300)], [proj("xa", "x", "a", np.eye(300))])
    x = (rng.random((2, 500, 300)) < 0.3).astype(np.int64)
    s = trace_summary(n, simulate(n, {"x": x}), {"x": x})
    assert all(g["raster"]["neurons"] <= 100 and g["raster"]["steps"] == 200 for g in s["groups"])
    assert len(json.dumps(s, indent=2)) < 80_000  # 200 neurons x 200 steps + rates


def test_summary_lines_print_both_models():
    inputs, trace = _hand_trace()
    t = load_target("loihi1")
    c = activity(_hand_net(), trace, inputs, t)
    report = {"target": "loihi1", "energy": energy(c, t, 3), "paper_energy": paper_energy(c, t)}
    text = "\n".join(summary_lines(report))
    assert "hardware model of loihi1" in text and "messages_inter_chip" in text
    assert "Paper-style energy" in text and "equivalent ANN 8 MACs" in text
    assert summary_lines({"energy": None})[0].startswith("Energy: no activity")


def test_a_multi_level_spike_is_one_event_and_one_message():
    """The hand trace with levels: a0 sends 3 then 1, a1 4, a2 2, b1 2. The counts are those of
    the binary trace (one event, one message and one synop per synapse for each non-zero spike),
    not the sums of the levels."""
    levels = {k: dataclasses.replace(p, levels=4) for k, p in _hand_net().populations.items()}
    graded = _hand_net().replace(populations=levels)
    inputs, binary = _hand_trace()
    a = np.array([[[0, 0, 0], [3, 0, 2], [1, 4, 0]]])
    b = np.array([[[0, 0], [0, 0], [0, 2]]])
    trace = Trace(outputs={"y": b}, populations={"a": a, "b": b}, u={}, v={})
    got = activity(graded, trace, inputs, load_target("loihi2"))
    want = activity(_hand_net(), binary, inputs, load_target("loihi2"))
    assert got == want
    assert (got["spikes"], got["synops"]) == (5, 12)  # not 12 = 3+1+4+2+2 spikes
    got_summary = trace_summary(graded, trace, inputs)
    want_summary = trace_summary(_hand_net(), binary, inputs)
    assert got_summary["groups"] == want_summary["groups"]
    assert got_summary["outputs"]["y"]["rows"] == ["0 0 0", "0 0 2"]  # the levels as sent


def test_agreement_counts_spike_events_and_compares_levels():
    levels = {k: dataclasses.replace(p, levels=4) for k, p in _hand_net().populations.items()}
    graded = _hand_net().replace(populations=levels)
    a_float = np.array([[[0, 0, 0], [3, 0, 2], [1, 4, 0]]])
    a_fixed = np.array([[[0, 0, 0], [2, 0, 2], [1, 4, 0]]])  # one spike of another level
    b = np.array([[[0, 0], [0, 0], [0, 2]]])
    f = Trace(outputs={"y": b}, populations={"a": a_float, "b": b}, u={}, v={})
    q = Trace(outputs={"y": b}, populations={"a": a_fixed, "b": b}, u={}, v={})
    got = api.agreement(f, q, graded)["populations"]["a"]
    assert got == {
        "spike_agreement": 8 / 9,
        "float_spikes": 4,
        "quantized_spikes": 4,
        "spike_f1": 1.0,  # events: the same slots spike, at another level in one
        "spike_count_correlation": 1.0,
        "float_rate": 4 / 9,
        "flag": None,
    }


@pytest.mark.parametrize(
    ("causal", "decay", "clip"), [(True, (0, 2), 6), (False, (0, 0), 4), (False, (0, 0), 9)]
)
def test_product_events_count_what_the_units_do(causal, decay, clip):
    """The counts equal a plain loop over the steps the unit processes (operands of steps
    0 .. T-2, read one step later), and the paper-style rows follow the stated formulas."""
    from snn_deploy.passes.lower import lower
    from snn_deploy.passes.quantize import quantize
    from tests.backends.sim.test_products import SPEC, product_graph

    rng = np.random.default_rng(3)
    graph = product_graph(rng, dim=4, heads=2, levels=3, decay=decay, causal=causal, steps=clip)
    net = quantize(lower(graph, 1e-4), SPEC)
    steps = 14
    x = (rng.random((2, steps, 5)) < 0.6).astype(np.int64)
    trace = simulate(net, {"x": x})
    counts = activity(net, trace, {"x": x.reshape(2, steps, -1)})
    record = {**trace.populations, "x": x}
    want = {"state_updates": 0, "decays": 0, "reads": 0, "products": 0}
    for unit in net.products.values():
        ops = [record[o.src][:, :, o.index] for o in unit.operands]
        for b in range(2):
            for n in range(steps - 1):  # processed at step n + 1
                if isinstance(unit, Gate):
                    want["products"] += int(np.sum((ops[0][b, n] != 0) & (ops[1][b, n] != 0)))
                    continue
                q, k, v = (o[b, n].reshape(2, 2) != 0 for o in ops)
                updating = causal or n < clip
                for h in range(2):
                    if updating:
                        want["state_updates"] += int(k[h].sum() * v[h].sum())
                        want["decays"] += 4 if decay[h] else 0
                    if causal:
                        want["reads"] += int(q[h].sum()) * 2
                    elif clip <= n < 2 * clip:
                        kept = ops[0][b, n - clip].reshape(2, 2) != 0
                        want["reads"] += int(kept[h].sum()) * 2
    units = counts["products"]
    att, gate = (next(u for u in units.values() if u["kind"] == k) for k in ("Attention", "Gate"))
    assert {k: att[k] for k in ("state_updates", "decays", "reads")} == {
        k: want[k] for k in ("state_updates", "decays", "reads")
    }
    assert gate["products"] == want["products"] > 0
    assert att["state_updates"] > 0 and att["reads"] > 0
    assert counts["product_ops"] == sum(u["ops"] for u in units.values())

    target = load_target("sim")
    e = energy(counts, target)
    assert e["total_is_lower_bound"] and any("product_ops" in s for s in e["not_modelled"])
    p = paper_energy(counts, target)
    rows = {r["kind"]: r for r in p["products"]}
    t = steps if causal else clip
    pairs = t * (t + 1) // 2 if causal else t * t
    rates = att["operand_rates"]
    assert rows["Attention"]["flops"] == 2 * pairs * 4
    assert rows["Attention"]["sops"] == pytest.approx((rates["q"] + rates["v"]) * pairs * 4)
    assert rows["Gate"]["sops"] == pytest.approx(gate["operand_rates"]["g"] * steps * 4)
    assert rows["Attention"]["sops_trace"] == att["ops"] / 2
