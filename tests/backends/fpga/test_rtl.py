"""The RTL, simulated in Icarus Verilog, equals the bit-accurate simulator, bit for bit:
outputs of every population at every step, and the u and v state too."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from snn_deploy import api
from snn_deploy.backends import fpga
from snn_deploy.backends.fpga.emit import netlist
from snn_deploy.backends.fpga.lower import build_cores
from snn_deploy.backends.fpga.run import _call, _samples_done, simulate_rtl
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import BackendUnavailableError, InputFileError, MismatchError
from snn_deploy.target.load import load_target
from tests.backends.fpga.nets import corner_net, graph_net
from tests.backends.sim.test_against_reference import CASES, random_net
from tests.conftest import REPO

TARGET = load_target("fpga-artix7-35t")  # small nets get several lanes per core
ICE40 = load_target("fpga-ice40up5k")


def assert_rtl_equals_sim(net, inputs, *, one_lane=False):
    """RTL == simulator on every population at every step; returns the simulator's trace."""
    program = fpga.lower(net, TARGET)
    if one_lane:
        program = dataclasses.replace(program, cores=build_cores(net))
    want = simulate(net, inputs, record_state=True)
    got, cycles = simulate_rtl(program, inputs, expected=want.populations, record_state=True)
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name], err_msg=name)
        assert_array_equal(got.u[name], want.u[name], err_msg=f"u of {name}")
        assert_array_equal(got.v[name], want.v[name], err_msg=f"v of {name}")
    for name in net.outputs:
        assert_array_equal(got.outputs[name], want.outputs[name], err_msg=name)
    assert cycles == program.cycles_per_step
    return want


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("one_lane", [False, True], ids=["lanes", "one-lane"])
def test_random_nets(case, seed, one_lane):
    rng = np.random.default_rng(seed)
    net = random_net(rng, **CASES[case])
    x = (rng.random((2, 40, 6)) < 0.4).astype(np.int64)
    want = assert_rtl_equals_sim(net, {"x": x}, one_lane=one_lane)
    assert sum(int(np.abs(v).sum()) for v in want.populations.values()) > 0


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("seed", range(3))
def test_graded_inputs(seed):
    rng = np.random.default_rng(10 + seed)
    net = random_net(rng, big=seed == 0)
    x = rng.integers(-128, 128, (2, 30, 6))
    assert_rtl_equals_sim(net, {"x": x})


@pytest.mark.toolchain("iverilog")
def test_wrap_and_saturation_corners():
    net = corner_net()
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (2, 40, 3))
    x[:, :5] = 127  # a burst of the largest input
    assert_rtl_equals_sim(net, {"x": x})
    state = simulate(net, {"x": x}, record_state=True)
    assert np.abs(state.u["p"]).max() > 2**24  # u wrapped once and still left 24 bits
    assert state.v["q"].max() == 2**23 - 1
    assert state.v["q"].min() == -(2**23 - 1)
    assert state.populations["p"].sum() > 0


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("seed", range(2))
def test_inputs_bias_only_core_and_graded_sources(seed):
    rng = np.random.default_rng(seed)
    net = graph_net(rng)
    inputs = {
        "a": (rng.random((2, 30, 7)) < 0.5).astype(np.int64),
        "b": rng.integers(-20, 20, (2, 30, 2)),
    }
    want = assert_rtl_equals_sim(net, inputs)
    assert want.populations["out"].sum() > 0


@pytest.mark.toolchain("iverilog")
def test_braille_example():
    target = load_target("fpga-artix7-35t")
    _, net = api.lower_and_quantize(api.load(REPO / "models/braille_noDelay_bias_zero.nir"), target)
    x = api.read_inputs(REPO / "models/braille_sample_inputs.npz")["input"][:2, :120]
    want = assert_rtl_equals_sim(net, {"input": x})
    assert want.populations["lif2"].sum() > 0


