"""Render a report dict as plain-text tables for the terminal."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from snn_deploy.reports.compare import FPGA_RESOURCES
from snn_deploy.reports.energy import summary_lines


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], missing: str = "-") -> str:
    """A left-aligned text table; None cells show as ``missing``."""
    cells = [[str(h) for h in headers]] + [[_fmt(c, missing) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(data: Any) -> str:
    """``data`` as strict JSON (RFC 8259), indented, keys sorted: NaN and infinities become
    null, numpy scalars plain numbers.

    Examples:
        >>> print(to_json({"b": float("nan"), "a": [1.5, float("inf")]}))
        {
          "a": [
            1.5,
            null
          ],
          "b": null
        }
    """
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _fmt(value: Any, missing: str) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value)) if len(value) <= 4 else f"{value[0]}..{value[-1]}"
    return missing if value is None else str(value)


def resources_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The headers and rows of the per-population resources, for the text and HTML reports."""
    rows = [
        [p["name"], p["type"], p["neurons"], p["synapses_in"], p["reset"]]
        for p in report["resources"]["populations"]
    ]
    return ["population", "type", "neurons", "synapses in", "reset"], rows


def fpga_title(report: Mapping[str, Any]) -> str | None:
    """The FPGA resources section's title, saying where the figures come from (Yosys or the
    estimate); None if the report has no FPGA resources."""
    notes = report.get("backend_notes") or {}
    usage = notes.get("resources")
    if not isinstance(usage, Mapping) or "total" not in usage:
        return None
    source = (
        "Yosys synthesis"
        if usage.get("tool") == "yosys"
        else "analytical estimate, +-40 % (Yosys did not run)"
    )
    return f"FPGA resources on {notes.get('device')}, {source}"


def fpga_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """The headers and rows of an FPGA compile's resources (``backend_notes.resources``: a
    row per core and product unit, the step controller, the total, the board and the share of
    it used), for the text and HTML reports; None if the report has none."""
    if fpga_title(report) is None:
        return None
    notes = report["backend_notes"]
    usage = notes["resources"]
    rows: list[list[Any]] = [
        [f"core {c['core']} ({c['population']})", *(c[r] for r in FPGA_RESOURCES)]
        for c in usage.get("cores", [])
    ]
    rows += [
        [f"unit {u['unit']} ({u['type']} {u['product']})", *(u[r] for r in FPGA_RESOURCES)]
        for u in usage.get("units", [])
    ]
    if "control" in usage:
        rows.append(["step control", *(usage["control"][r] for r in FPGA_RESOURCES)])
    rows.append(["total", *(usage["total"][r] for r in FPGA_RESOURCES)])
    capacity, used = notes.get("capacity") or {}, notes.get("utilisation") or {}
    rows.append(["board", *(capacity.get(r) for r in FPGA_RESOURCES)])
    rows.append(
        ["% of board", *(_pct(used.get(r)) for r in FPGA_RESOURCES)],
    )
    return ["", "LUTs", "FFs", "BRAM blocks", "DSPs"], rows


def _pct(share: float | None) -> str | None:
    return None if share is None else f"{100 * share:.1f} %"


def fpga_latency(report: Mapping[str, Any]) -> str | None:
    """The FPGA's time per step from its cycles, and per inference with inputs (one line)."""
    latency = (report.get("backend_notes") or {}).get("latency")
    if not isinstance(latency, Mapping) or latency.get("us_per_step") is None:
        return None
    line = (
        f"{latency['us_per_step']:.4g} us per step = "
        f"{latency['cycles_per_step'] + latency['input_cycles_per_step']} cycles "
        f"({latency['cycles_per_step']} for the cores and units, "
        f"{latency['input_cycles_per_step']} to load the inputs) at {latency['clock_mhz']:g} MHz"
    )
    energy = report.get("energy")
    if energy is not None and energy["latency"].get("wall_clock_s") is not None:
        wall = energy["latency"]["wall_clock_s"]
        line += f"; {wall * 1e3:.4g} ms per inference of {energy['latency']['steps']} steps"
    return line


def quantization_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The headers and rows of the per-projection quantization, for the text and HTML reports."""
    keys = ("name", "exp", "rounding", "max_code", "bits_used", "clipped_weights")
    rows = [
        [*(p[k] for k in keys), p["relative_weight_error"]]
        for p in report["quantization"]["projections"]
    ]
    headers = ["projection", "exp", "rounding", "max |code|", "bits", "clipped"]
    return [*headers, "rel. weight error"], rows


def per_layer_table(report: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """The headers and rows of the per-layer activity, for the text and HTML reports; None
    without activity (a compile without ``--inputs``).

    One row per population, every figure per inference (mean over the samples) and read from
    ``energy.counts``: spikes, firing rate (spikes per neuron per step), sparsity (the fraction
    of neuron-steps without an event, ``1 - rate``) and the synaptic operations into it (the
    ``synops`` of the projections ending on it, as counted on the trace). A non-spiking
    population has no spikes, rate or sparsity. Each product unit (``paper_energy.products``)
    follows in a row of its own with its operations per inference (``sops_trace``).
    """
    e = report.get("energy")
    if e is None:
        return None
    counts = e["counts"]
    samples = counts["samples"]
    sops_in: dict[str, int] = {}
    for proj in counts["projections"].values():
        sops_in[proj["dst"]] = sops_in.get(proj["dst"], 0) + proj["synops"]
    rows: list[list[Any]] = []
    for name, p in counts["populations"].items():
        rate = p["firing_rate"] if p["spiking"] else None
        rows.append(
            [
                name,
                p["neurons"],
                p["spikes"] / samples if p["spiking"] else None,
                rate,
                None if rate is None else 1.0 - rate,
                sops_in.get(name, 0) / samples,
            ]
        )
    paper = report.get("paper_energy") or {}
    for u in paper.get("products", []):
        rows.append([f"{u['unit']} ({u['kind']})", None, None, None, None, u["sops_trace"]])
    headers = ["population", "neurons", "spikes", "firing rate", "sparsity", "SOPs in"]
    return headers, rows


def per_layer_title(report: Mapping[str, Any]) -> str:
    """The per-layer table's title, with the number of samples its means are over."""
    samples = report["energy"]["counts"]["samples"]
    return f"Per layer, per inference (mean over {samples} samples)"


