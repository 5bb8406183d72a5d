"""Multi-level (graded) spikes in the RTL (docs/SEMANTICS.md §1.1): a core of D > 1 levels
sends the count #{k in 1..D : v > k*th} in ceil(log2(D + 1)) bits, its readers multiply it by
the weight, and everything equals the simulator bit for bit in Icarus Verilog."""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest

from snn_deploy import api
from snn_deploy.backends import fpga
from snn_deploy.backends.fpga.emit import netlist, top_verilog
from snn_deploy.backends.fpga.lower import build_cores
from snn_deploy.backends.fpga.rules import check_board, spike_levels_supported
from snn_deploy.backends.fpga.synth import estimate
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.types import ResetMode
from snn_deploy.target.load import load_target
from snn_deploy.target.rules import spike_payload_fits
from tests.backends.fpga.test_rtl import TARGET, assert_rtl_equals_sim
from tests.backends.sim.test_against_reference import random_net
from tests.conftest import REPO

ICE40 = load_target("fpga-ice40up5k")


def graded_net(seed: int, levels: int, **kw):
    """``random_net`` with D-level spiking populations (recurrent p1 -> p2, skip from x)."""
    rng = np.random.default_rng(seed)
    net = random_net(rng, levels=levels, **kw)
    x = (rng.random((2, 40, 6)) < 0.4).astype(np.int64)
    return net, {"x": x}


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("levels", [3, 12])  # 2 and 4 payload bits; 12 is not 2**b - 1
@pytest.mark.parametrize("reset", [ResetMode.ZERO, ResetMode.SUBTRACT], ids=["zero", "subtract"])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("one_lane", [False, True], ids=["lanes", "one-lane"])
def test_multi_level_nets(levels, reset, seed, one_lane):
    net, inputs = graded_net(seed, levels, reset=reset)
    want = assert_rtl_equals_sim(net, inputs, one_lane=one_lane)
    # counts above 1 occur, up to the top level, in the recurrent p1 and in p2
    assert want.populations["p1"].max() == want.populations["p2"].max() == levels


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("case", [{"big": True}, {"delay": 2}, {"non_spiking_last": True}])
def test_multi_level_with_wide_datapaths_delays_and_a_readout(case):
    net, inputs = graded_net(3, 12, reset=ResetMode.SUBTRACT, **case)
    want = assert_rtl_equals_sim(net, inputs)
    assert (want.populations["p1"] > 1).any()


@pytest.mark.toolchain("iverilog")
def test_widest_payload_and_zero_thresholds():
    """255 levels (8 bits, the maximum) and threshold mantissas of 0, where any v > 0 sends
    the top level (``kernels.spike_count``)."""
    net, inputs = graded_net(1, 255)
    pop = net.populations["p1"]
    vth = pop.fixed.vth.copy()
    vth[::2] = 0
    fixed = dataclasses.replace(pop.fixed, vth=vth)
    net = net.replace(populations={**net.populations, "p1": dataclasses.replace(pop, fixed=fixed)})
    want = assert_rtl_equals_sim(net, inputs)
    assert want.populations["p1"].max() == 255
    assert want.populations["p2"].max() > 1


def test_payload_widths_in_the_cores_and_the_netlist():
    net, _ = graded_net(0, 12)
    program = fpga.lower(net, TARGET)
    p1, p2 = program.cores
    assert [(p.src, p.width) for p in p2.projections] == [("p1", 4), ("x", 8)]
    assert p1.projections[1].width == 4 and p1.xw == 8  # 8-bit graded inputs stay widest
    doc = netlist(program)
    assert [c["spike_levels"] for c in doc["cores"]] == [12, 12]
    assert doc["cores"][1]["incoming"][0]["history"]["width"] == 4
    top = top_verilog(program)
    assert top.count(".LEVELS(12), .LB(4)") == 2
    assert ".W(4), .P(8)" in top  # p1's history buffer in p2's unit: 4 bits per value
    # the synaptic sums grow with the top level: the same net with binary spikes has smaller a
    binary = build_cores(random_net(np.random.default_rng(0)))
    assert [c.a_in for c in build_cores(net)] > [c.a_in for c in binary]
    spikes_only = build_cores(net.replace(projections=(net.projections[1],)))  # p1 -> p2 only
    assert spikes_only[1].xw == 5  # 4 unsigned bits and a zero sign bit


def test_binary_cores_keep_the_binary_rtl():
    """D = 1 instantiates lif_core with its defaults (LEVELS = LB = 1): the generated
    snn_top.v of a binary net is what it was before multi-level spikes."""
    net, _ = graded_net(0, 1)
    top = top_verilog(fpga.lower(net, TARGET))
    assert "LEVELS" not in top and ".LB(" not in top
    assert "hist_ram #(.NSRC(5), .D(2), .W(1)" in top  # 1-bit spike history


