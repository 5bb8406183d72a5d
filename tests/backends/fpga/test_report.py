"""An FPGA compile's report has one source per figure (issue 21 item 1): the resources of
``resources.json`` (Yosys when it ran, the estimate marked as such otherwise), the latency from
the RTL's cycles, the placement of the generated cores, and an energy that is "not modelled"
everywhere, which an energy budget fails."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from snn_deploy import api
from snn_deploy.backends import fpga
from snn_deploy.cli.main import cli
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Placement
from snn_deploy.reports.html import render_html
from snn_deploy.reports.render import summary
from tests.backends.fpga.nets import BRAILLE

TARGET = "fpga-ice40up5k"

pytestmark = pytest.mark.filterwarnings("ignore:.*looks like a snntorch export")


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture
def out(compiled_braille: Callable[[str], Path]) -> Path:
    return compiled_braille(TARGET)


def _read(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


@pytest.mark.toolchain("yosys")
@pytest.mark.toolchain("iverilog")
def test_report_resources_are_resources_json_from_yosys(out: Path):
    report, synth = _read(out, "report.json"), _read(out, "resources.json")
    assert synth["resources"]["tool"] == "yosys"
    assert report["backend_notes"] == synth
    total = synth["resources"]["total"]
    text = summary(report)
    assert f"FPGA resources on {synth['device']}, Yosys synthesis" in text
    row = next(line for line in text.splitlines() if line.startswith("total "))
    keys = ("luts", "ffs", "bram_blocks", "dsps")
    assert row.split() == ["total", *(str(total[k]) for k in keys)]
    page = (out / "report.html").read_text()
    assert "Yosys synthesis</h2>" in page and f"<td>{total['luts']}</td>" in page
    code, text = invoke("report", out, out, "--json")
    assert code == 0, text
    figures = json.loads(text)[0]
    assert figures["fpga_resources"] == (
        f"{total['luts']} luts, {total['ffs']} ffs, {total['bram_blocks']} bram_blocks, "
        f"{total['dsps']} dsps (Yosys)"
    )


@pytest.mark.toolchain("yosys")
@pytest.mark.toolchain("iverilog")
def test_placement_is_the_generated_cores(out: Path):
    cores = _read(out, "netlist.json")["cores"]
    ranges = _read(out, "placement.json")["ranges"]
    assert len(cores) == 2
    assert [(r["population"], r["chip"], r["core"]) for r in ranges] == [
        (c["population"], 0, c["id"]) for c in cores
    ]
    placement = _read(out, "report.json")["placement"]
    assert placement["cores_used"] == len(cores) == placement["cores_lower_bound"]


@pytest.mark.toolchain("yosys")
@pytest.mark.toolchain("iverilog")
def test_latency_is_cycles_at_the_clock_and_energy_is_not_modelled(out: Path):
    report = _read(out, "report.json")
    timing = _read(out, "netlist.json")["timing"]
    latency = report["backend_notes"]["latency"]
    cycles = latency["cycles_per_step"] + latency["input_cycles_per_step"]
    assert cycles == timing["cycles_per_step"] + timing["input_cycles_per_step"]
    assert latency["us_per_step"] == pytest.approx(cycles / latency["clock_mhz"])
    energy = report["energy"]
    assert energy["latency"]["wall_clock_s"] == pytest.approx(30 * latency["us_per_step"] * 1e-6)
    assert f"{cycles} cycles per step" in energy["latency"]["note"]
    assert energy["total_uj_per_inference"] is None
    assert energy["dynamic_uj_per_inference"] is None
    text = summary(report)
    assert "wall-clock time unknown" not in text and "total: not modelled" in text
    assert "uJ per inference" not in text.replace("Energy per inference", "")
    page = (out / "report.html").read_text()
    assert "<b>not modelled</b>" in page and "wall-clock time unknown" not in page

    code, text = invoke("report", out, out, "--json")
    figures = json.loads(text)[0]
    assert figures["energy_uj"] == "not modelled"
    assert figures["latency_s"] == energy["latency"]["wall_clock_s"]
    code, text = invoke("report", out, "--max-energy-uj", "1")
    assert code == 3
    assert text.splitlines()[-1] == (
        f"error: budget broken: --max-energy-uj 1: target {TARGET} models no energy (no "
        "per-event energy figure in its target file), so the energy per inference is unknown"
    )


def test_without_yosys_the_estimate_is_marked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No Yosys: resources.json and the report hold the estimate, and every view says so."""
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    monkeypatch.setattr(fpga, "run", lambda *a, **k: pytest.fail("no inputs: nothing runs"))
    result = api.compile(BRAILLE, TARGET, out_dir=tmp_path / "out")
    report = result.report
    assert report["backend_notes"] == _read(tmp_path / "out", "resources.json")
    assert report["backend_notes"]["resources"]["tool"] == "estimate"
    marked = "analytical estimate, +-40 % (Yosys did not run)"
    assert marked in summary(report) and marked in render_html(report)
    code, text = invoke("report", tmp_path / "out", tmp_path / "out")
    assert code == 0 and "dsps (estimate)" in text
    # without an output folder (nothing synthesized) the in-memory report holds it too
    assert api.compile(BRAILLE, TARGET).report["backend_notes"]["resources"]["tool"] == "estimate"


def test_the_backend_refuses_a_placement_other_than_its_cores():
    """A net placed with both populations on one core (``map`` without the target's
    ``populations_per_core``) is refused: its placement would not describe the RTL."""
    target = api.load_target(TARGET)
    _, net = api.lower_and_quantize(api.load(BRAILLE), target)
    fpga.lower(net, target)  # the map pass placed a core per population
    pops = {
        k: dataclasses.replace(p, placement=(Placement(start=0, stop=p.size, chip=0, core=0),))
        for k, p in net.populations.items()
    }
    shared = net.replace(populations=pops)
    with pytest.raises(DesignRuleError, match=r"\[fpga-placement\] lif2: placed"):
        fpga.lower(shared, target)