def test_u_width_follows_the_smallest_current_decay():
    # Braille core 0 takes 8-bit graded inputs, so |a << 6| can exceed 2**24 and u settles
    # below (A - 2**24) / d, d = (min du + 1) / 4096 (docs/FPGA.md §2.1): 30 bits at its
    # du = 1842. One neuron without current decay (du = 0) is the worst case: 40 bits.
    target = load_target("fpga-artix7-35t")
    _, net = api.lower_and_quantize(api.load(REPO / "models/braille_noDelay_bias_zero.nir"), target)
    core = fpga.lower(net, target).cores[0]
    assert int(core.pop.fixed.du.min()) == 1842
    assert core.u_width == 30
    du = core.pop.fixed.du.copy()
    du[0] = 0
    pop = dataclasses.replace(core.pop, fixed=dataclasses.replace(core.pop.fixed, du=du))
    slow = net.replace(populations={**net.populations, pop.name: pop})
    assert fpga.lower(slow, target).cores[0].u_width == 40


def test_lanes_follow_the_board():
    net = random_net(np.random.default_rng(0))
    assert [c.lanes for c in fpga.lower(net, TARGET).cores] == [8, 4]
    assert [c.lanes for c in fpga.lower(net, ICE40).cores] == [1, 1]


@pytest.mark.toolchain("iverilog")
def test_emitted_testbench_checks_itself(tmp_path, monkeypatch):
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    net = random_net(np.random.default_rng(0), delay=2)
    program = fpga.lower(net, TARGET)
    files = {f.name for f in fpga.emit(program, tmp_path)}
    assert {
        "netlist.json",
        "snn_top.v",
        "lif_core.v",
        "hist_ram.v",
        "tb.v",
        "stim.mem",
        "expected.mem",
        "core0_weights.mem",
        "core1_params.mem",
        "resources.json",
    } <= files
    rtl = ["tb.v", "snn_top.v", "lif_core.v", "hist_ram.v"]
    subprocess.run(["iverilog", "-o", "sim.vvp", *rtl], cwd=tmp_path, check=True)
    log = subprocess.run(
        ["vvp", "-n", "sim.vvp", "+check"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    assert "PASS" in log
    # A corrupted expectation makes it fail, with a non-zero exit status for CI.
    expected = (tmp_path / "expected.mem").read_text().splitlines()
    expected[-1] = "000002" if expected[-1] != "000002" else "000003"
    (tmp_path / "expected.mem").write_text("\n".join(expected) + "\n")
    done = subprocess.run(
        ["vvp", "-n", "sim.vvp", "+check"], cwd=tmp_path, capture_output=True, text=True
    )
    log = done.stdout + done.stderr
    assert done.returncode == 1, log
    assert "FAIL 1 mismatches" in log
    assert f"first mismatch: sample 0 step 31 core 1 neuron {net.size_of('p2') - 1}" in log


@pytest.mark.toolchain("iverilog")
def test_a_failing_testbench_check_is_a_mismatch():
    net = random_net(np.random.default_rng(0))
    x = (np.random.default_rng(1).random((1, 8, 6)) < 0.4).astype(np.int64)
    want = dict(simulate(net, {"x": x}).populations)
    want["p1"] = want["p1"].copy()
    want["p1"][0, 5, 2] = 1 - want["p1"][0, 5, 2]
    with pytest.raises(
        MismatchError,
        match=r"status 1: first mismatch: sample 0 step 5 core 0 "
        r"neuron 2 .*; FAIL 1 mismatches",
    ):
        simulate_rtl(fpga.lower(net, TARGET), {"x": x}, expected=want)


@pytest.mark.toolchain("iverilog")
def test_progress_after_every_sample():
    """``run`` reports each sample as Icarus finishes it (the testbench's ``SAMPLE_DONE``
    lines), as the Lava backend does, and the trace is the simulator's."""
    net = random_net(np.random.default_rng(0))
    x = (np.random.default_rng(1).random((3, 12, 6)) < 0.4).astype(np.int64)
    calls: list[tuple[int, int]] = []
    got = fpga.run(fpga.lower(net, TARGET), {"x": x}, progress=lambda *a: calls.append(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    want = simulate(net, {"x": x})
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name], err_msg=name)


def test_tool_output_is_read_while_the_tool_runs(tmp_path):
    """Each line reaches ``on_line`` as it is printed: the child prints one line, then waits
    for the file the reader makes on seeing it (it would give up after 60 s)."""
    child = (
        "import pathlib, sys, time\n"
        "print('SAMPLE_DONE 1', flush=True)\n"
        "end = time.monotonic() + 60\n"
        "while not pathlib.Path('seen').exists():\n"
        "    if time.monotonic() > end: sys.exit(3)\n"
        "    time.sleep(0.01)\n"
        "print('SAMPLE_DONE 2')\n"
    )
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        (tmp_path / "seen").touch()

    log = _call(
        [sys.executable, "-c", child],
        tmp_path,
        on_line=_samples_done(progress, 2),
    )
    assert calls == [(1, 2), (2, 2)]
    assert log == "SAMPLE_DONE 1\nSAMPLE_DONE 2\n"


def test_netlist_describes_cores_memories_and_routes():
    net = graph_net(np.random.default_rng(0))
    program = fpga.lower(net, TARGET)
    doc = netlist(program)
    assert doc["schema"] == "snn-deploy-fpga-netlist/1"
    assert [c["population"] for c in doc["cores"]] == ["osc", "li", "out"]
    assert doc["cores"][0]["incoming"] == []
    li = doc["cores"][1]
    assert li["update_units"] == 4
    assert li["memories"]["weights"] == {
        "file": "core1_weights.mem",
        "depth": 7 + 2 + 3,
        "width": 4 * program.net.numeric.weight.width,
    }
    assert [p["history"]["slots"] for p in li["incoming"]] == [2, 4, 2]
    assert {"from": {"input": "b"}, "to_core": 1, "projection": "b>li"} in doc["routes"]
    assert {"from": {"core": 1}, "to_core": 2, "projection": "li>out_late"} in doc["routes"]
    assert doc["io"]["inputs"][1] == {"name": "b", "select": 1, "size": 2, "bits": 8}
    assert json.loads(json.dumps(doc)) == doc


def test_missing_simulator_names_the_package(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda _: None)
    program = fpga.lower(random_net(np.random.default_rng(0)), TARGET)
    with pytest.raises(BackendUnavailableError, match="apt-get install iverilog"):
        fpga.run(program, {"x": np.zeros((1, 3, 6))})


def test_inputs_outside_the_input_width_are_rejected():
    program = fpga.lower(random_net(np.random.default_rng(0)), TARGET)
    with pytest.raises(InputFileError, match=r"\[-128, 127\]"):
        fpga.run(program, {"x": np.full((1, 3, 6), 300)})


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("shape", [(2, 3), (1, 3, 2)], ids=["C,T", "C,H,W"])
def test_default_stimulus_of_a_multidimensional_input(tmp_path, monkeypatch, shape):
    # with no inputs, emit writes a random stimulus: shaped like the input, not flat
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    net = random_net(np.random.default_rng(0))
    program = fpga.lower(net.replace(inputs={"x": shape}), TARGET)
    fpga.emit(program, tmp_path)
    rtl = ["tb.v", "snn_top.v", "lif_core.v", "hist_ram.v"]
    subprocess.run(["iverilog", "-o", "sim.vvp", *rtl], cwd=tmp_path, check=True)
    log = subprocess.run(
        ["vvp", "-n", "sim.vvp", "+check"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    assert "PASS" in log


@pytest.mark.toolchain("iverilog")
@pytest.mark.toolchain("spikingjelly")
@pytest.mark.parametrize("v_reset", [0.0, None], ids=["zero", "subtract"])
def test_ge_threshold_is_exact_at_ties(v_reset):
    """SpikingJelly's ``v >= θ`` (``GE``): quarter weights and θ = 1 land voltages exactly on
    the threshold; the RTL (``v + 1 > th``) fires there like the simulator, where a ``>`` test
    would not."""
    from snn_deploy.frontends.torch import load
    from snn_deploy.ir.types import ThresholdCompare
    from tests.frontends.test_torch_spikingjelly import tie_model, with_compare

    model = tie_model(v_reset)
    _, net = api.lower_and_quantize(load(model, input_shape=(10,), dt=1e-4), TARGET)
    assert {p.threshold_compare for p in net.populations.values()} == {ThresholdCompare.GE}
    x = (np.random.default_rng(0).random((2, 40, 10)) < 0.5).astype(np.int64)
    strict = with_compare(net, ThresholdCompare.GT)
    tied = simulate(net, {"input": x}).populations
    assert any(
        not np.array_equal(simulate(strict, {"input": x}).populations[k], tied[k]) for k in tied
    )
    assert_rtl_equals_sim(net, {"input": x})
