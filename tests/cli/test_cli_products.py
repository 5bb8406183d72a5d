"""End to end: a ``.pt`` of ``snn_deploy.nn`` layers with attention and a gate compiles for
``sim`` and its integer run agrees with the float reference; it compiles for ``loihi-sim``
(Lava) and ``loihi2`` with the same outputs, ``verify`` replaying them in Lava and in the
simulator, and for ``fpga-artix7-35t``, whose RTL passes ``verify --target rtl``; Loihi 1 and
netx targets refuse it by the design rules ``attention`` and ``gate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snn_deploy import api
from snn_deploy.backends import lava
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir import serialize
from snn_deploy.reports.render import per_layer_table
from tests.cli.test_cli import invoke
from tests.frontends.test_nn_products import CASES, STEPS, architecture, build


@pytest.fixture(scope="module")
def model_and_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("products")
    case = CASES["decayed-multi-level"]
    model = build(case).float()
    torch.save(
        {"architecture": architecture(case), "state_dict": model.state_dict(), "dt": 1e-4},
        folder / "model.pt",
    )
    rng = np.random.default_rng(0)
    x = (rng.random((6, 2 * STEPS, 10)) < 0.5).astype(np.float64)
    np.savez(folder / "x.npz", input=x)
    return folder, x


def test_compiles_for_sim_and_the_integer_run_agrees_with_the_float_reference(model_and_inputs):
    folder, x = model_and_inputs
    out = folder / "out"
    code, text = invoke(
        "compile", folder / "model.pt", "--target", "sim", "--inputs", folder / "x.npz", "-o", out
    )
    assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    units = report["energy"]["counts"]["products"]
    assert (
        units["spikingselfattention2.attention"]["state_updates"] > 0
        and units["spikinggate3.product"]["products"] > 0
    )
    page = (out / "report.html").read_text()
    assert "Product units" in page
    assert '<td class="l">spikingselfattention2.<wbr>attention</td>' in page
    # the per-layer table: a row per product unit with its operations per inference
    ops = {u["unit"]: u["sops_trace"] for u in report["paper_energy"]["products"]}
    row = per_layer_table(report)[1][-2]  # type: ignore[index]
    assert row == ["spikingselfattention2.attention (Attention)", *[None] * 4, ops[row[0][:-12]]]
    assert "spikinggate3.product (Gate)" in text and "spikinggate3.product (Gate)" in page
    agreement = report["agreement"]
    assert agreement["outputs"]["output"]["prediction_agreement"] >= 5 / 6
    assert min(p["spike_agreement"] for p in agreement["populations"].values()) > 0.99
    net = serialize.load(out / "network.npz")
    assert {type(u).__name__ for u in net.products.values()} == {"Attention", "Gate"}
    # the attention product is exact in float: where the quantized q, k, v equal the float
    # ones (here on most steps), so do the products
    float_net, _ = api.lower_and_quantize(api.load(folder / "model.pt"), api.load_target("sim"))
    integer, floats = simulate(net, {"input": x}), simulate(float_net, {"input": x}, fixed=False)
    same = (
        integer.products["spikingselfattention2.attention"]
        == floats.products["spikingselfattention2.attention"]
    )
    assert (
        np.abs(integer.products["spikingselfattention2.attention"]).sum() > 0 and same.mean() > 0.9
    )


@pytest.mark.toolchain("iverilog")
def test_compiles_for_the_fpga_and_the_rtl_verifies(model_and_inputs, monkeypatch):
    """The attention and the gate become ``attention.v`` and ``gate.v`` units; the folder's own
    Verilog in Icarus reproduces the vectors (the simulator's outputs) exactly."""
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    folder, _ = model_and_inputs
    out = folder / "fpga"
    code, text = invoke(
        "compile", folder / "model.pt", "--target", "fpga-artix7-35t", "--inputs",
        folder / "x.npz", "-o", out,
    )  # fmt: skip
    assert code == 0, text
    assert (out / "attention.v").is_file() and (out / "gate.v").is_file()
    units = json.loads((out / "netlist.json").read_text())["units"]
    assert [(u["type"], u["product"]) for u in units] == [
        ("Attention", "spikingselfattention2.attention"),
        ("Gate", "spikinggate3.product"),
    ]
    code, text = invoke("verify", out, "--target", "rtl")
    assert code == 0 and "on rtl: all 1 arrays equal" in text, text


@pytest.mark.toolchain("lava")
def test_compiles_for_loihi_sim_and_lava_equals_sim_in_outputs_and_state(model_and_inputs):
    folder, x = model_and_inputs
    x = x[:2]  # Lava runs one sample at a time, ~1 s each here
    np.savez(folder / "x2.npz", input=x)
    out = folder / "lava"
    code, text = invoke(
        "compile", folder / "model.pt", "--target", "loihi-sim", "--inputs", folder / "x2.npz",
        "-o", out,
    )  # fmt: skip
    assert code == 0, text
    for backend in ("loihi-sim", "sim"):  # vectors.npz (written by Lava) replayed by both
        code, text = invoke("verify", out, "--target", backend)
        assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    notes = report["backend_notes"]
    assert notes["product_processes"] == {
        "spikingselfattention2.attention": "Attention",
        "spikinggate3.product": "Gate",
    }
    assert any(
        "no layer type for a product unit (Attention)" in p for p in notes["netx"]["problems"]
    )
    net = serialize.load(out / "network.npz")
    got = lava.run(lava.lower(net, api.load_target("loihi-sim")), {"input": x}, record_state=True)
    want = simulate(net, {"input": x}, record_state=True)
    assert (
        np.abs(want.products["spikingselfattention2.attention"]).sum() > 0
        and want.products["spikinggate3.product"].any()
    )
    for name in net.products:
        np.testing.assert_array_equal(got.products[name], want.products[name])
    for name in net.populations:
        for run, ref in ((got.populations, want.populations), (got.u, want.u), (got.v, want.v)):
            np.testing.assert_array_equal(run[name], ref[name], err_msg=name)
    code, text = invoke("compile", folder / "model.pt", "--target", "loihi2", "-o", folder / "l2")
    assert code == 0, text


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("loihi1", "Loihi 1 compartments are fixed-function"),
        ("loihi2-netx", "no layer type for a product unit"),
    ],
)
def test_other_hardware_targets_refuse_by_rule_name(model_and_inputs, target, why):
    folder, _ = model_and_inputs
    code, text = invoke("compile", folder / "model.pt", "--target", target, "-o", folder / target)
    assert code == 5, text
    assert (
        "[attention] spikingselfattention2.attention" in text
        and "[gate] spikinggate3.product" in text
    )
    assert why in text
