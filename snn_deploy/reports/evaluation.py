"""Dataset-scale evaluation figures, built from exact per-shard counts (``snn-deploy evaluate``).

A shard's run becomes ``shard_stats``: integer counts only (correct predictions, agreeing
predictions and spike slots, spike-count sums for the correlation, the ``activity`` event
counts, mismatching values against ``sim``). ``merge`` adds the counts of every shard in
shard order, and ``finish`` turns the sums into the figures (fractions, energy per
inference), so the result is the same, bit for bit, whichever worker ran which shard and in
whatever order they finished. The figures use the names of ``report.json`` (``agreement``,
``energy``, ``paper_energy``), so the budgets of ``reports.gates`` read them unchanged.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Trace
from snn_deploy.ir.net import Net
from snn_deploy.reports.decision import DECISION_RULE, NO_DECISION, decide
from snn_deploy.reports.energy import activity, energy, paper_energy
from snn_deploy.reports.render import table
from snn_deploy.reports.verification import Check, compare, vectors
from snn_deploy.target.schema import Target

SCHEMA = "snn-deploy-evaluation/1"

STATIC = frozenset(
    {"steps", "dt", "neurons", "spiking", "src", "dst", "from_input", "synapses"}
    | {"source_neurons", "kind", "size", "heads", "causal", "clip_steps"}
)
"""``activity`` keys that describe the net, not the run: equal in every shard, never added."""


def predictions(record: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The predicted class of each sample from an output record ``[batch, time, classes]``
    (classes flat in C order): ``reports.decision.decide`` on its sum over time, the rule of
    ``api.agreement`` (``NO_DECISION`` for an undecided read-out, which matches no label)."""
    return decide(np.asarray(record).sum(axis=1).reshape(np.shape(record)[0], -1))


def shard_stats(
    net: Net,
    data: Mapping[str, npt.NDArray[np.float64]],
    trace: Trace,
    float_trace: Trace,
    *,
    labels: npt.NDArray[np.int64] | None,
    target: Target,
    reference: Trace | None = None,
    offset: int = 0,
) -> dict[str, Any]:
    """The exact counts of one shard's run.

    Args:
        net: the quantized net that ran.
        data: its inputs, ``[batch, time, size]`` (``check_inputs`` form).
        trace: the run on the evaluated backend.
        float_trace: the float reference on the same inputs.
        labels: the class of each sample, or None.
        target: the compiled target (its energy model and dense encodings).
        reference: the ``sim`` run to compare ``trace`` with, value for value (``--verify``).
        offset: the index of the shard's first sample in the whole set (for mismatches).

    Returns:
        ``samples``, ``outputs`` (name -> ``correct``, ``float_correct``, ``agree``,
        ``float_active``, ``float_undecided``, ``quantized_undecided``), ``populations``
        (name -> slot and spike counts and the sums of the per-(sample, neuron) spike
        counts), ``activity`` (``energy.activity``) and ``verify`` (vectors key ->
        ``slots``, ``mismatches``, ``first``, ``problem``) or None.
    """
    samples = int(next(iter(data.values())).shape[0])
    outputs = {}
    for name, rec in trace.outputs.items():
        q, f = predictions(rec), predictions(float_trace.outputs[name])
        floats = np.asarray(float_trace.outputs[name]).reshape(samples, -1)
        outputs[name] = {
            "agree": int(np.sum(q == f)),
            "float_active": int(np.count_nonzero(np.any(floats != 0, axis=-1))),
            "float_undecided": int(np.count_nonzero(f == NO_DECISION)),
            "quantized_undecided": int(np.count_nonzero(q == NO_DECISION)),
            "correct": None if labels is None else int(np.sum(q == labels)),
            "float_correct": None if labels is None else int(np.sum(f == labels)),
        }
    pops = {}
    for name, pop in net.populations.items():
        if pop.spiking:
            pops[name] = _spike_counts(float_trace.populations[name], trace.populations[name])
    counts = activity(net, trace, data, target)
    check = None
    if reference is not None:
        checks = compare(vectors({}, reference), vectors({}, trace))
        check = {c.name: _shifted(c, offset) for c in checks}
    return {
        "samples": samples,
        "outputs": outputs,
        "populations": pops,
        "activity": _strip_rates(counts),
        "verify": check,
    }


def _spike_counts(f: npt.NDArray[Any], q: npt.NDArray[Any]) -> dict[str, int]:
    fs, qs = np.asarray(f) != 0, np.asarray(q) != 0
    fc = fs.sum(axis=1).reshape(-1).astype(np.int64)  # per (sample, neuron)
    qc = qs.sum(axis=1).reshape(-1).astype(np.int64)
    return {
        "slots": int(fs.size),
        "equal": int(np.count_nonzero(np.asarray(f) == np.asarray(q))),
        "float_spikes": int(fs.sum()),
        "quantized_spikes": int(qs.sum()),
        "both": int(np.count_nonzero(fs & qs)),
        "count_pairs": int(fc.size),
        "sum_f": int(fc.sum()),
        "sum_q": int(qc.sum()),
        "sum_ff": int(fc @ fc),
        "sum_qq": int(qc @ qc),
        "sum_fq": int(fc @ qc),
    }


