"""Activity-based energy: event counts from a simulation trace times the target's energies.

Three pure functions build the ``energy``, ``paper_energy`` and ``activity`` sections of
``report.json`` (docs/ENERGY.md gives every formula and figure):

* ``activity(net, trace, inputs, target)``: exact event counts over the whole batch, per
  population, per projection and per input, and the spike messages classified by where they
  go (same core, another core of the chip, another chip, host to chip).
* ``energy(counts, target)``: the target's hardware model, per inference.
* ``paper_energy(counts, target)``: the "theoretical energy" of SNN papers (45 nm MAC and AC
  figures) and the equivalent ANN's MAC energy.
* ``trace_summary(net, trace, inputs)``: a small summary for plots (firing rates, the raster
  of sample 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Trace
from snn_deploy.backends.xylo import cycles as xylo_cycles
from snn_deploy.ir.net import Attention, Net, Product
from snn_deploy.target import cost
from snn_deploy.target.schema import Basis, Target


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTime:
    """A backend's own wall-clock time per step and what it rests on."""

    us: float
    basis: str

    @classmethod
    def from_notes(cls, notes: Mapping[str, Any] | None) -> StepTime | None:
        """The time per step in a report's ``backend_notes`` (the FPGA backend's
        ``latency.us_per_step`` and ``latency.basis``), None if the backend gives none."""
        latency = (notes or {}).get("latency")
        if not isinstance(latency, Mapping) or latency.get("us_per_step") is None:
            return None
        return cls(us=float(latency["us_per_step"]), basis=str(latency.get("basis", "")))


MESSAGE_CLASSES = ("intra_core", "inter_core", "inter_chip", "from_host")
"""Where a spike message goes: its own core, another core of its chip, another chip; or from
the host (an input event) to a core."""


def _events(record: npt.NDArray[np.generic], size: int) -> npt.NDArray[np.int64]:
    """Per neuron, the number of (sample, step) slots with a non-zero output (not their sum:
    a spike of level 3 is one event)."""
    out: npt.NDArray[np.int64] = np.count_nonzero(record.reshape(-1, size), axis=0).astype(np.int64)
    return out


