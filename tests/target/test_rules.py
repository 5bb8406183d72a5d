"""Design rules of ``target.rules`` that the other test modules do not reach: spike payloads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nir
import numpy as np
import pytest

from snn_deploy import api
from snn_deploy.backends import fpga, lava
from snn_deploy.backends.lava import netx
from snn_deploy.errors import DesignRuleError
from snn_deploy.target.load import load_target
from snn_deploy.target.rules import (
    check_design_rules,
    spike_payload_fits,
    synaptic_currents_supported,
)
from tests.backends.sim.test_against_reference import random_net
from tests.graphs import multilevel_chain


def multilevel(levels: int):
    return random_net(np.random.default_rng(0), levels=levels)


@pytest.mark.parametrize("target", ["loihi1", "loihi2-netx"])
def test_binary_only_targets_reject_multi_level_spikes(target):
    with pytest.raises(DesignRuleError) as err:
        check_design_rules(multilevel(3), load_target(target))
    lines = str(err.value).splitlines()
    assert lines[0] == f"2 design-rule violation(s) for target {target!r}:"
    for line, pop in zip(lines[1:], ("p1", "p2"), strict=True):
        assert line == (
            f"  [spike-payload] {pop}: spike payload bits (3 spike levels) is 2, limit 0; "
            "fix: train with binary spikes (spike levels 1), or use a target with graded spikes "
            "(fpga-artix7-35t, fpga-ice40up5k, loihi-sim, loihi2, sim, xylo-audio2)"
        )


@pytest.mark.parametrize("target", ["loihi2", "loihi-sim", "sim"])
def test_graded_spike_targets_accept_multi_level_spikes(target):
    assert spike_payload_fits(multilevel(2**32 - 1), load_target(target)) == []


def test_more_levels_than_a_32_bit_payload_are_rejected():
    (v, _) = spike_payload_fits(multilevel(2**32), load_target("loihi2"))
    assert str(v) == (
        "[spike-payload] p1: spike payload bits (4294967296 spike levels) is 33, limit 32; "
        "fix: use at most 4294967295 spike levels"
    )


def test_binary_nets_pass_on_every_target():
    for target in ("loihi1", "loihi2-netx", "fpga-ice40up5k", "loihi2"):
        assert spike_payload_fits(multilevel(1), load_target(target)) == []


@pytest.mark.parametrize("target", ["loihi1", "loihi2-netx"])
def test_compile_of_a_multi_level_model_fails_with_the_rule(target, tmp_path: Path):
    model = tmp_path / "ml.nir"
    nir.write(model, multilevel_chain())
    with pytest.raises(DesignRuleError, match=r"\[spike-payload\] lif: spike payload bits"):
        api.compile(model, target, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("target", ["fpga-artix7-35t", "fpga-ice40up5k"])
def test_fpga_targets_carry_up_to_eight_bit_spikes(target):
    assert spike_payload_fits(multilevel(255), load_target(target)) == []
    (v, _) = spike_payload_fits(multilevel(256), load_target(target))
    assert str(v) == (
        "[spike-payload] p1: spike payload bits (256 spike levels) is 9, limit 8; "
        "fix: use at most 255 spike levels"
    )


def test_backends_reject_multi_level_spikes_even_without_the_target_rule():
    """A net handed to a backend directly (no ``map``): the FPGA RTL sends at most 8-bit
    spikes, netx is binary, and the Lava backend checks the target's payload itself."""
    net = multilevel(3)
    assert fpga.lower(net, load_target("fpga-artix7-35t")).net is net
    with pytest.raises(DesignRuleError, match=r"\[fpga-spike-levels\] p1: spike payload bits"):
        fpga.lower(multilevel(256), load_target("fpga-artix7-35t"))
    assert "p1: 3 spike levels; netx CUBA layers send binary spikes" in netx.problems(net)
    with pytest.raises(DesignRuleError, match=r"\[spike-payload\] p1"):
        lava.lower(net, load_target("loihi1"))
    assert lava.lower(net, load_target("loihi-sim")).net is net


