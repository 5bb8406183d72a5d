"""`snn-deploy report A B ...`: several compiles side by side in text, JSON and HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from snn_deploy import api
from snn_deploy.cli.main import cli
from snn_deploy.reports.render import summary
from tests.conftest import NIR_FIXTURES

MODEL = NIR_FIXTURES / "lif_norse.nir"  # Input(1) -> Affine -> LIF "1" -> Output


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def inputs() -> dict[str, Any]:
    return {"input": (np.random.default_rng(0).random((2, 20, 1)) < 0.5).astype(float)}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """sim and loihi2 (in Lava) run on inputs; the FPGA target compiled without: no energy,
    no agreement, and resources besides the cores."""
    tmp = tmp_path_factory.mktemp("compiles")
    api.compile(MODEL, "sim", out_dir=tmp / "sim", inputs=inputs())
    api.compile(MODEL, "loihi2", out_dir=tmp / "loihi2", inputs=inputs())
    api.compile(MODEL, "fpga-ice40up5k", out_dir=tmp / "ice40")
    return [tmp / "sim", tmp / "loihi2", tmp / "ice40"]


def expected(folder: Path) -> dict[str, Any]:
    """The side-by-side figures, read from the report by hand."""
    r = json.loads((folder / "report.json").read_text())
    energy, agreement = r["energy"], r["agreement"]
    usage = r["backend_notes"].get("resources")
    tool = None if usage is None else {"yosys": "Yosys", "estimate": "estimate"}[usage["tool"]]
    return {
        "folder": folder.name,
        "model": "lif_norse.nir",
        "target": r["target"],
        "steps": None if energy is None else 20,
        "dt": r["dt"],
        "pipeline": "lower{dt=0.0001},quantize,map",
        "rounding": "nearest",
        "neurons": r["resources"]["neurons"],
        "synapses": r["resources"]["synapses"],
        "cores": r["placement"]["cores_used"],
        "fpga_resources": None
        if usage is None
        else ", ".join(f"{usage['total'][k]} {k}" for k in ("luts", "ffs", "bram_blocks", "dsps"))
        + f" ({tool})",
        "energy_uj": None if energy is None else energy["total_uj_per_inference"],
        "paper_energy_uj": None if energy is None else r["paper_energy"]["snn_uj"],
        "latency_steps": r["latency"]["output"],
        "latency_s": None if energy is None else energy["latency"]["wall_clock_s"],
        "prediction_agreement": None
        if agreement is None
        else agreement["outputs"]["output"]["prediction_agreement"],
        "spike_f1": None if agreement is None else agreement["populations"]["1"]["spike_f1"],
    }


@pytest.mark.toolchain("lava")
def test_json_and_text_tables_have_a_column_per_folder(folders: list[Path]):
    code, out = invoke("report", *folders, "--json")
    assert code == 0, out
    columns = json.loads(out)
    assert columns == [expected(f) for f in folders]
    assert columns[2]["fpga_resources"] is not None and columns[2]["energy_uj"] is None

    code, out = invoke("report", *folders)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["sim", "loihi2", "ice40"]
    rows = {line[:36].strip(): line[36:].split("  ") for line in lines[2:]}
    cells = {k: [c.strip() for c in v if c.strip()] for k, v in rows.items()}
    assert cells["target"] == ["sim", "loihi2", "fpga-ice40up5k"]
    assert cells["steps T"] == ["20", "20", "\N{EM DASH}"]
    energy = [f"{c['energy_uj']:.4g}" for c in columns[:2]]
    assert cells["uJ / inference, hardware model"] == [*energy, "\N{EM DASH}"]
    assert cells["spike F1, worst population"][2] == "\N{EM DASH}"


@pytest.mark.toolchain("lava")
def test_html_page_holds_every_folder_and_is_not_overwritten(folders: list[Path], tmp_path):
    page = tmp_path / "compare.html"
    code, out = invoke("report", *folders, "--html", page)
    assert code == 0, out
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
    for column in map(expected, folders):
        assert f"<th>{column['folder']}</th>" in text
        assert f"<td>{column['target']}</td>" in text
        if column["fpga_resources"] is not None:
            assert f"<td>{column['fpga_resources']}</td>" in text
        if column["energy_uj"] is not None:
            assert f"<td>{column['energy_uj']:.4g}</td>" in text
    page.write_text("mine")
    code, out = invoke("report", *folders, "--html", page)
    assert code == 4 and f"--html {page} exists; pass --force" in out
    assert page.read_text() == "mine"
    assert invoke("report", *folders, "--html", page, "--force")[0] == 0
    assert page.read_text() == text


@pytest.mark.toolchain("lava")
def test_budgets_apply_to_each_folder(folders: list[Path]):
    code, out = invoke("report", *folders[:2], "--max-energy-uj", "1e-3")
    assert code == 3
    error = out.splitlines()[-1]
    assert error.startswith("error: budget broken: ") and str(folders[1]) in error
    assert str(folders[0]) not in error  # sim's energy is under 1 nJ
    assert "sim" in out.splitlines()[0]  # the table still printed
    code, out = invoke("report", *folders, "--max-energy-uj", "1")
    assert code == 3 and f"{folders[2]}: --max-energy-uj" in out  # FPGA: not modelled


def test_html_takes_several_folders_and_compare_one(tmp_path):
    code, out = invoke("report", tmp_path, "--html", tmp_path / "x.html")
    assert code == 2 and "--html needs two or more FOLDERS" in out
    code, out = invoke("report", tmp_path, tmp_path, "--compare", tmp_path)
    assert code == 2 and "--compare takes one FOLDER" in out


def test_report_html_has_every_table_of_the_text_summary(tmp_path):
    """Each table title of the text summary heads a section of report.html."""
    result = api.compile(MODEL, "sim", out_dir=tmp_path / "out", inputs=inputs())
    lines = summary(result.report).splitlines()
    headers = [i - 1 for i, line in enumerate(lines) if re.fullmatch(r"-+( +-+)*", line)]
    titles = [lines[i - 1] for i in headers if lines[i - 1][:1].isupper()]
    assert len(titles) == 7  # resources, placement, quantization, agreement, per layer, 2 energy
    headings = re.findall(r"<h2>(.*?)</h2>", (tmp_path / "out" / "report.html").read_text())
    for title in titles:
        assert any(h.startswith(re.split(r"[:,(]", title)[0]) for h in headings), title
