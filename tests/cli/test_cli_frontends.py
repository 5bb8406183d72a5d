"""The CLI on PyTorch checkpoints (safe and pickled) and on ONNX conversion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snn_deploy.cli.main import cli
from tests.frontends.test_torch import ARCH, _model


def invoke(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_compile_a_checkpoint(tmp_path: Path):
    torch.save({"architecture": ARCH, "state_dict": _model().state_dict()}, tmp_path / "m.pt")
    code, text = invoke("compile", tmp_path / "m.pt", "-o", tmp_path / "out")
    assert code == 0, text
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["graph"]["node_types"]["LIF"] == 1
    assert report["resources"]["neurons"] == 11


def test_pickled_module_is_refused_without_the_flag(tmp_path: Path):
    torch.save(_model(), tmp_path / "m.pt")
    code, text = invoke("inspect", tmp_path / "m.pt")
    assert code == 4 and "--trust-pickle" in text and text.count("\n") == 1
    code, text = invoke("inspect", tmp_path / "m.pt", "--trust-pickle")
    assert code == 0 and "LIF" in text
    assert text.startswith("warning: unpickling") and "runs any code" in text.splitlines()[0]


@pytest.mark.toolchain("onnx")
def test_convert_an_onnx_ann_then_compile_it(tmp_path: Path):
    from tests.frontends.test_onnx import _data, _to_onnx, _train

    x, y = _data()
    _to_onnx(_train(x[:800], y[:800]), tmp_path / "ann.onnx")
    np.savez(tmp_path / "cal.npz", x=x[:200])
    code, text = invoke(
        "convert",
        tmp_path / "ann.onnx",
        "--calibrate",
        tmp_path / "cal.npz",
        "-o",
        tmp_path / "snn.nir",
        "--json",
    )
    assert code == 0, text
    report = json.loads(text)
    assert report["output"] == str(tmp_path / "snn.nir")
    assert report["snn_vs_ann_prediction_agreement"] >= 0.9
    assert report["quantized"]["outputs"]["output"]["prediction_agreement"] >= 0.9
    code, text = invoke("compile", tmp_path / "snn.nir", "-o", tmp_path / "out")
    assert code == 0, text
    code, text = invoke("compile", tmp_path / "ann.onnx", "-o", tmp_path / "o2")
    assert code == 4 and "needs calibration inputs" in text


@pytest.mark.toolchain("snntorch")
def test_exporter_profile_and_agreement_in_the_summary(tmp_path: Path):
    """An snnTorch export read with --exporter snntorch: the late reset is one warning line
    naming the bound; the summary prints the agreement and each output's latency."""
    import nir
    import numpy as np
    import snntorch as st
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6), st.Leaky(beta=torch.full((6,), 0.9), threshold=torch.ones(6))
    )
    nir.write(tmp_path / "m.nir", export_to_nir(model, torch.zeros(1, 4), ignore_dims=[0]))
    x = (np.random.default_rng(0).random((2, 20, 4)) < 0.5).astype(np.float64)
    np.savez(tmp_path / "x.npz", input=x * 3)
    args = ("compile", tmp_path / "m.nir", "-o", tmp_path / "out", "--inputs", tmp_path / "x.npz")
    code, text = invoke(*args)
    assert code == 0, text
    assert "warning: " in text and "looks like a snntorch export" in text
    code, text = invoke(*args, "--exporter", "snntorch", "--force")
    assert code == 0, text
    warning = next(line for line in text.splitlines() if line.startswith("warning:"))
    assert "reset_delay=True (the reset lands one step late)" in warning
    assert "Agreement, quantized vs float reference" in text
    assert "latency (steps)" in text