def activity(
    net: Net,
    trace: Trace,
    inputs: Mapping[str, npt.NDArray[np.generic]],
    target: Target | None = None,
) -> dict[str, Any]:
    """Exact event counts of a run, summed over the whole batch.

    An *event* is a non-zero output of a neuron or an input element in one step (a spike, or a
    graded value). A multi-level spike (docs/SEMANTICS.md §1.1) is one event and one message
    whatever its level: it travels as one payload and each synapse it reaches does one
    operation, ``w * s``. Every event is counted, also those of the last steps whose effect
    falls after the end of the run: the hardware processes a spike when it is sent.

    * ``synops``: per projection ``sum_j events_j * synapses_j`` (``synapses_j``: non-zero
      weights in source column ``j``).
    * ``neuron_updates``: ``samples * steps * neurons`` (every neuron updates every step).
    * ``spikes``: events of spiking populations.
    * ``messages``: each event of a source neuron sends one message to every core holding one
      of its output axons (one axon per neuron per destination core, as ``target.cost``
      counts fan-out; with ``target``, dense-encoded projections give every source an axon),
      classified by ``MESSAGE_CLASSES``; None if the net is not placed.

    Args:
        net: the quantized net that ran.
        trace: its trace.
        inputs: the inputs, ``[batch, time, size]`` per input name (``check_inputs`` form).
        target: the target, to find dense-encoded projections; None: synapses only.

    Returns:
        ``samples``, ``steps``, ``dt``, ``synops``, ``neuron_updates``, ``spikes``, ``messages``
        (class -> count, or None), ``populations`` (name -> ``neurons``, ``spiking``,
        ``spikes``, ``firing_rate``, ``neuron_updates``, ``synops_in``), ``inputs`` (name ->
        ``neurons``, ``events``, ``rate``) and ``projections`` (name -> ``src``, ``dst``,
        ``from_input``, ``synapses``, ``source_neurons``, ``source_events``, ``synops``).
    """
    record: dict[str, npt.NDArray[np.generic]] = {**inputs, **trace.populations, **trace.products}
    batch, steps = next(iter(trace.populations.values())).shape[:2]
    slots = batch * steps
    events = {name: _events(record[name], net.size_of(name)) for name in record}
    projections: dict[str, dict[str, Any]] = {}
    synops_in: dict[str, int] = defaultdict(int)
    for proj in net.projections:
        m = cost.codes_of(proj)
        per_column = np.diff(m.tocsc().indptr).astype(np.int64)
        ops = int(events[proj.src] @ per_column)
        synops_in[proj.dst] += ops
        projections[proj.name] = {
            "src": proj.src,
            "dst": proj.dst,
            "from_input": proj.src in net.inputs,
            "synapses": int(m.nnz),
            "source_neurons": net.size_of(proj.src),
            "source_events": int(events[proj.src].sum()),
            "synops": ops,
        }
    populations = {
        name: {
            "neurons": pop.size,
            "spiking": pop.spiking,
            "spikes": int(events[name].sum()) if pop.spiking else 0,
            "firing_rate": float(events[name].sum() / (slots * pop.size)) if pop.spiking else None,
            "neuron_updates": slots * pop.size,
            "synops_in": synops_in[name],
        }
        for name, pop in net.populations.items()
    }
    ins = {
        name: {
            "neurons": net.size_of(name),
            "events": int(events[name].sum()),
            "rate": float(events[name].sum() / (slots * net.size_of(name))),
        }
        for name in net.inputs
    }
    units = {name: product_events(unit, record) for name, unit in net.products.items()}
    return {
        "samples": int(batch),
        "steps": int(steps),
        "dt": net.dt,
        "synops": sum(p["synops"] for p in projections.values()),
        "product_ops": sum(u["ops"] for u in units.values()),
        "neuron_updates": sum(p["neuron_updates"] for p in populations.values()),
        "spikes": sum(p["spikes"] for p in populations.values()),
        "messages": messages(net, events, target),
        "populations": populations,
        "inputs": ins,
        "projections": projections,
        "products": units,
    }


def product_events(unit: Product, record: Mapping[str, npt.NDArray[np.generic]]) -> dict[str, Any]:
    """The operations a product unit performs in a run (docs/SEMANTICS.md §4, ENERGY.md §3).

    At step ``t`` the unit reads its operands' outputs of step ``t - 1``, so the operand values
    of steps ``0 .. steps - 2`` are processed in the run. Per head and processed step:

    * ``state_updates``: additions of a non-zero ``k_i · v_j`` into ``S``:
      ``nnz(k_h) · nnz(v_h)`` (an AND of two spikes for binary operands); whole-clip attention
      only during the clip's ``T`` steps;
    * ``decays``: ``d²`` shift-and-subtract operations for a head with a decay, else 0;
    * ``reads``: additions of a row of ``S`` where ``q`` is non-zero: ``nnz(q_h) · d``
      (whole-clip: the kept ``q`` of the clip, read in steps ``T .. 2T - 1``);
    * a ``Gate`` does ``products``: one multiplication per element whose operands are both
      non-zero.

    ``ops`` is their sum; ``operand_rates`` the non-zero fraction of each operand over the whole
    run (the seeds' firing rates, for the paper-style estimate).
    """
    batch, steps = np.asarray(record[unit.operands[0].src]).shape[:2]
    x = [
        np.asarray(record[op.src]).reshape(batch, steps, -1)[:, :, op.index] != 0
        for op in unit.operands
    ]
    names = ("q", "k", "v") if isinstance(unit, Attention) else ("a", "g")
    row: dict[str, Any] = {
        "kind": type(unit).__name__,
        "size": unit.size,
        "operand_rates": {n: float(o.mean()) for n, o in zip(names, x, strict=True)},
    }
    seen = [o[:, : max(0, steps - 1)] for o in x]  # processed in the run
    if not isinstance(unit, Attention):
        products = int(np.count_nonzero(seen[0] & seen[1]))
        return {**row, "products": products, "ops": products}
    q, k, v = (o.reshape(batch, o.shape[1], unit.heads, -1) for o in seen)
    d, processed = unit.size // unit.heads, q.shape[1]
    updating = processed if unit.causal else min(processed, unit.steps)
    updates = int(np.sum(k[:, :updating].sum(-1) * v[:, :updating].sum(-1)))
    decays = batch * updating * d * d * sum(1 for s in unit.decay if s)
    reading = processed if unit.causal else max(0, min(unit.steps, processed - unit.steps))
    reads = int(q[:, :reading].sum()) * d
    return {
        **row,
        "heads": unit.heads,
        "causal": unit.causal,
        "clip_steps": unit.steps,
        "state_updates": updates,
        "decays": decays,
        "reads": reads,
        "ops": updates + decays + reads,
    }


