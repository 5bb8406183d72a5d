"""The per-layer table (one builder for the text summary and report.html) and the output
traces plot, on a real small compile (issue 21 item 2)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest

from snn_deploy.reports.render import per_layer_table
from tests.cli.test_cli import BRAILLE, INPUTS, invoke
from tests.conftest import NIR_FIXTURES


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("per_layer") / "out"
    code, text = invoke("compile", BRAILLE, "-o", out, "--inputs", INPUTS)
    assert code == 0, text
    return out, text


def test_rows_are_the_figures_of_report_json(compiled: tuple[Path, str]) -> None:
    out, _ = compiled
    report = json.loads((out / "report.json").read_text())
    counts = report["energy"]["counts"]
    samples = counts["samples"]
    table = per_layer_table(report)
    assert table is not None
    headers, rows = table
    assert headers == ["population", "neurons", "spikes", "firing rate", "sparsity", "SOPs in"]
    assert [r[0] for r in rows] == list(counts["populations"]) == ["lif1.lif", "lif2"]
    for name, neurons, spikes, rate, sparsity, sops in rows:
        p = counts["populations"][name]
        assert (neurons, spikes, rate) == (p["neurons"], p["spikes"] / samples, p["firing_rate"])
        assert sparsity == pytest.approx(1 - p["firing_rate"], abs=0)
        into = [q["synops"] for q in counts["projections"].values() if q["dst"] == name]
        assert sops == sum(into) / samples == p["synops_in"] / samples
    # the activity summary's rates are the same figures
    rates = {g["name"]: g["firing_rate"] for g in report["activity"]["groups"]}
    assert all(rates[r[0]] == pytest.approx(r[3]) for r in rows)


def test_the_table_is_in_the_text_and_the_page(compiled: tuple[Path, str]) -> None:
    out, text = compiled
    report = json.loads((out / "report.json").read_text())
    table = per_layer_table(report)
    assert table is not None
    block = text[text.index("Per layer, per inference (mean over 4 samples)") :].splitlines()
    assert block[1].split() == [
        "population",
        "neurons",
        "spikes",
        "firing",
        "rate",
        "sparsity",
        "SOPs",
        "in",
    ]
    for line, row in zip(block[3:5], table[1], strict=True):
        assert line.split()[:2] == [row[0], str(row[1])]
        assert float(line.split()[3]) == pytest.approx(row[3], rel=1e-3)
    page = (out / "report.html").read_text()
    assert "<h2>Per layer, per inference (mean over 4 samples)</h2>" in page
    for row in table[1]:
        name = html.escape(row[0]).replace(".", ".<wbr>")  # a dotted name may wrap after a dot
        assert f'<td class="l">{name}</td><td>{row[1]}</td>' in page


def test_output_traces_are_sample_0s_record(compiled: tuple[Path, str]) -> None:
    out, _ = compiled
    report = json.loads((out / "report.json").read_text())
    o = report["activity"]["outputs"]["output"]
    assert (o["source"], o["spiking"], o["neurons"], o["steps"]) == ("lif2", True, 7, 200)
    with np.load(out / "vectors.npz") as v:
        np.testing.assert_array_equal(
            np.array([r.split() for r in o["rows"]], dtype=np.int64).T, v["output.output"][0, :200]
        )
    page = (out / "report.html").read_text()
    assert "<h2>Output traces</h2>" in page and "output output (spikes of lif2)" in page


def test_without_inputs_a_one_line_note(tmp_path: Path) -> None:
    code, text = invoke("compile", NIR_FIXTURES / "lif_norse.nir", "-o", tmp_path / "o")
    assert code == 0, text
    assert "Per layer: no activity (pass --inputs data.npz)" in text
    page = (tmp_path / "o" / "report.html").read_text()
    assert "Per layer: no activity (pass --inputs data.npz)." in page
    assert "Output traces" not in page
