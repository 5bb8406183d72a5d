"""``report.html``: one self-contained page (inline SVG plots, no scripts, no network).

``render_html(report, trace_summary)`` is pure and deterministic: the same report gives the
same bytes (matplotlib's SVG ids are salted with a constant, no dates are written), so a
compile stays byte-identical.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from snn_deploy.reports.compare import MISSING, side_by_side
from snn_deploy.reports.energy import basis_text, borrowed_lines, cycle_line
from snn_deploy.reports.render import (
    NO_ACTIVITY,
    agreement_tables,
    fpga_latency,
    fpga_table,
    fpga_title,
    per_layer_table,
    per_layer_title,
    quantization_table,
    resources_table,
)

_SALT = "snn-deploy"
"""Constant salt for matplotlib's SVG element ids (``svg.hashsalt``): deterministic output."""

_RC: dict[str, Any] = {
    "svg.hashsalt": _SALT,
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1100px;
  color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
.note { color: #666; font-size: 0.85em; } .kpi { display: inline-block; margin: 0 2em 0.5em 0; }
.kpi b { display: block; font-size: 1.3em; } svg { max-width: 100%; height: auto; }
.wide { max-width: 100%; overflow-x: auto; }
"""


def _num(x: Any, missing: str = "-") -> str:
    if x is None:
        return missing
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}"
    return html.escape(str(x))


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, missing: str = "-"
) -> str:
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i < left else ""
        text = _num(v, missing) if tag == "td" else html.escape(str(v))
        if tag == "td" and i < left and isinstance(v, str) and " " not in v:
            text = _breakable(text)
        return f"<{tag}{cls}>{text}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def _breakable(name: str) -> str:
    """An escaped name that may wrap after its separators (``encoder.layers.0.fc``): a table
    of long dotted names fits the page; a name without any still scrolls (``.wide``)."""
    for sep in "./":
        name = name.replace(sep, f"{sep}<wbr>")
    return name


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _rates_plot(summary: Mapping[str, Any]) -> str:
    groups = [g for g in summary["groups"] if g["spiking"]]
    if not groups:
        return ""
    fig = _figure(10, max(3.0, 0.8 + 0.16 * len(groups)))  # a bar label per group
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(1, 2))
    names = [g["name"] for g in groups]
    rates = [g["firing_rate"] for g in groups]
    colors = ["#999999" if g["kind"] == "input" else "#1f77b4" for g in groups]
    ax1.barh(range(len(names)), rates, color=colors)
    ax1.set_yticks(range(len(names)), names)
    ax1.set_ylim(len(names) - 0.5, -0.5)
    ax1.set_xlabel("events per neuron per step")
    ax1.set_title("mean firing rate (grey: inputs)")
    for g in groups:
        ax2.plot(g["rate_per_step"], label=g["name"], linewidth=1)
    ax2.set_xlabel("time step")
    ax2.set_ylabel("firing rate")
    ax2.set_title(f"firing rate per step (mean over {summary['samples']} samples)")
    if len(groups) <= 8:
        ax2.legend(fontsize=7, loc="upper right")
    else:  # beside the axes: inside it would cover the lines
        ax2.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=2)
    return _svg(fig)


def _raster_plot(summary: Mapping[str, Any]) -> str:
    groups = [g for g in summary["groups"] if g["raster"] is not None]
    if not groups:
        return ""
    total = sum(g["raster"]["neurons"] for g in groups)
    fig = _figure(10, min(8.0, 1.5 + total * 0.03))
    ax = fig.subplots()
    base = 0
    ticks, labels = [], []
    for k, g in enumerate(groups):
        r = g["raster"]
        spikes = [
            (t, base + n) for n, row in enumerate(r["rows"]) for t, c in enumerate(row) if c == "1"
        ]
        if spikes:
            t, i = zip(*spikes, strict=True)
            ax.scatter(t, i, s=2, marker="|", color=f"C{k}", linewidths=1)
        ticks.append(base + r["neurons"] / 2)
        shown = "" if r["neurons"] == g["neurons"] else f" (first {r['neurons']})"
        labels.append(f"{g['name']}{shown}")
        base += r["neurons"]
        ax.axhline(base - 0.5, color="#cccccc", linewidth=0.5)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(base - 0.5, -0.5)
    steps = groups[0]["raster"]["steps"] if groups else 0
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_xlabel("time step")
    ax.set_title(f"spike raster, sample 0, first {steps} steps")
    return _svg(fig)


def _outputs_plot(summary: Mapping[str, Any]) -> str:
    """Each Output's record for sample 0: spikes as a raster (dot size by level), a
    non-spiking read-out as one line per neuron; empty for a report written before
    ``activity.outputs`` existed."""
    outputs = summary.get("outputs") or {}
    if not outputs:
        return ""
    fig = _figure(10, 0.6 + 2.0 * len(outputs))
    axes = fig.subplots(len(outputs), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (name, o) in zip(axes, outputs.items(), strict=True):
        values = [[float(v) for v in row.split()] for row in o["rows"]]
        shown = "" if len(values) == o["neurons"] else f", first {len(values)} neurons"
        if o["spiking"]:
            dots = [(t, n) for n, row in enumerate(values) for t, c in enumerate(row) if c]
            if dots:
                t, i = zip(*dots, strict=True)
                ax.scatter(t, i, s=min(60.0, 2000 / o["steps"]), marker="|", color="C0")
            ax.set_ylim(len(values) - 0.5, -0.5)
            ax.set_ylabel("neuron")
            kind = "spikes"
        else:
            for n, row in enumerate(values):
                ax.plot(row, linewidth=1, label=str(n))
            if 1 < len(values) <= 12:  # beside the axes: inside, it hid the traces' start
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=2,
                          title="neuron")  # fmt: skip
            ax.set_ylabel("v")
            kind = "read-out voltage"
        ax.set_xlim(-0.5, o["steps"] - 0.5)
        ax.set_title(f"output {name} ({kind} of {o['source']}{shown})")
    axes[-1].set_xlabel("time step")
    fig.suptitle(f"output traces, sample 0, first {next(iter(outputs.values()))['steps']} steps")
    return _svg(fig)


_RESOURCES = (
    ("neurons_pct", "neurons"),
    ("synapse_bits_pct", "synapse bits"),
    ("fan_in_axons_pct", "fan-in axons"),
    ("fan_out_axons_pct", "fan-out axons"),
)


def _placement_section(placement: Mapping[str, Any]) -> list[str]:
    """The utilization heatmap (when the target declares per-core limits) and the core map:
    which populations sit on each core, with what they use."""
    cores = placement["cores"]
    limited = any(c[k] is not None for c in cores for k, _ in _RESOURCES)
    out = ["<h2>Placement</h2>"]
    if limited:
        out.append(_utilization_plot(placement))
    else:
        out.append(
            '<p class="note">The target declares no per-core limits: no utilization '
            "percentages.</p>"
        )
    rows = [
        [
            f"{c['chip']}:{c['core']}",
            ", ".join(c["populations"]),
            c["neurons"],
            c["synapse_bits"],
            c["fan_in_axons"],
            c["fan_out_axons"],
        ]
        for c in cores
    ]
    headers = ["chip:core", "populations", "neurons", "synapse bits", "fan-in", "fan-out"]
    out.append(_table(headers, rows[:_MAX_ROWS], left=2))
    if len(rows) > _MAX_ROWS:
        out.append(f'<p class="note">First {_MAX_ROWS} of {len(rows)} cores.</p>')
    return out


_MAX_ROWS = 64
"""Rows of the core map table shown; the rest are counted (placement.json has them all)."""


def _utilization_plot(placement: Mapping[str, Any]) -> str:
    import numpy as np

    cores = placement["cores"]
    data = np.array(
        [[np.nan if c[k] is None else c[k] for c in cores] for k, _ in _RESOURCES], dtype=float
    )
    fig = _figure(min(10.0, 4.0 + 0.4 * len(cores)), 2.4)
    ax = fig.subplots()
    im = ax.imshow(data, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(_RESOURCES)), [name for _, name in _RESOURCES])
    step = max(1, len(cores) // 32)
    ax.set_xticks(range(0, len(cores), step), [f"{c['chip']}:{c['core']}" for c in cores][::step])
    ax.set_xlabel("chip:core")
    if len(cores) <= 32:
        for (y, x), v in np.ndenumerate(data):
            if not np.isnan(v):
                ax.text(x, y, f"{v:.0f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label="% of the core's limit")
    ax.set_title(
        f"core utilization: {placement['cores_used']} cores on {placement['chips_used']} chips"
    )
    return _svg(fig)


def _bars(ax: Any, items: Sequence[tuple[str, float]], colors: Sequence[str], title: str) -> None:
    """Horizontal bars, first item on top, each labelled with its value past its end (a
    margin of 15 % of the axis keeps the longest one's inside); log scale if the values span
    more than a factor 30, with only its decades labelled (a span that wide holds one;
    matplotlib would also label 2x, 3x, ... below two decades, and those overlap)."""
    values = [v for _, v in items]
    if not items:  # an empty axis would get identical y limits (a matplotlib warning)
        return
    ax.barh(range(len(items)), values, color=list(colors)[: len(items)])
    ax.set_yticks(range(len(items)), [k for k, _ in items])
    ax.set_ylim(len(items) - 0.5, -0.5)
    positive = [v for v in values if v > 0]
    if positive and max(positive) > 30 * min(positive):
        ax.set_xscale("log")
        ax.tick_params(axis="x", which="minor", labelbottom=False)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3g}", va="center", fontsize=7)
    ax.margins(x=0.15)  # room for the longest bar's value inside the axes (left edge: 0)
    ax.set_xlabel("uJ per inference")
    ax.set_title(title)


def _modelled(energy: Mapping[str, Any]) -> bool:
    """Whether the target has an energy figure for any event that happened."""
    return bool(energy["breakdown_uj"])


def _energy_plot(energy: Mapping[str, Any], paper: Mapping[str, Any] | None) -> str:
    """The hardware model by event and against the paper-style figures; a panel with nothing
    to show (no figure for the target's events, no paper-style estimate) is left out."""
    terms = sorted(energy["breakdown_uj"].items(), key=lambda kv: (-kv[1], kv[0]))
    bars = [("hardware model", energy["total_uj_per_inference"])] if terms else []
    colors = ["#1f77b4"] * len(bars)
    if paper is not None:
        bars += [
            (f"paper-style SNN (T={paper['steps']})", paper["snn_uj"]),
            ("paper-style, trace SOPs", paper["snn_uj_trace"]),
            ("equivalent ANN (MACs)", paper["ann_uj"]),
        ]
        colors += ["#ff7f0e", "#ffbb78", "#7f7f7f"]
    panels = [
        (items, c, title)
        for items, c, title in (
            (terms, ["#1f77b4"] * len(terms), "hardware model, by event"),
            (bars, colors, "hardware vs 45 nm paper-style" if terms else "45 nm paper-style"),
        )
        if items
    ]
    if not panels:
        return ""
    fig = _figure(10 if len(panels) == 2 else 5, 2.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (items, c, title) in zip(axes, panels, strict=True):
        _bars(ax, items, c, title)
    return _svg(fig)


def _energy_section(report: Mapping[str, Any]) -> list[str]:
    energy, paper = report.get("energy"), report.get("paper_energy")
    if energy is None:
        return [
            "<h2>Energy</h2>",
            '<p class="note">No activity: compile with <code>--inputs data.npz</code>.</p>',
        ]
    per, pj = energy["per_inference"], energy["energy_pj"]
    bound = " (a lower bound: some events have no figure)" if energy["total_is_lower_bound"] else ""
    total = (
        f"<p>Dynamic {_num(energy['dynamic_uj_per_inference'])} uJ, static "
        f"{_num(energy['static_uj_per_inference'])} uJ, total "
        f"<b>{_num(energy['total_uj_per_inference'])} uJ</b> per inference{bound}."
        if _modelled(energy)
        else f"<p>Hardware energy: <b>not modelled</b> (target {html.escape(report['target'])}"
        " has no energy figure for any of these events)."
    )
    out = [
        "<h2>Energy per inference</h2>",
        _energy_plot(energy, paper),
        _table(
            ["event", "count per inference", "pJ each", "uJ"],
            [[k, per[k], pj.get(k), energy["breakdown_uj"].get(k)] for k in per],
        ),
        f"{total} Latency: {html.escape(energy['latency']['note'])}.</p>",
    ]
    if energy.get("cycles") is not None:
        out.append(f"<p>{html.escape(cycle_line(energy['cycles']).capitalize())}.</p>")
    if energy["not_modelled"]:
        items = "".join(f"<li>{html.escape(s)}</li>" for s in energy["not_modelled"])
        out.append(f'<p class="note">Not modelled:</p><ul class="note">{items}</ul>')
    borrowed = "".join(f"<li>{html.escape(s)}</li>" for s in borrowed_lines(report))
    if borrowed:
        out.append(f'<p class="note">Borrowed figures:</p><ul class="note">{borrowed}</ul>')
    figures = {**energy["figures"], **(paper["figures"] if paper is not None else {})}
    target = report["target"]
    if figures:
        out.append(
            _table(
                ["figure", "value", "unit", "basis", "source"],
                [
                    [k, f["value"], f["unit"], basis_text(f["basis"], target), f["source"]]
                    for k, f in figures.items()
                ],
                left=5,
            )
        )
    if paper is not None:
        out += [
            "<h2>Paper-style energy (theoretical, 45 nm)</h2>",
            f"<p><code>{html.escape(paper['formula'])}</code>, E_MAC = {_num(paper['e_mac_pj'])}"
            f" pJ, E_AC = {_num(paper['e_ac_pj'])} pJ, T = {paper['steps']}.</p>",
            _table(
                [
                    "projection",
                    "src",
                    "dst",
                    "first layer",
                    "FLOPs",
                    "input rate",
                    "MACs",
                    "SOPs",
                    "SOPs (trace)",
                ],
                [
                    [
                        r["projection"],
                        r["src"],
                        r["dst"],
                        r["first_layer"],
                        r["flops"],
                        r["input_firing_rate"],
                        r["macs"],
                        r["sops"],
                        r["sops_trace"],
                    ]
                    for r in paper["layers"]
                ]
                + [
                    [r["unit"], r["kind"], "", False, r["flops"], "", 0, r["sops"], r["sops_trace"]]
                    for r in paper.get("products", [])
                ],
                left=3,
            ),
            *_products(energy["counts"].get("products", {}), energy["counts"]["samples"]),
            f"<p>SNN {_num(paper['snn_uj'])} uJ (trace SOPs: {_num(paper['snn_uj_trace'])} uJ;"
            f" first layer counted every step: {_num(paper['snn_uj_first_layer_all_steps'])} uJ)"
            f"; equivalent ANN {_num(paper['ann_macs'])} MACs = {_num(paper['ann_uj'])} uJ"
            f" (ANN / SNN = {_num(paper['ann_over_snn'])}).</p>",
        ]
    return out


def _products(units: Mapping[str, Mapping[str, Any]], samples: int) -> list[str]:
    """The Attention/Gate units' operations per inference (docs/ENERGY.md §0), if any."""
    if not units:
        return []
    keys = ("state_updates", "decays", "reads", "products", "ops")
    rows = [
        [name, u["kind"], u["size"], *(None if k not in u else u[k] / samples for k in keys)]
        for name, u in units.items()
    ]
    return [
        "<p>Product units, operations per inference (the SOPs above count attention as the "
        "seeds' quadratic form; these are what the units do):</p>",
        _table(
            ["unit", "kind", "size", "state updates", "decays", "reads", "products", "ops"],
            rows,
            left=2,
        ),
    ]


def _per_layer_section(report: Mapping[str, Any]) -> list[str]:
    """The per-layer table of the text summary (``render.per_layer_table``), or a note."""
    t = per_layer_table(report)
    if t is None:
        return ["<h2>Per layer</h2>", f'<p class="note">Per layer: {html.escape(NO_ACTIVITY)}.</p>']
    return [f"<h2>{html.escape(per_layer_title(report))}</h2>", _table(*t)]


def _accuracy_section(accuracy: Mapping[str, Any]) -> list[str]:
    """Both runs' accuracy against labels per output and the quantized run's confusion matrix."""
    rows = [
        [name, o["classes"], o["quantized"], o["float"], o["quantized_correct"], o["float_correct"]]
        for name, o in accuracy["outputs"].items()
    ]
    headers = ["output", "classes", "quantized", "float", "quantized correct", "float correct"]
    out = [
        f"<h2>Accuracy against labels ({accuracy['samples']} samples)</h2>",
        _table(headers, rows),
        '<p class="note">A prediction is the decision rule\'s (an undecided read-out matches'
        " no label); the confusion matrix is the quantized run's.</p>",
    ]
    out += [_confusion_plot(name, o) for name, o in accuracy["outputs"].items()]
    return out


def _confusion_plot(name: str, o: Mapping[str, Any]) -> str:
    """The quantized run's confusion matrix as a heatmap: labels down, predicted classes
    across and a last column for undecided read-outs; a cell's shade is its share of the
    label's samples, its text the count (left out past 40 classes)."""
    import numpy as np

    counts = np.asarray(o["confusion"], dtype=np.int64)
    classes = counts.shape[0]
    share = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    side = min(10.0, 2.5 + 0.22 * classes)
    fig = _figure(side + 1.2, side)
    ax = fig.subplots()
    im = ax.imshow(share, vmin=0, vmax=1, cmap="Blues", aspect="equal")
    font = 8 if classes <= 12 else 6 if classes <= 24 else 5
    ax.set_xticks(range(classes + 1), [*map(str, range(classes)), "undec."], fontsize=font)
    ax.set_yticks(range(classes), [str(k) for k in range(classes)], fontsize=font)
    ax.tick_params(axis="x", labelrotation=90 if classes > 12 else 0)
    if classes <= 40:
        for (y, x), v in np.ndenumerate(counts):
            if v:
                color = "w" if share[y, x] > 0.5 else "#222222"
                ax.text(x, y, str(v), ha="center", va="center", fontsize=font, color=color)
    ax.axvline(classes - 0.5, color="#888888", linewidth=0.8)
    ax.set_xlabel("predicted class (quantized run)")
    ax.set_ylabel("label")
    fig.colorbar(im, ax=ax, label="share of the label's samples", shrink=0.8)
    ax.set_title(f"confusion matrix, output {name}")
    return _svg(fig)


_MAX_HISTOGRAMS = 16
"""Projections whose weight histograms report.html draws; report.json ``weights`` has all."""


def _small_multiples(panels: Sequence[tuple[str, str, Any, Any, Any]], title: str) -> str:
    """One histogram per panel ``(title, x label, edges, float counts, quantized counts)``: the
    float run's as a line, the quantized one's filled, four panels a row."""
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(10, 0.4 + 2.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, xlabel, edges, f, q) in zip(axes, panels, strict=False):
        ax.stairs(f, edges, color="#7f7f7f", label="float", linewidth=1.2)
        ax.stairs(q, edges, color="#1f77b4", fill=True, alpha=0.5, label="quantized")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(xlabel, fontsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    return _svg(fig)


def _weights_section(weights: Sequence[Mapping[str, Any]]) -> list[str]:
    """Small multiples, one per projection: the float weights against the dequantized integer
    weights of the same synapses, on shared bins."""
    shown = [w for w in weights if w["synapses"]][:_MAX_HISTOGRAMS]
    if not shown:
        return []
    panels = [
        (f"{w['projection']} ({w['src']} \u2192 {w['dst']})", f"weight (LSB {w['lsb']:.3g})",
         w["edges"], w["float"], w["quantized"])
        for w in shown
    ]  # fmt: skip
    title = "weights per projection: float vs dequantized codes (synapse counts)"
    out = ["<h2>Weights, float vs quantized</h2>", _small_multiples(panels, title)]
    if len(weights) > len(shown):
        out.append(
            f'<p class="note">{len(shown)} of {len(weights)} projections drawn (the first '
            f"{_MAX_HISTOGRAMS} with synapses); report.json <code>weights</code> has every "
            "histogram.</p>"
        )
    return out


def _activations_section(hists: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Small multiples, one per spiking population: its neurons' events per inference in the
    float reference against the quantized run (report.json ``activations``)."""
    shown = list(hists.items())[:_MAX_HISTOGRAMS]
    if not shown:
        return []
    panels = [
        (name, "events per neuron per inference", h["edges"], h["float"], h["quantized"])
        for name, h in shown
    ]
    title = "activations per population: float vs quantized run (neuron counts)"
    out = ["<h2>Activations, float vs quantized</h2>", _small_multiples(panels, title)]
    if len(hists) > len(shown):
        out.append(
            f'<p class="note">{len(shown)} of {len(hists)} populations drawn; report.json '
            "<code>activations</code> has every histogram.</p>"
        )
    return out


def _page(title: str, body: Sequence[str]) -> str:
    """A complete HTML document: ``title`` as its title and heading, then ``body``."""
    head = f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            head,
            f"<h1>{html.escape(title)}</h1>",
            *body,
            "</body></html>\n",
        ]
    )


def side_by_side_html(columns: Sequence[dict[str, Any]]) -> str:
    """``snn-deploy report A B ... --html``: the side-by-side table of ``compare.figures``."""
    headers, rows = side_by_side(columns)
    note = "Worst output and population: the lowest agreement and F1, the largest latency."
    return _page(
        "snn-deploy: compiles side by side",
        [_table(headers, rows, missing=MISSING), f'<p class="note">{note}</p>'],
    )


def render_html(report: Mapping[str, Any], trace_summary: Mapping[str, Any] | None = None) -> str:
    """The ``report.html`` page of a report (``report.json`` content).

    Args:
        report: the report dict.
        trace_summary: ``reports.energy.trace_summary`` output; default: ``report["activity"]``.

    Returns:
        A complete HTML document with inline SVG plots (per-layer firing rates, the spike
        raster and the output traces of sample 0, the core utilization map and the energy
        breakdown) and every table of the text summary (an FPGA compile's resources too).
    """
    import matplotlib

    summary = trace_summary if trace_summary is not None else report.get("activity")
    res = report["resources"]
    out = [
        f'<p class="note">{html.escape(report.get("schema", ""))}, snn-deploy '
        f"{html.escape(str(report.get('snn_deploy_version', '')))}, backend "
        f"{html.escape(str(report.get('backend', '')))}, dt {report['dt']:g} s</p>",
    ]
    kpis = [("neurons", res["neurons"]), ("synapses", res["synapses"])]
    placement = report.get("placement")
    if placement is not None:
        kpis.append(("cores / chips", f"{placement['cores_used']} / {placement['chips_used']}"))
    if report.get("energy") is not None:
        modelled = _modelled(report["energy"])
        kpis.append(
            (
                "uJ per inference",
                report["energy"]["total_uj_per_inference"] if modelled else "not modelled",
            )
        )
    if report.get("paper_energy") is not None:
        kpis.append(("paper-style uJ", report["paper_energy"]["snn_uj"]))
    accuracy = (report.get("accuracy") or {}).get("outputs", {})
    if len(accuracy) == 1:
        o = next(iter(accuracy.values()))
        kpis += [("accuracy, quantized", o["quantized"]), ("accuracy, float", o["float"])]
    out.append("".join(f'<div class="kpi">{html.escape(k)}<b>{_num(v)}</b></div>' for k, v in kpis))
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        if summary is not None:
            out += ["<h2>Activity</h2>", _rates_plot(summary), _raster_plot(summary)]
            out += (
                ["<h2>Output traces</h2>", _outputs_plot(summary)] if summary.get("outputs") else []
            )
        out += _per_layer_section(report)
        out += _energy_section(report)
        if placement is not None:
            out += _placement_section(placement)
    fpga = fpga_table(report)
    if fpga is not None:
        latency = fpga_latency(report)
        out += [f"<h2>{html.escape(str(fpga_title(report)))}</h2>", _table(*fpga)]
        out += [] if latency is None else [f"<p>Latency: {html.escape(latency)}.</p>"]
    out += ["<h2>Resources</h2>", _table(*resources_table(report), left=2)]
    out += ["<h2>Quantization</h2>", _table(*quantization_table(report))]
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        out += _weights_section(report.get("weights") or [])
    agreement = report.get("agreement")
    if agreement is not None:
        out.append("<h2>Agreement, quantized vs float reference</h2>")
        out += [_table(*t) for t in agreement_tables(agreement, report.get("latency") or {})]
        rule = agreement.get("decision_rule")  # reports written before the rule had none
        if rule is not None:
            out.append(f"<p>Decision rule: {html.escape(rule)}.</p>")
        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            out += _activations_section(report.get("activations") or {})
    accuracy = report.get("accuracy")
    if accuracy is not None:
        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            out += _accuracy_section(accuracy)
    elif agreement is not None:
        out.append(
            '<p class="note">Accuracy: no labels (add an integer array <code>labels</code> '
            "[batch] to the <code>--inputs</code> file).</p>"
        )
    return _page(f"snn-deploy report: {report['model']} on {report['target']}", out)