def messages(
    net: Net, events: Mapping[str, npt.NDArray[np.int64]], target: Target | None = None
) -> dict[str, int] | None:
    """Spike messages by class: every event of a neuron goes once to each core holding one of
    its output axons (``target.cost.core_fan_in``). None if some population is not placed.

    Args:
        net: a placed net.
        events: per input and population, the events of each neuron.
        target: for the dense-encoded projections (every source has an axon); None: none.
    """
    if any(p.placement is None for p in net.populations.values()):
        return None
    offsets = cost.global_offsets(net)
    n = cost.total_ids(net)
    flags = cost.dense_encoded(net, target.limits) if target else [False] * len(net.projections)
    cores = cost.placed_cores(net)
    index = {key: i for i, key in enumerate(cores)}
    chip_of = np.full(n, -1, dtype=np.int64)  # -1: an input, sent by the host
    core_of = np.full(n, -1, dtype=np.int64)
    for key, ranges in cores.items():
        for name, start, stop in ranges:
            chip_of[offsets[name] + start : offsets[name] + stop] = key[0]
            core_of[offsets[name] + start : offsets[name] + stop] = index[key]
    per_id = {c: np.zeros(n, dtype=np.int64) for c in MESSAGE_CLASSES}
    for key, keys in cost.core_fan_in(net, flags).items():
        host = chip_of[keys] < 0
        same_core = core_of[keys] == index[key]
        same_chip = chip_of[keys] == key[0]
        per_id["from_host"][keys[host]] += 1
        per_id["intra_core"][keys[same_core]] += 1
        per_id["inter_core"][keys[~host & same_chip & ~same_core]] += 1
        per_id["inter_chip"][keys[~host & ~same_chip]] += 1
    count = np.zeros(n, dtype=np.int64)
    for name, off in offsets.items():
        count[off : off + net.size_of(name)] = events[name]
    return {c: int(count @ per_id[c]) for c in MESSAGE_CLASSES}


_UNITS = {"pj": "pJ", "mw": "mW", "us": "us"}
"""The unit of an ``EnergyModel`` figure, from the suffix of its name."""

_BASES = {
    Basis.PUBLISHED: "published for {target}",
    Basis.LOIHI1: "Loihi 1 figure, none published for {target}",
    Basis.XYLO_AUDIO3: "Xylo Audio 3 measurement, none published for {target}",
    Basis.CMOS_45NM: "45 nm CMOS operation, no chip's figure",
}
"""How the summaries describe a figure's basis."""