def _shifted(check: Check, offset: int) -> dict[str, Any]:
    """A ``Check`` as counts, its first mismatch indexed in the whole set."""
    first = check.first
    if first is not None:
        first = {**first, "sample": int(first["sample"]) + offset}
    return {
        "slots": check.slots,
        "mismatches": check.mismatches,
        "first": first,
        "problem": check.problem,
    }


def _strip_rates(counts: Mapping[str, Any]) -> dict[str, Any]:
    """``activity`` without its fractions, which ``finish`` recomputes from the merged counts."""
    out = dict(counts)
    pops, ins = counts["populations"], counts["inputs"]
    out["populations"] = {
        k: {f: v for f, v in p.items() if f != "firing_rate"} for k, p in pops.items()
    }
    out["inputs"] = {k: {f: v for f, v in p.items() if f != "rate"} for k, p in ins.items()}
    n = counts["samples"]
    out["products"] = {
        k: {**u, "operand_rates": {o: r * n for o, r in u["operand_rates"].items()}}
        for k, u in counts["products"].items()
    }
    return out


def merge(shards: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of per-shard counts, in the given (shard) order; description fields are kept."""
    total: dict[str, Any] = _copy(shards[0])
    for shard in shards[1:]:
        total = _add(total, shard)
    return total


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _add(a: Any, b: Any, key: str = "") -> Any:
    if key in STATIC:
        return a
    if key in ("first", "problem"):  # the first shard's that has one
        return a if a is not None else b
    if isinstance(a, Mapping):
        return {k: _add(a[k], b[k], k) for k in a}
    if a is None or isinstance(a, bool | str):
        return a
    return a + b


def finish(
    total: Mapping[str, Any],
    target: Target,
    cores: int | None,
    *,
    saturated_rate: float,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The evaluation figures from ``merge``'s sums.

    ``cores`` (the placement's) sizes the static energy, ``notes`` (the compile's
    ``backend_notes``) give the wall-clock time per step and the clock cycles of a
    cycle-counting backend (``reports.energy.energy``); a population whose float run spikes
    in at least ``saturated_rate`` of its slots is flagged ``saturated`` (``api.SATURATED_RATE``).

    Returns:
        ``samples``, ``accuracy`` (output -> ``quantized``, ``float``; None without labels),
        ``agreement`` (as ``report.json``'s), ``energy``, ``paper_energy``, ``firing_rates``
        (population -> fraction of its slots with a spike) and ``verify`` (None without
        ``--verify``; else ``passed`` and per vectors key the counts and first mismatch).
    """
    samples = total["samples"]
    accuracy = {
        name: None
        if o["correct"] is None
        else {"quantized": o["correct"] / samples, "float": o["float_correct"] / samples}
        for name, o in total["outputs"].items()
    }
    outputs = {
        name: {
            "prediction_agreement": o["agree"] / samples,
            "float_active_samples": o["float_active"],
            "float_undecided_samples": o["float_undecided"],
            "quantized_undecided_samples": o["quantized_undecided"],
        }
        for name, o in total["outputs"].items()
    }
    pops = {name: _population(p, saturated_rate) for name, p in total["populations"].items()}
    counts = _with_rates(total["activity"])
    check = total["verify"]
    return {
        "samples": samples,
        "accuracy": accuracy,
        "agreement": {"decision_rule": DECISION_RULE, "populations": pops, "outputs": outputs},
        "energy": energy(counts, target, cores, notes),
        "paper_energy": paper_energy(counts, target),
        "firing_rates": {k: p["firing_rate"] for k, p in counts["populations"].items()},
        "verify": None
        if check is None
        else {"passed": all(_equal(c) for c in check.values()), "arrays": check},
    }


def _equal(check: Mapping[str, Any]) -> bool:
    return check["mismatches"] == 0 and check["problem"] is None


def _population(p: Mapping[str, int], saturated_rate: float) -> dict[str, Any]:
    """``api.agreement``'s population figures (``spike_metrics``) from exact sums."""
    spikes = p["float_spikes"] + p["quantized_spikes"]
    n = p["count_pairs"]
    var_f = n * p["sum_ff"] - p["sum_f"] ** 2
    var_q = n * p["sum_qq"] - p["sum_q"] ** 2
    corr = None
    if var_f > 0 and var_q > 0:
        corr = (n * p["sum_fq"] - p["sum_f"] * p["sum_q"]) / math.sqrt(var_f * var_q)
    rate = p["float_spikes"] / p["slots"] if p["slots"] else 0.0
    return {
        "spike_agreement": p["equal"] / p["slots"],
        "float_spikes": p["float_spikes"],
        "quantized_spikes": p["quantized_spikes"],
        "spike_f1": 2.0 * p["both"] / spikes if spikes else None,
        "spike_count_correlation": corr,
        "float_rate": rate,
        "flag": "silent" if rate == 0 else "saturated" if rate >= saturated_rate else None,
    }


def _with_rates(counts: Mapping[str, Any]) -> dict[str, Any]:
    """``activity`` counts with the fractions ``_strip_rates`` removed, over the whole set."""
    slots = counts["samples"] * counts["steps"]
    out = dict(counts)
    out["populations"] = {
        k: {
            **p,
            "firing_rate": p["spikes"] / (slots * p["neurons"]) if p["spiking"] else None,
        }
        for k, p in counts["populations"].items()
    }
    out["inputs"] = {
        k: {**p, "rate": p["events"] / (slots * p["neurons"])} for k, p in counts["inputs"].items()
    }
    out["products"] = {
        k: {
            **u,
            "operand_rates": {o: r / counts["samples"] for o, r in u["operand_rates"].items()},
        }
        for k, u in counts["products"].items()
    }
    return out


def summary(result: Mapping[str, Any]) -> str:
    """The text of ``snn-deploy evaluate``: accuracy, agreement, energy and verification."""
    lines = [
        f"{result['folder']} on {result['backend']}: {result['samples']} samples in "
        f"{result['shards']} shards, {result['steps']} steps",
    ]
    rows = []
    for name, o in result["agreement"]["outputs"].items():
        acc = result["accuracy"][name]
        rows.append(
            [
                name,
                None if acc is None else acc["quantized"],
                None if acc is None else acc["float"],
                o["prediction_agreement"],
                o["float_active_samples"],
            ]
        )
    headers = ["output", "accuracy", "float accuracy", "agreement", "float active samples"]
    lines.append(table(headers, rows))
    pops = [
        [k, p["spike_agreement"], p["spike_f1"], p["spike_count_correlation"], p["flag"]]
        for k, p in result["agreement"]["populations"].items()
    ]
    lines.append(table(["population", "slots", "F1", "count r", "flag"], pops))
    e = result["energy"]
    lines.append(
        (
            f"energy {e['total_uj_per_inference']:.4g} uJ per inference"
            + (" (lower bound)" if e["total_is_lower_bound"] else "")
            if e["energy_pj"]
            else "energy not modelled"
        )
        + f", {e['per_inference']['synops']:.6g} synaptic ops and "
        f"{e['per_inference']['spikes']:.6g} spikes per inference"
    )
    check = result["verify"]
    if check is not None:
        for key, c in check["arrays"].items():
            if c["problem"] is not None:
                lines.append(f"{key}: {c['problem']}")
                continue
            first = c["first"]
            where = (
                ""
                if first is None
                else f"; first at sample {first['sample']}, step {first['step']}, neuron "
                f"{first['neuron']}: sim {first['expected']}, {result['backend']} {first['got']}"
            )
            lines.append(f"{key}: {c['mismatches']} of {c['slots']} values differ from sim{where}")
    return "\n".join(lines)


SWEEP_COLUMNS = (
    ("configuration", "name"),
    ("target", "target"),
    ("passes", "passes"),
    ("steps", "steps"),
    ("accuracy", "accuracy"),
    ("float accuracy", "float_accuracy"),
    ("agreement", "agreement"),
    ("cores", "cores"),
    ("uJ / inference", "energy_uj"),
    ("latency (steps)", "latency_steps"),
    ("latency (s)", "latency_s"),
)
"""The comparison table of ``snn-deploy sweep``: header -> row key."""


def sweep_row(name: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """One configuration's line of the comparison: its first output's figures."""
    output = next(iter(result["agreement"]["outputs"]))
    acc = result["accuracy"][output]
    e = result["energy"]
    return {
        "name": name,
        **config,
        "accuracy": None if acc is None else acc["quantized"],
        "float_accuracy": None if acc is None else acc["float"],
        "agreement": result["agreement"]["outputs"][output]["prediction_agreement"],
        "cores": result["cores"],
        "energy_uj": e["total_uj_per_inference"] if e["energy_pj"] else None,
        "latency_steps": e["latency"]["steps"],
        "latency_s": e["latency"]["wall_clock_s"],
    }


def sweep_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison as a text table."""
    return table([h for h, _ in SWEEP_COLUMNS], [[r[k] for _, k in SWEEP_COLUMNS] for r in rows])


def sweep_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison as a self-contained HTML page (one table)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in SWEEP_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r[k]))}</td>" for _, k in SWEEP_COLUMNS) + "</tr>"
        for r in rows
    )
    style = (
        "table{border-collapse:collapse;font:14px sans-serif}"
        "td,th{border:1px solid #999;padding:4px 8px}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>snn-deploy sweep</title>'
        f"<style>{style}</style></head><body><table><tr>{head}</tr>{body}</table></body></html>\n"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