def test_estimate_counts_wider_history_and_level_logic():
    net, _ = graded_net(0, 12)
    binary, _ = graded_net(0, 1)
    for target in (TARGET, ICE40):
        cores = build_cores(net, 4)
        est = estimate(cores, net.numeric, target.fpga)["total"]
        base = estimate(build_cores(binary, 4), binary.numeric, target.fpga)["total"]
        assert est["luts"] > base["luts"] and est["ffs"] == base["ffs"]


def test_rule_accepts_up_to_eight_payload_bits():
    for target in (TARGET, ICE40):
        for levels in (3, 255):
            net, _ = graded_net(0, levels)
            assert spike_levels_supported(net, target) == []
            assert spike_payload_fits(net, target) == []
    check_board(graded_net(0, 3)[0], TARGET)  # D = 3 passes every FPGA rule on the Artix-7


def test_rule_rejects_more_than_eight_payload_bits():
    net, _ = graded_net(0, 256)
    with pytest.raises(DesignRuleError) as err:
        fpga.lower(net, TARGET)
    lines = str(err.value).splitlines()
    assert lines[0] == "2 design-rule violation(s) for target 'fpga-artix7-35t':"
    assert lines[1] == (
        "  [fpga-spike-levels] p1: spike payload bits (256 spike levels) is 9, limit 8; "
        "fix: use at most 255 spike levels (the FPGA cores send 8-bit spikes)"
    )
    (generic, _) = spike_payload_fits(net, TARGET)
    assert str(generic).startswith("[spike-payload] p1: spike payload bits (256 spike levels)")
    # a target declaring binary spikes only is honoured by the backend's own rule
    binary_only = dataclasses.replace(
        TARGET, limits=dataclasses.replace(TARGET.limits, spike_payload_bits=0)
    )
    (v, _) = spike_levels_supported(graded_net(0, 3)[0], binary_only)
    assert str(v) == (
        "[fpga-spike-levels] p1: spike payload bits (3 spike levels) is 2, limit 0; "
        "fix: train with binary spikes (spike levels 1)"
    )


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("levels", [1, 3])
def test_emitted_testbench_checks_itself(tmp_path, monkeypatch, levels):
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    net, _ = graded_net(0, levels, delay=2)
    fpga.emit(fpga.lower(net, TARGET), tmp_path)
    rtl = ["tb.v", "snn_top.v", "lif_core.v", "hist_ram.v"]
    subprocess.run(["iverilog", "-o", "sim.vvp", *rtl], cwd=tmp_path, check=True)

    def check() -> tuple[int, str]:
        done = subprocess.run(
            ["vvp", "-n", "sim.vvp", "+check"], cwd=tmp_path, capture_output=True, text=True
        )
        return done.returncode, done.stdout + done.stderr

    code, log = check()
    assert code == 0 and "PASS" in log
    expected = (tmp_path / "expected.mem").read_text().splitlines()
    counts = [int(w, 16) for w in expected]
    assert (max(counts) > 1) == (levels > 1)  # the default stimulus makes graded spikes
    expected[0] = "000002" if expected[0] != "000002" else "000003"
    (tmp_path / "expected.mem").write_text("\n".join(expected) + "\n")
    code, log = check()
    assert code == 1 and "FAIL 1 mismatches" in log and "first mismatch: sample 0 step 0" in log


@pytest.mark.toolchain("iverilog")
def test_shipped_multi_level_kws_model():
    """models/kws_rnn_ml3_t100.pt (hidden CubaLIF, 128 neurons, 3 levels, zero reset), one
    100-step clip, quantized for the Artix-7: the RTL's outputs equal the simulator's."""
    target = load_target("fpga-artix7-35t")
    _, net = api.lower_and_quantize(api.load(REPO / "models/kws_rnn_ml3_t100.pt"), target)
    assert net.populations["hidden"].levels == 3
    with np.load(REPO / "models/kws_test_inputs.npz") as z:
        inputs = {"input": z["input"][:1].astype(np.float64)}
    sim = api.simulate(net, inputs, target="sim")
    rtl = api.simulate(net, inputs, target="fpga-artix7-35t")
    assert sim.populations["hidden"].max() == 3
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(rtl.outputs[k]), np.asarray(sim.outputs[k]), k)
    for k in sim.populations:
        np.testing.assert_array_equal(
            np.asarray(rtl.populations[k]), np.asarray(sim.populations[k]), k
        )