def figure(target: Target, field: str) -> dict[str, Any]:
    """One ``EnergyModel`` figure as the reports give it: ``value``, ``unit``, ``basis`` (what
    it was measured on, ``schema.Basis``) and ``source``."""
    return {
        "value": getattr(target.energy, field),
        "unit": _UNITS[field.rsplit("_", 1)[1]],
        "basis": target.energy_basis[field].value,
        "source": target.sources[f"energy.{field}"],
    }


def basis_text(basis: str, target: str) -> str:
    """A figure's ``basis`` in words, e.g. "Loihi 1 figure, none published for loihi2"."""
    return _BASES[Basis(basis)].format(target=target)


def borrowed_lines(report: Mapping[str, Any]) -> list[str]:
    """One line per figure of the hardware model borrowed from another chip (basis
    ``loihi1``, ``xylo-audio3``), with its value and basis; the source is beside it in
    ``energy.figures`` and
    in report.html's table of figures."""
    target = report.get("target", "")
    return [
        f"{name} {f['value']:g} {f['unit']}: {basis_text(f['basis'], target)}"
        for name, f in report["energy"]["figures"].items()
        if f["basis"] in (Basis.LOIHI1.value, Basis.XYLO_AUDIO3.value)
    ]


_TERMS = (
    ("synops", "synop_pj"),
    ("neuron_updates", "neuron_update_pj"),
    ("messages_intra_core", "spike_pj"),
    ("messages_inter_core", "spike_inter_core_pj"),
    ("messages_inter_chip", "spike_inter_chip_pj"),
    ("messages_from_host", None),
)
"""Per-inference count -> the ``EnergyModel`` figure it is multiplied by (None: no field)."""


