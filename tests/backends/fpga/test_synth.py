"""Resource report: Yosys synthesis of the emitted RTL and the analytical estimate."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from snn_deploy import api
from snn_deploy.backends import fpga
from snn_deploy.backends.fpga.emit import emit
from snn_deploy.backends.fpga.lower import build_cores
from snn_deploy.backends.fpga.synth import RESOURCES, estimate, resource_report, synthesize
from snn_deploy.ir.types import ResetMode
from snn_deploy.target.load import load_target
from tests.backends.fpga.nets import BRAILLE, product_net
from tests.backends.sim.test_against_reference import random_net


def braille(target_name):
    target = load_target(target_name)
    _, net = api.lower_and_quantize(api.load(BRAILLE), target)
    return fpga.lower(net, target), target


@pytest.mark.toolchain("yosys")
@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("target_name", ["fpga-artix7-35t", "fpga-ice40up5k"])
def test_yosys_report_of_the_example_fits_the_board(compiled_braille, target_name):
    """The compile's resources.json (the synthesis of its RTL) of the braille example."""
    program, target = braille(target_name)
    report = json.loads((compiled_braille(target_name) / "resources.json").read_text())
    usage = report["resources"]
    assert usage["tool"] == "yosys"
    assert [c["population"] for c in usage["cores"]] == ["lif1.lif", "lif2"]
    for core in usage["cores"]:
        assert core["luts"] > 0 and core["ffs"] > 0
    total = usage["total"]
    assert total["luts"] > 0 and total["ffs"] > 0 and total["bram_blocks"] > 0
    assert total == {r: usage["control"][r] + sum(c[r] for c in usage["cores"]) for r in RESOURCES}
    assert report["violations"] == []
    assert all(0 < report["utilisation"][r] <= 1 for r in ("luts", "ffs", "bram_blocks"))
    lanes = [c.lanes for c in program.cores]
    assert report["latency"]["cycles_per_step"] == program.cycles_per_step
    if target.fpga.family == "xc7":
        assert lanes == [8, 8] and program.cycles_per_step == 5 * (50 + 3) + 1 + 3
        assert total["dsps"] > 0
        guess = estimate(program.cores, program.net.numeric, target.fpga)["total"]
        assert guess["dsps"] == total["dsps"] and guess["bram_blocks"] == total["bram_blocks"]
        for r in ("luts", "ffs"):
            assert 0.5 < guess[r] / total[r] < 2
    else:
        assert lanes == [1, 1] and program.cycles_per_step == 38 * (50 + 3) + 1 + 3


@pytest.mark.toolchain("yosys")
def test_yosys_synthesizes_a_multi_level_design(tmp_path):
    """12 spike levels (4-bit payloads, history buffers and level logic), one lane per core."""
    target = load_target("fpga-artix7-35t")
    net = random_net(np.random.default_rng(1), levels=12, reset=ResetMode.SUBTRACT)
    program = dataclasses.replace(fpga.lower(net, target), cores=build_cores(net))
    emit(program, tmp_path)
    assert ".LEVELS(12), .LB(4)" in (tmp_path / "snn_top.v").read_text()
    usage = synthesize(program, target.fpga, tmp_path)
    for core in usage["cores"]:
        assert core["luts"] > 0 and core["ffs"] > 0 and core["dsps"] > 0
    guess = estimate(program.cores, net.numeric, target.fpga)["total"]
    total = usage["total"]
    assert guess["dsps"] == total["dsps"] and guess["bram_blocks"] == total["bram_blocks"]
    for r in ("luts", "ffs"):
        assert 0.5 < guess[r] / total[r] < 2, r


def test_estimate_without_yosys():
    program, _ = braille("fpga-ice40up5k")
    report = resource_report(program, None)
    assert report["resources"]["tool"] == "estimate"
    assert all(report["resources"]["total"][r] > 0 for r in ("luts", "ffs", "bram_blocks"))
    assert report["latency"]["us_per_step"] == pytest.approx((2018 + 12) / 48.0)


def test_synthesize_names_the_package_when_yosys_is_missing(monkeypatch, tmp_path):
    from snn_deploy.errors import BackendUnavailableError

    monkeypatch.setattr("shutil.which", lambda _, path=None: None)
    program, target = braille("fpga-artix7-35t")
    with pytest.raises(BackendUnavailableError, match="apt-get install yosys"):
        synthesize(program, target.fpga, tmp_path)


@pytest.mark.toolchain("yosys")
def test_yosys_synthesizes_the_product_units(tmp_path):
    """An attention unit whose state (1,024 x 10 bits) goes to block RAM and a gate, on xc7:
    each reported apart, the estimate's block RAMs and DSPs equal Yosys', LUTs and FFs within
    a factor of two."""
    target = load_target("fpga-artix7-35t")
    net = product_net(np.random.default_rng(0), dim=32, heads=1, state_bits=10)
    program = fpga.lower(net, target)
    emit(program, tmp_path)
    report = resource_report(program, tmp_path)
    usage = report["resources"]
    assert [(u["type"], u["product"]) for u in usage["units"]] == [
        ("Attention", "att"),
        ("Gate", "gate"),
    ]
    total = usage["total"]
    parts = (*usage["cores"], *usage["units"], usage["control"])
    assert total == {r: sum(p[r] for p in parts) for r in RESOURCES}
    att, gate = usage["units"]
    assert att["bram_blocks"] == 1 and gate["bram_blocks"] == 0
    guess = estimate(program.cores, net.numeric, target.fpga, program.units)["units"]
    for got, want in zip(guess, usage["units"], strict=True):
        assert got["dsps"] == want["dsps"] and got["bram_blocks"] == want["bram_blocks"]
        for r in ("luts", "ffs"):
            assert 0.5 < got[r] / want[r] < 2, (got["product"], r)
    assert report["latency"]["unit_cycles_per_step"] == {"att": 32 * 32 + 4, "gate": 32 + 2}
    assert report["violations"] == []
