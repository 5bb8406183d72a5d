"""report.html: self-contained, deterministic, with the four plots."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from snn_deploy.reports import html
from snn_deploy.reports.energy import (
    activity,
    energy,
    paper_energy,
    summary_lines,
    trace_summary,
)
from snn_deploy.reports.html import render_html
from snn_deploy.reports.placement import utilization
from snn_deploy.reports.resources import quantization, resources
from snn_deploy.target.load import available, load_target
from tests.conftest import REPO
from tests.reports.test_energy import _hand_net, _hand_trace


def _report(target: str = "loihi1") -> dict:
    n, t = _hand_net(), load_target(target)
    inputs, trace = _hand_trace()
    c = activity(n, trace, inputs, t)
    place = utilization(n, t)
    return {
        "schema": "snn-deploy-report/1",
        "snn_deploy_version": "0",
        "model": "hand<net>.nir",
        "target": t.name,
        "backend": t.backend,
        "dt": n.dt,
        "resources": resources(n, t),
        "quantization": quantization(n),
        "placement": place,
        "energy": energy(c, t, place["cores_used"]),
        "paper_energy": paper_energy(c, t),
        "activity": trace_summary(n, trace, inputs),
        "agreement": {
            "outputs": {"y": {"prediction_agreement": 1.0, "float_active_samples": 2}},
            "populations": {},
        },
    }


def test_page_is_self_contained_with_five_plots():
    page = render_html(_report())
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert page.count("<svg") == 5
    for needle in ("<script", "<link", 'src="http', "url(http", "<img"):
        assert needle not in page
    assert "hand&lt;net&gt;.nir" in page  # names are escaped
    assert "Paper-style energy (theoretical, 45 nm)" in page and "Not modelled" in page


def test_page_is_deterministic_across_processes():
    report = _report()
    page = render_html(report)
    code = (
        "import json, sys; from snn_deploy.reports.html import render_html; "
        "sys.stdout.write(render_html(json.loads(sys.stdin.read())))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(report),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert other == page


def test_a_read_out_voltage_is_drawn_as_lines():
    report = _report()
    out = report["activity"]["outputs"]["y"]
    report["activity"]["outputs"]["y"] = {
        **out,
        "spiking": False,
        "values": [[0, -3, 5], [1, 2, 0]],
    }
    page = render_html(report)
    assert "output y (read-out voltage of b)" in page and "<h2>Output traces</h2>" in page


def test_page_without_activity_or_placement():
    report = {**_report(), "placement": None, "energy": None, "paper_energy": None}
    report.pop("activity")
    page = render_html(report, None)
    assert page.count("<svg") == 0 and "--inputs data.npz" in page


def test_a_target_without_figures_or_limits_gives_no_empty_plot_and_no_warning():
    """An FPGA-like report: no per-event energy figure, no per-core limit (issue 21 item 2)."""
    import warnings

    report = _report()
    report["energy"] = {**report["energy"], "breakdown_uj": {}, "energy_pj": {}, "figures": {}}
    report["paper_energy"] = None
    report["placement"] = {
        **report["placement"],
        "cores": [
            {**c, **{k: None for k in c if k.endswith("_pct")}}
            for c in report["placement"]["cores"]
        ],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_html(report)
    assert page.count("<svg") == 3  # rates, raster, output traces; no energy plot, no heatmap
    assert "<b>not modelled</b>" in page and "no per-core limits" in page
    populations = ", ".join(report["placement"]["cores"][0]["populations"])
    assert f'<td class="l">{populations}</td>' in page  # the core map


def test_loihi2_marks_its_borrowed_figures_in_json_text_and_html():
    report = _report("loihi2")
    figures = report["energy"]["figures"]
    assert figures["synop_pj"]["value"] == 23.6 and figures["synop_pj"]["unit"] == "pJ"
    assert {k: f["basis"] for k, f in figures.items()} == {
        "synop_pj": "loihi1",
        "neuron_update_pj": "loihi1",
        "spike_pj": "loihi1",
        "spike_inter_core_pj": "loihi1",
    }
    assert figures["synop_pj"]["source"].startswith('Davies et al., "Loihi: A Neuromorphic')
    assert {f["basis"] for f in report["paper_energy"]["figures"].values()} == {"cmos-45nm"}
    line = "borrowed: synop_pj 23.6 pJ: Loihi 1 figure, none published for loihi2\n"
    text = "\n".join(summary_lines(report))
    assert line in text and text.count("borrowed: ") == 4
    assert "sources: report.json energy.figures" in text
    page = render_html(report)
    assert "Borrowed figures" in page
    assert page.count("Loihi 1 figure, none published for loihi2") == 8  # the list and the table
    assert "borrowed" not in "\n".join(summary_lines(_report("loihi1")))


def _labelled_xticks(svg: str) -> list[list[float]]:
    """Per x axis of a matplotlib SVG, the positions of its labelled ticks, left to right."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    axes = []
    for axis in ET.fromstring(svg).iterfind(".//svg:g[@id]", ns):
        ticks = [g for g in axis.iterfind("svg:g[@id]", ns) if g.get("id", "").startswith("xtick_")]
        if not ticks:
            continue
        axes.append(
            sorted(
                float(t.find(".//svg:use[@x]", ns).get("x"))
                for t in ticks
                if any(g.get("id", "").startswith("text_") for g in t.iterfind("svg:g", ns))
            )
        )
    return axes


