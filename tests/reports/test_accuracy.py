"""Accuracy against labels and the confusion matrix (issue 21 item 2): compile ``--inputs``
with a ``labels`` array, checked against a hand computation on a net that copies its input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from click.testing import CliRunner

import snn_deploy as sd
from snn_deploy.cli.main import cli
from snn_deploy.errors import InputFileError, UsageError
from snn_deploy.reports.html import render_html
from snn_deploy.reports.render import summary

# spikes per channel of each sample; the net copies them, so the read-out sums are these
COUNTS = np.array([[3, 1, 0], [0, 2, 1], [1, 1, 2], [0, 0, 0], [2, 2, 0], [0, 3, 1]])
LABELS = np.array([0, 2, 2, 1, 1, 1])
# by hand: predictions 0, 1, 2, undecided (silent), 0 (tie: lowest index), 1 -> samples
# 0, 2, 5 correct; label 0: predicted 0 once; label 1: 0, 1 and undecided once each;
# label 2: 1 and 2 once each
CONFUSION = [[1, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 0]]


def _copy_net() -> nir.NIRGraph:
    """Input(3) -> identity -> IF (threshold 0.5): every input spike is an output spike."""
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=np.eye(3)),
            "if": nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
        type_check=False,
    )


def _inputs() -> dict[str, np.ndarray]:
    x = np.zeros((len(COUNTS), 8, 3))
    for b, row in enumerate(COUNTS):
        for k, m in enumerate(row):
            x[b, k : k + m, k] = 1  # m spikes on channel k
    return {"input": x}


def test_accuracy_and_confusion_match_the_hand_computation(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sd.compile(
            _copy_net(), "sim", inputs=_inputs(), labels=LABELS, out_dir=tmp_path / "o"
        )
    acc = result.report["accuracy"]
    out = acc["outputs"]["output"]
    assert acc["samples"] == 6 and out["classes"] == 3
    assert out["confusion"] == CONFUSION
    assert (out["quantized_correct"], out["float_correct"]) == (3, 3)
    assert out["quantized"] == out["float"] == 0.5
    assert json.loads((tmp_path / "o" / "report.json").read_text())["accuracy"] == acc
    text = summary(result.report)
    assert "accuracy against labels (6 samples): output output: quantized 0.5 (3/6)" in text
    page = (tmp_path / "o" / "report.html").read_text()
    assert "<h2>Accuracy against labels (6 samples)</h2>" in page
    assert "confusion matrix, output output" in page and "undec." in page


def test_without_labels_the_report_says_how_to_add_them() -> None:
    result = sd.compile(_copy_net(), "sim", inputs=_inputs())
    assert result.report["accuracy"] is None
    assert "accuracy against labels" not in summary(result.report)
    assert "Accuracy: no labels" in render_html(result.report)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (LABELS[:5], r"labels have shape \[5\]; expected \[6\]"),
        (LABELS.reshape(6, 1), r"labels have shape \[6, 1\]"),
        (LABELS.astype(np.float64), "labels have dtype float64"),
        (np.array([0, 1, 2, 3, 0, 0]), "label 3 of sample 3 is not a class of output 'output'"),
        (np.array([0, -1, 2, 1, 0, 0]), "label -1 of sample 1"),
    ],
)
def test_bad_labels_are_refused(labels: np.ndarray, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        sd.compile(_copy_net(), "sim", inputs=_inputs(), labels=labels)


def test_labels_without_inputs_are_refused() -> None:
    with pytest.raises(UsageError, match="give inputs too"):
        sd.compile(_copy_net(), "sim", labels=LABELS)


def test_cli_reads_labels_from_the_inputs_file(tmp_path: Path) -> None:
    model = tmp_path / "copy.nir"
    nir.write(model, _copy_net())
    data = tmp_path / "x.npz"
    np.savez(data, **_inputs(), labels=LABELS)
    result = CliRunner().invoke(
        cli, ["compile", str(model), "-o", str(tmp_path / "o"), "--inputs", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "quantized 0.5 (3/6), float 0.5 (3/6)" in result.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["accuracy"]["outputs"]["output"]["confusion"] == CONFUSION

    np.savez(data, **_inputs(), labels=np.array([0, 1, 7, 0, 0, 0]))
    bad = CliRunner().invoke(
        cli, ["compile", str(model), "-o", str(tmp_path / "p"), "--inputs", str(data)]
    )
    assert bad.exit_code == 4
    assert bad.output.strip().splitlines() == [
        "error: label 7 of sample 2 is not a class of output 'output' (0..2); 1 such label(s)"
    ]
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("classes", [12, 35])
def test_confusion_heatmap_renders_without_warnings(classes: int) -> None:
    result = sd.compile(_copy_net(), "sim", inputs=_inputs(), labels=LABELS)
    report = result.report
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 20, size=(classes, classes + 1)).tolist()
    out = report["accuracy"]["outputs"]["output"]
    report["accuracy"]["outputs"]["output"] = {**out, "classes": classes, "confusion": matrix}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_html(report)
    assert page.count("confusion matrix, output output") == 1
    assert f">{classes - 1}<" in page  # the last class index is a tick label
