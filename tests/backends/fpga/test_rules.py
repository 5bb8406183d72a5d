"""Board design rules: every violation at once, in the format of target.rules."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from snn_deploy.backends import fpga
from snn_deploy.backends.fpga.rules import FPGA_RULES, check_board, current_bounded
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import SynapseFixed
from snn_deploy.ir.types import FixedPoint, Overflow
from snn_deploy.target.load import load_target
from tests.backends.sim.test_against_reference import random_net

ICE40 = load_target("fpga-ice40up5k")


def with_bad_code(net, spec=None):
    """``net`` with one weight code just outside the weight register (and ``spec``)."""
    bad = net.projections[0]
    codes = bad.fixed.codes.copy()
    codes.data[0] = net.numeric.weight.max + 1
    return net.replace(
        numeric=spec or net.numeric,
        projections=(
            dataclasses.replace(bad, fixed=SynapseFixed(codes=codes, exp=0)),
            *net.projections[1:],
        ),
    )


def test_network_too_big_for_the_board_lists_every_violation():
    net = with_bad_code(random_net(np.random.default_rng(0), sizes=(128, 256, 64)))
    with pytest.raises(DesignRuleError) as err:
        fpga.lower(net, ICE40)
    message = str(err.value)
    lines = message.splitlines()
    assert lines[0] == "2 design-rule violation(s) for target 'fpga-ice40up5k':"
    assert lines[1].startswith("  [fpga-parameter-range] w1: weight codes is [")
    assert re.fullmatch(
        r"  \[fpga-bram-blocks\] \(network\): bram_blocks \(estimate\) is \d+, limit 30; "
        r"fix: use a larger board, fewer neurons or synapses, or prune the network",
        lines[2],
    )


def test_the_same_network_fits_the_larger_board():
    net = random_net(np.random.default_rng(0), sizes=(128, 256, 64))
    program = fpga.lower(net, load_target("fpga-artix7-35t"))
    lanes = program.cores[0].lanes
    assert lanes >= 1
    assert program.cycles_per_step == -(-256 // lanes) * (128 + 256 + 3) + 1 + 3


def test_foreign_arithmetic_is_rejected():
    net = random_net(np.random.default_rng(0))
    spec = dataclasses.replace(
        net.numeric, current=FixedPoint(width=24, signed=True, overflow=Overflow.SATURATE)
    )
    with pytest.raises(DesignRuleError) as err:
        check_board(with_bad_code(net, spec), ICE40)
    assert str(err.value).startswith("2 design-rule violation(s)")
    assert "[fpga-numeric-format] (network): state overflow rules is u saturate" in str(err.value)


def test_every_rule_is_a_named_function_with_a_docstring():
    for rule in FPGA_RULES:
        assert rule.__doc__ and rule.__name__.islower()


def test_board_resources_have_sources():
    for name in ("fpga-artix7-35t", "fpga-ice40up5k"):
        target = load_target(name)
        assert target.backend == "fpga" and target.fpga is not None
        for field in dataclasses.fields(target.fpga):
            assert target.sources[f"fpga.{field.name}"]


def test_current_without_decay_that_can_wrap_is_rejected():
    net = random_net(np.random.default_rng(0), big=True)
    spec = dataclasses.replace(net.numeric, current_decay_offset=0)
    pop = net.populations["p1"]
    no_decay = dataclasses.replace(pop.fixed, du=0 * pop.fixed.du)
    pops = {**net.populations, "p1": dataclasses.replace(pop, fixed=no_decay)}
    violations = current_bounded(net.replace(numeric=spec, populations=pops), ICE40)
    assert [(v.rule, v.node) for v in violations] == [("fpga-current-range", "p1")]