@pytest.mark.parametrize(
    "breakdown",
    [
        {"synops": 7.0, "neuron_updates": 0.2},  # under two decades: 2x, 3x, 4x... were labelled
        {"synops": 40.0, "neuron_updates": 1.2},
        {"synops": 1e3, "neuron_updates": 1.0, "messages_intra_core": 1e-15},
    ],
)
def test_energy_log_axis_labels_never_overlap(breakdown: dict[str, float]):
    report = _report("loihi2")
    report["energy"] = {**report["energy"], "breakdown_uj": breakdown}
    page = render_html(report)
    section = page[page.index("<h2>Energy per inference</h2>") :]
    svg = section[section.index("<svg") : section.index("</svg>") + len("</svg>")]
    axes = _labelled_xticks(svg)
    assert len(axes) == 2 and all(axes)
    for xs in axes:  # at 9 pt, a decade label (10^-15 included) is under 30 pt wide
        assert all(b - a >= 30 for a, b in itertools.pairwise(xs)), xs


@pytest.mark.parametrize("target", available())
def test_no_output_of_any_target_cites_internal_notes(target: str):
    report = _report(target)
    for output in (json.dumps(report), "\n".join(summary_lines(report)), render_html(report)):
        assert "FACTS" not in output


@pytest.mark.parametrize(
    "values",
    [(7.0, 0.2), (40.0, 1.2), (1e3, 1.0), (3.0, 2.5), (1234.5, 0.1), (0.00123, 0.00099)],
)
def test_energy_bar_values_stay_inside_their_axes(values: tuple[float, ...]):
    """Each bar's value is written past its end; the longest one's text ended past the axes'
    right edge (over the next panel) when the axis ended at that bar (1e3 on a log axis).
    Log and linear axes, values of the longest ``.3g`` texts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = html._figure(5, 2.8)
    ax = fig.subplots()
    html._bars(ax, [(f"term {i}", v) for i, v in enumerate(values)], ["#1f77b4"] * 2, "t")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    right = ax.get_window_extent(renderer).x1
    assert all(t.get_window_extent(renderer).x1 <= right for t in ax.texts)


def test_output_trace_legend_is_beside_the_traces():
    """A read-out's legend (one line per neuron) stands right of its axes, not over the
    traces (it hid their first steps): its frame starts past the axes' frame."""
    report = _report("sim")
    outputs = report["activity"]["outputs"]
    name, out = next(iter(outputs.items()))
    rows = [" ".join(str(float(n * t)) for t in range(out["steps"])) for n in range(3)]
    report["activity"]["outputs"] = {name: {**out, "spiking": False, "neurons": 3, "rows": rows}}
    page = render_html(report)
    section = page[page.index("<h2>Output traces</h2>") :]
    svg = ET.fromstring(section[section.index("<svg") : section.index("</svg>") + len("</svg>")])
    ns = {"svg": "http://www.w3.org/2000/svg"}

    def frame(group_id: str) -> list[float]:  # the x of its first path's points: its frame
        (group,) = svg.iterfind(f".//svg:g[@id='{group_id}']", ns)
        path = group.find("svg:g/svg:path", ns)
        assert path is not None
        return [float(x) for x in re.findall(r"-?[\d.]+", path.get("d", ""))[0::2]]

    assert min(frame("legend_1")) > max(frame("axes_1"))