NO_ACTIVITY = "no activity (pass --inputs data.npz)"
"""The one-line note of a section that needs a run on inputs."""


def _per_layer(report: Mapping[str, Any]) -> list[str]:
    t = per_layer_table(report)
    if t is None:
        return [f"Per layer: {NO_ACTIVITY}", ""]
    return [per_layer_title(report), table(*t), ""]


def _placement(placement: dict[str, Any] | None) -> list[str]:
    if placement is None:
        return []
    rows = [
        [
            c["chip"],
            c["core"],
            c["neurons"],
            c["neurons_pct"],
            c["synapse_bits"],
            c["synapse_bits_pct"],
            c["fan_in_axons"],
            c["fan_in_axons_pct"],
            c["fan_out_axons"],
            c["fan_out_axons_pct"],
        ]
        for c in placement["cores"]
    ]
    headers = ["chip", "core", "neurons", "%", "synapse bits", "%", "fan-in", "%", "fan-out", "%"]
    if all(v is None for r in rows for v in r[3::2]):  # no per-core limits: no percentages
        keep = [0, 1, 2, 4, 6, 8]
        headers, rows = [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]
    bound = placement["cores_lower_bound"]
    return [
        f"Placement: {placement['cores_used']} cores on {placement['chips_used']} chips"
        + ("" if bound is None else f" (lower bound {bound})"),
        table(headers, rows),
        "",
    ]


def _fpga(report: Mapping[str, Any]) -> list[str]:
    t = fpga_table(report)
    if t is None:
        return []
    latency = fpga_latency(report)
    return [str(fpga_title(report)), table(*t), *([f"latency: {latency}"] if latency else []), ""]


def summary(report: dict[str, Any]) -> str:
    """The human-readable compile summary: resources, quantization, agreement, per-layer
    activity and energy."""
    res = report["resources"]
    out = [
        f"model {report['model']}  target {report['target']}  dt {report['dt']:g} s",
        "",
        "Resources",
        table(*resources_table(report)),
        f"total: {res['neurons']} neurons, {res['synapses']} synapses "
        f"({res['synapse_bits']} weight bits)"
        + ("" if res["cores_lower_bound"] is None else f", cores >= {res['cores_lower_bound']}"),
        "",
        *_placement(report.get("placement")),
        *_fpga(report),
        "Quantization",
        table(*quantization_table(report)),
        *(
            f"input {name!r} |x| <= {r['max_abs']:g} ({r['source']}): the worst-case current "
            "is sized for it"
            for name, r in report["quantization"].get("inputs", {}).items()
        ),
        "",
    ]
    out += _agreement(report.get("agreement"), report.get("latency") or {})
    out += _accuracy(report.get("accuracy"))
    out += _per_layer(report)
    out += summary_lines(report)
    return "\n".join(out)


def _agreement(agreement: Mapping[str, Any] | None, latency: Mapping[str, int]) -> list[str]:
    """The float-vs-quantized agreement: spike-weighted per population, prediction per output."""
    if agreement is None:
        return ["Agreement: not measured (pass --inputs data.npz)", ""]
    return [
        "Agreement, quantized vs float reference",
        *(table(*t) for t in agreement_tables(agreement, latency)),
        f"decision rule: {agreement.get('decision_rule', 'not recorded')}",
        "",
    ]


def _accuracy(accuracy: Mapping[str, Any] | None) -> list[str]:
    """One line per output: the accuracy against labels of the quantized and float runs."""
    if accuracy is None:
        return []
    return [*accuracy_lines(accuracy), ""]


def accuracy_lines(accuracy: Mapping[str, Any]) -> list[str]:
    """``accuracy against labels (N samples): output y: quantized 0.75 (3/4), float 1 (4/4)``,
    one line per output, for the text and HTML reports."""
    n = accuracy["samples"]
    return [
        f"accuracy against labels ({n} samples): output {name}: quantized "
        f"{o['quantized']:.4g} ({o['quantized_correct']}/{n}), float {o['float']:.4g} "
        f"({o['float_correct']}/{n})"
        for name, o in accuracy["outputs"].items()
    ]


def agreement_tables(
    agreement: Mapping[str, Any], latency: Mapping[str, int]
) -> list[tuple[list[str], list[list[Any]]]]:
    """The headers and rows of the agreement per population and per output, for the text and
    HTML reports."""
    pops = [
        [
            k,
            p["float_spikes"],
            p["quantized_spikes"],
            p["spike_agreement"],
            p.get("spike_f1"),
            p.get("spike_count_correlation"),
            p.get("flag"),
        ]
        for k, p in agreement.get("populations", {}).items()
    ]
    outputs = [
        [
            k,
            o["prediction_agreement"],
            o["float_active_samples"],
            o.get("float_undecided_samples"),  # reports written before the rule had none
            o.get("quantized_undecided_samples"),
            latency.get(k),
        ]
        for k, o in agreement.get("outputs", {}).items()
    ]
    headers = ["population", "float spikes", "quant. spikes", "slots", "F1", "count r", "flag"]
    columns = ["output", "prediction", "active samples", "undecided float", "quantized"]
    return [(headers, pops), ([*columns, "latency (steps)"], outputs)]