def test_loihi2_compile_writes_no_netx_file_for_a_multi_level_model(tmp_path: Path):
    model = tmp_path / "ml.nir"
    nir.write(model, multilevel_chain())
    result = api.compile(model, "loihi2", out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "network.net").exists()
    notes = result.report["backend_notes"]["netx"]
    assert notes["written"] is False
    assert "lif: 3 spike levels; netx CUBA layers send binary spikes" in notes["problems"]
    levels = {p["name"]: p["spike_levels"] for p in result.report["resources"]["populations"]}
    assert levels == {"lif": 3, "if": 3}


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("loihi1", "reset-timing"),
        ("loihi2-netx", "reset-timing"),
        ("fpga-artix7-35t", "reset-timing"),
        ("loihi1", "threshold-compare"),
        ("loihi2-netx", "threshold-compare"),
    ],
)
def test_late_reset_and_ge_threshold_are_refused_by_name_with_the_target_files_reason(target, rule):
    from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare

    mode = (
        {"timing": ResetTiming.LATE, "reset": ResetMode.SUBTRACT}
        if rule == "reset-timing"
        else {"compare": ThresholdCompare.GE}
    )
    net = random_net(np.random.default_rng(0), **mode)
    t = load_target(target)
    with pytest.raises(DesignRuleError) as err:
        check_design_rules(net, t)
    text = str(err.value)
    key = "reset_timings" if rule == "reset-timing" else "threshold_compares"
    assert f"[{rule}] p1" in text and t.sources[key] in text and "loihi-sim" in text


@pytest.mark.parametrize("target", ["sim", "loihi-sim", "loihi2"])
def test_snntorch_default_reset_runs_where_the_target_file_allows_it(target):
    from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare

    for timing in ResetTiming:
        net = random_net(
            np.random.default_rng(0),
            reset=ResetMode.SUBTRACT,
            timing=timing,
            compare=ThresholdCompare.GE,
        )
        check_design_rules(net, load_target(target))


def test_the_fpga_backend_refuses_a_late_reset_itself():
    """``fpga.lower`` checks the board rules, which include the target file's timings: the
    RTL is never emitted with a reset it does not implement."""
    from snn_deploy.ir.types import ResetMode, ResetTiming

    net = random_net(np.random.default_rng(0), reset=ResetMode.SUBTRACT, timing=ResetTiming.LATE)
    with pytest.raises(DesignRuleError, match=r"\[reset-timing\] p1"):
        fpga.lower(net, load_target("fpga-artix7-35t"))


def two_current_net(readout: bool = False):
    """``random_net`` with a second current in ``p1`` (or ``p2``, the read-out), fed by a copy
    of its input projection."""
    net = random_net(np.random.default_rng(0))
    name = "p2" if readout else "p1"
    pop = net.populations[name]
    assert pop.fixed is not None
    fixed = dataclasses.replace(pop.fixed, du2=pop.fixed.du)
    pops = {**net.populations, name: dataclasses.replace(pop, alpha2=0.5, fixed=fixed)}
    extra = dataclasses.replace(net.incoming(name)[0], name="into-u2", synapse=1)
    return net.replace(populations=pops, projections=[*net.projections, extra])


ONE_CURRENT_TARGETS = [
    "fpga-artix7-35t", "fpga-ice40up5k", "loihi-sim", "loihi1", "loihi2", "loihi2-netx"
]  # fmt: skip


@pytest.mark.parametrize("target", ONE_CURRENT_TARGETS)
def test_targets_of_one_current_refuse_a_second_by_population(target):
    net = two_current_net()
    check_design_rules(random_net(np.random.default_rng(0)), load_target(target))
    found = synaptic_currents_supported(net, load_target(target))
    assert [str(v) for v in found] == [
        "[synaptic-currents] p1: synaptic currents per neuron is 2, limit 1; fix: feed it "
        "through one current, or use a target with two (sim, xylo-audio2)"
    ]
    with pytest.raises(DesignRuleError, match=r"\[synaptic-currents\] p1"):
        check_design_rules(net, load_target(target))


def test_xylo_takes_two_currents_in_hidden_neurons_and_one_in_read_outs():
    xylo = load_target("xylo-audio2")
    assert synaptic_currents_supported(two_current_net(), xylo) == []
    assert synaptic_currents_supported(two_current_net(), load_target("sim")) == []
    assert [str(v) for v in synaptic_currents_supported(two_current_net(True), xylo)] == [
        "[synaptic-currents] p2: synaptic currents per read-out neuron is 2, limit 1; fix: "
        "feed the read-out through one current"
    ]