def _cycles(notes: Mapping[str, Any] | None, counts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The clock cycles per step of a run whose backend counts cycles (``cycle_model`` in its
    notes: Xylo, ``backends.xylo.cycles``), else None."""
    layout = (notes or {}).get("cycle_model")
    return None if layout is None else xylo_cycles.per_step(layout, counts)


def energy(
    counts: Mapping[str, Any],
    target: Target,
    cores_used: int | None = None,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The target's hardware energy model per inference (docs/ENERGY.md §1).

    ``dynamic = synops * synop_pj + neuron_updates * neuron_update_pj + sum over message
    classes of messages * figure``, or, for a core whose backend counts clock cycles
    (``cycle_model`` in its notes) and a target with ``cycle_pj``, ``cycles per step * steps *
    cycle_pj`` (the cycles cover every event); ``static = static_power_per_core_mw *
    cores_used * steps * step_time_us``, only when the target has both figures. A count
    without a figure is listed in ``not_modelled`` (then the total is a lower bound); with
    no figure for any event (the FPGA targets) the dynamic and total energy are None: not
    modelled, never 0.
    An unplaced net counts one within-core message per spike. The wall-clock latency is
    ``steps x`` the backend's time per step (``StepTime.from_notes``: the FPGA's cycles per
    step at its clock, Xylo's real-time ``dt``) or else the target's ``step_time_us``; unknown
    without either.

    Args:
        counts: ``activity`` counts.
        target: the target whose ``energy`` figures apply.
        cores_used: cores of the placement (for the static term).
        notes: the backend's notes (a report's ``backend_notes``): its own time per step,
            which the target's ``step_time_us`` gives way to, and its cycle model.

    Returns:
        ``counts``, ``per_inference`` (count -> per inference), ``energy_pj`` (count -> the
        figure used), ``breakdown_uj`` (count -> uJ per inference), ``dynamic_uj_per_inference``
        and ``total_uj_per_inference`` (None if no event has a figure),
        ``static_uj_per_inference`` (None if not modelled),
        ``total_is_lower_bound``, ``latency`` (``steps``, ``model_time_s``, ``wall_clock_s``,
        ``note``), ``not_modelled`` (reasons), ``figures`` (figure -> ``figure`` of it),
        ``cycles`` (None without a cycle model; else ``cycles`` per step and stage, the
        clock ``clock_mhz`` that runs them in the wall-clock time and the
        ``dynamic_power_uw`` over it).
    """
    e = target.energy
    step_time, cycles = StepTime.from_notes(notes), _cycles(notes, counts)
    samples = counts["samples"]
    per: dict[str, float] = {
        "synops": counts["synops"] / samples,
        "neuron_updates": counts["neuron_updates"] / samples,
        "spikes": counts["spikes"] / samples,
    }
    msgs = counts.get("messages")
    terms: list[tuple[str, str | None]] = list(_TERMS[:2])
    by_cycles = cycles is not None and e.cycle_pj is not None
    if by_cycles:
        assert cycles is not None
        per["clock_cycles"] = cycles["total"] * counts["steps"]
        terms = [("clock_cycles", "cycle_pj")]
    elif msgs is None:
        terms.append(("spikes", "spike_pj"))
    else:
        per.update({f"messages_{c}": msgs[c] / samples for c in MESSAGE_CLASSES})
        terms += list(_TERMS[2:])
    figures: dict[str, float] = {}
    used: dict[str, dict[str, Any]] = {}
    not_modelled: list[str] = []
    for key, field in terms:
        pj = getattr(e, field) if field else None
        if field is not None and pj is not None:
            figures[key] = pj
            used[field] = figure(target, field)
        elif per[key]:
            why = f"no {field} figure for target {target.name}" if field else "host I/O"
            not_modelled.append(f"{key}: {per[key]:.6g} per inference, not modelled ({why})")
    if msgs is None and not by_cycles:
        not_modelled.append("messages: the net is not placed; one within-core message per spike")
    if counts.get("product_ops"):
        per["product_ops"] = counts["product_ops"] / samples
        not_modelled.append(
            f"product_ops: {per['product_ops']:.6g} per inference, not modelled (no sourced "
            f"per-operation figure for Attention/Gate units on target {target.name})"
        )
    breakdown = {k: per[k] * pj * 1e-6 for k, pj in figures.items()}
    dynamic = sum(breakdown.values()) if figures else None
    steps = counts["steps"]
    step_us = e.step_time_us if step_time is None else step_time.us
    wall = None if step_us is None else steps * step_us * 1e-6
    if step_time is not None:
        note = f"{steps} steps x {step_us:.6g} us ({step_time.basis})"
    elif step_us is not None:
        used["step_time_us"] = figure(target, "step_time_us")
        note = f"{steps} steps x {step_us} us"
    else:
        note = (
            f"wall-clock time unknown: target {target.name} has no sourced time per step (on "
            f"Loihi it depends on activity and barrier synchronisation); latency is {steps} "
            "time steps"
        )
    static = None
    if e.static_power_per_core_mw is not None and wall is not None and cores_used:
        static = e.static_power_per_core_mw * 1e-3 * cores_used * wall * 1e6
        used["static_power_per_core_mw"] = figure(target, "static_power_per_core_mw")
    else:
        missing = [
            f
            for f, v in (
                ("static_power_per_core_mw", e.static_power_per_core_mw),
                ("step_time_us", step_us),
            )
            if v is None
        ]
        if not cores_used:
            missing.append("a placement")
        not_modelled.append(f"static energy: not modelled (no {' and no '.join(missing)})")
    return {
        "counts": dict(counts),
        "per_inference": per,
        "energy_pj": figures,
        "breakdown_uj": breakdown,
        "dynamic_uj_per_inference": dynamic,
        "static_uj_per_inference": static,
        "total_uj_per_inference": None if dynamic is None else dynamic + (static or 0.0),
        "total_is_lower_bound": bool(not_modelled),
        "latency": {
            "steps": steps,
            "model_time_s": steps * counts["dt"] if counts.get("dt") else None,
            "wall_clock_s": wall,
            "note": note,
        },
        "not_modelled": not_modelled,
        "figures": used,
        "cycles": None
        if not by_cycles or cycles is None
        else {
            "per_step": dict(cycles),
            "clock_mhz": None if not step_us else cycles["total"] / step_us,
            "dynamic_power_uw": None if dynamic is None or not wall else dynamic / wall,
        },
    }


def paper_energy(counts: Mapping[str, Any], target: Target) -> dict[str, Any] | None:
    """The "theoretical energy" of SNN papers and the equivalent ANN's (docs/ENERGY.md §2).

    Per projection ``l`` (a "layer"; ``FLOPs(l)`` = its non-zero synapses):
    ``fr(l)`` = events of its source / (samples * steps * source neurons);
    ``SOPs(l) = fr(l) * T * FLOPs(l)`` per inference. The first layer (projections from a graph
    input) is counted as ``FLOPs(l)`` dense MACs, once, as in the formula; the variant with
    ``T * FLOPs(l)`` MACs (a new input every step) is also given.
    ``E_SNN = E_MAC * MACs_first + E_AC * sum SOPs(l)``. ``sops_trace`` is the actual count
    (``activity`` synops, which weighs each source by its own fan-out), ``snn_uj_trace`` the
    energy with it. The equivalent ANN runs every projection once as MACs: ``E_ANN = E_MAC *
    sum FLOPs(l)``.

    Returns:
        None if the target has no ``mac_45nm_pj``/``ac_45nm_pj``; else the figures, ``steps``,
        per-layer rows, ``first_layer_macs``, ``sops``, ``snn_uj``, the variants, ``ann_macs``,
        ``ann_uj`` and ``ann_over_snn``.
    """
    e_mac, e_ac = target.energy.mac_45nm_pj, target.energy.ac_45nm_pj
    if e_mac is None or e_ac is None:
        return None
    samples, steps = counts["samples"], counts["steps"]
    layers = []
    for name, p in counts["projections"].items():
        fr = p["source_events"] / (samples * steps * p["source_neurons"])
        first = bool(p["from_input"])
        layers.append(
            {
                "projection": name,
                "src": p["src"],
                "dst": p["dst"],
                "first_layer": first,
                "flops": p["synapses"],
                "input_firing_rate": fr,
                "macs": p["synapses"] if first else 0,
                "sops": 0.0 if first else fr * steps * p["synapses"],
                "sops_trace": 0.0 if first else p["synops"] / samples,
            }
        )
    units = [
        _paper_product(name, u, steps, samples) for name, u in counts.get("products", {}).items()
    ]
    macs = sum(r["macs"] for r in layers)
    sops = sum(r["sops"] for r in [*layers, *units])
    sops_trace = sum(r["sops_trace"] for r in [*layers, *units])
    flops = sum(r["flops"] for r in [*layers, *units])
    snn = (e_mac * macs + e_ac * sops) * 1e-6
    ann = e_mac * flops * 1e-6
    return {
        "formula": "E_SNN = E_MAC * MACs(first layer) + E_AC * sum_l fr(l) * T * FLOPs(l)",
        "e_mac_pj": e_mac,
        "e_ac_pj": e_ac,
        "steps": steps,
        "layers": layers,
        "products": units,
        "first_layer_macs": macs,
        "sops": sops,
        "sops_trace": sops_trace,
        "snn_uj": snn,
        "snn_uj_trace": (e_mac * macs + e_ac * sops_trace) * 1e-6,
        "first_layer_macs_all_steps": macs * steps,
        "snn_uj_first_layer_all_steps": (e_mac * macs * steps + e_ac * sops) * 1e-6,
        "ann_macs": flops,
        "ann_uj": ann,
        "ann_over_snn": ann / snn if snn else None,
        "figures": {k: figure(target, k) for k in ("mac_45nm_pj", "ac_45nm_pj")},
    }


def _paper_product(name: str, u: Mapping[str, Any], steps: int, samples: int) -> dict[str, Any]:
    """A product unit counted the way the seed papers count attention (docs/ENERGY.md §3).

    Attention as the quadratic form ``(q·kᵀ)·v`` over ``P`` query-key pairs per head
    (``T²`` whole-clip with ``T`` the clip's steps, ``T(T+1)/2`` causal with ``T`` the run's
    steps): ``FLOPs = 2 · heads · P · d`` (``q·kᵀ`` and the product with ``v``), ``SOPs =
    fr_q · heads·P·d + fr_v · heads·P·d``; a Gate: ``FLOPs = T · size``, ``SOPs = fr_g · FLOPs``.
    ``sops_trace`` is what the unit really does (``product_events`` ops, per inference).
    """
    rates = u["operand_rates"]
    if u["kind"] == "Gate":
        flops = steps * u["size"]
        sops = rates["g"] * flops
    else:
        t = u["clip_steps"] if not u["causal"] else steps
        pairs = t * t if not u["causal"] else t * (t + 1) // 2
        half = pairs * u["size"]  # heads · P · d
        flops = 2 * half
        sops = (rates["q"] + rates["v"]) * half
    return {
        "unit": name,
        "kind": u["kind"],
        "flops": flops,
        "sops": sops,
        "sops_trace": u["ops"] / samples,
    }


def trace_summary(
    net: Net,
    trace: Trace,
    inputs: Mapping[str, npt.NDArray[np.generic]],
    *,
    max_neurons: int = 200,
    max_steps: int = 200,
    max_output_neurons: int = 40,
) -> dict[str, Any]:
    """A small JSON-ready summary of a run for plots (``report.json`` key ``activity``).

    Per input and population (in net order): ``firing_rate`` (events per neuron per step over
    the batch; None for a non-spiking population), ``rate_per_step`` (the same, per step, over
    the first ``max_steps`` steps) and ``raster``: sample 0's events over the first
    ``max_steps`` steps of its first neurons (``max_neurons`` shared evenly between the groups),
    one string per neuron with one character per step (``1``: an event), so the summary stays
    below about ``max_neurons * max_steps`` bytes. ``outputs``: per Output node, its
    ``source``, whether that is ``spiking`` (else the record is a read-out voltage),
    ``neurons``, ``steps`` and ``rows``: sample 0's record over the first ``max_steps`` steps
    of its first ``max_output_neurons`` neurons, one string of space-separated values per
    neuron.
    """
    record: dict[str, npt.NDArray[np.generic]] = {**inputs, **trace.populations}
    batch, steps = next(iter(trace.populations.values())).shape[:2]
    names = [*net.inputs, *net.populations]
    quota = max(1, max_neurons // max(1, len(names)))
    shown_steps = min(steps, max_steps)
    groups = []
    for name in names:
        size = net.size_of(name)
        pop = net.populations.get(name)
        spiking = pop is None or pop.spiking
        nz = record[name].reshape(batch, steps, size) != 0
        shown = min(size, quota)
        group: dict[str, Any] = {
            "name": name,
            "kind": "input" if pop is None else "population",
            "neurons": size,
            "spiking": spiking,
            "firing_rate": float(nz.mean()) if spiking else None,
            "rate_per_step": [round(float(x), 6) for x in nz[:, :shown_steps].mean(axis=(0, 2))]
            if spiking
            else None,
            "raster": None,
        }
        if spiking:
            rows = nz[0, :shown_steps, :shown].T
            group["raster"] = {
                "neurons": shown,
                "steps": shown_steps,
                "rows": ["".join("1" if b else "0" for b in row) for row in rows],
            }
        groups.append(group)
    outputs = {
        name: _output_trace(net, trace, name, shown_steps, max_output_neurons)
        for name in net.outputs
    }
    return {"samples": int(batch), "steps": int(steps), "groups": groups, "outputs": outputs}


def _output_trace(
    net: Net, trace: Trace, name: str, steps: int, max_neurons: int
) -> dict[str, Any]:
    """Output ``name``'s record for sample 0 over the first ``steps`` steps of its first
    ``max_neurons`` neurons: one string of space-separated values per neuron (integers for a
    quantized net), so that report.json keeps one line per neuron."""
    source = net.outputs[name]
    pop = net.populations.get(source)
    x = np.asarray(trace.outputs[name])[0, :steps].reshape(steps, -1)
    shown = x[:, :max_neurons].T
    exact = shown.dtype.kind in "iub"
    cells = shown.astype(np.int64 if exact else np.float64).tolist()
    rows = [" ".join(f"{v:d}" if exact else f"{v:.6g}" for v in row) for row in cells]
    return {
        "source": source,
        "spiking": pop is None or pop.spiking,
        "neurons": int(x.shape[1]),
        "steps": int(steps),
        "rows": rows,
    }


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The terminal summary's energy section (``energy`` and ``paper_energy`` of a report)."""
    from snn_deploy.reports.render import table

    e, p = report.get("energy"), report.get("paper_energy")
    if e is None:
        return ["Energy: no activity (pass --inputs data.npz to simulate and count events)"]
    per, c = e["per_inference"], e["counts"]
    bound = " (lower bound)" if e["total_is_lower_bound"] else ""
    static = e["static_uj_per_inference"]
    out = [
        f"Energy per inference, hardware model of {report.get('target')} "
        f"({c['samples']} samples, {c['steps']} steps)",
        table(
            ["event", "count", "pJ each", "uJ"],
            [[k, per[k], e["energy_pj"].get(k), e["breakdown_uj"].get(k)] for k in per],
        ),
        (
            f"dynamic {e['dynamic_uj_per_inference']:.4g} uJ, static "
            f"{'-' if static is None else f'{static:.4g}'} uJ, total "
            f"{e['total_uj_per_inference']:.4g} uJ per inference{bound}"
            if e["breakdown_uj"]
            else f"total: not modelled (target {report.get('target')} has no energy figure "
            "for any of these events)"
        ),
        f"latency: {e['latency']['note']}",
        *([] if e.get("cycles") is None else [cycle_line(e["cycles"])]),
        *(f"  borrowed: {s}" for s in borrowed_lines(report)),
        *(["  sources: report.json energy.figures"] if borrowed_lines(report) else []),
        *(f"  note: {s}" for s in e["not_modelled"]),
    ]
    if p is not None:
        out += [
            "",
            f"Paper-style energy (45 nm: E_MAC {p['e_mac_pj']:g} pJ, E_AC {p['e_ac_pj']:g} pJ, "
            f"T = {p['steps']})",
            table(
                ["projection", "first layer", "FLOPs", "input rate", "MACs", "SOPs"],
                [
                    [r[k] for k in ("projection", "first_layer", "flops")]
                    + [r[k] for k in ("input_firing_rate", "macs", "sops")]
                    for r in p["layers"]
                ]
                + [
                    [f"{r['unit']} ({r['kind']})", False, r["flops"], None, 0, r["sops"]]
                    for r in p.get("products", [])
                ],
            ),
            f"SNN {p['snn_uj']:.4g} uJ (trace SOPs {p['snn_uj_trace']:.4g} uJ); equivalent ANN "
            f"{p['ann_macs']} MACs = {p['ann_uj']:.4g} uJ",
        ]
    return out


def cycle_line(cycles: Mapping[str, Any]) -> str:
    """The cycle model in one line (``energy``'s ``cycles``), for the summary and report.html."""
    c = cycles["per_step"]
    stages = ", ".join(f"{k} {c[k]:.4g}" for k in xylo_cycles.STAGES)
    clock, power = cycles["clock_mhz"], cycles["dynamic_power_uw"]
    return (
        f"clock cycles: {c['total']:.4g} per step ({stages})"
        + ("" if clock is None else f"; real time needs {clock:.4g} MHz")
        + ("" if power is None else f", dynamic power {power:.4g} uW")
    )
