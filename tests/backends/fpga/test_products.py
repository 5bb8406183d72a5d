"""Product units in the RTL (``attention.v``, ``gate.v``; docs/FPGA.md §11): Icarus equals the
simulator bit for bit on random product graphs (multi-level spikes, decay, whole clip,
saturation, a gate on a voltage, signed input operands), every population's outputs, u and v
and every unit's outputs at every step; the measured cycles equal the program's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from snn_deploy.backends import fpga
from snn_deploy.backends.fpga.lower import build_cores, build_units
from snn_deploy.backends.fpga.run import simulate_rtl
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import DesignRuleError
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import quantize
from snn_deploy.target.load import load_target
from tests.backends.fpga.nets import product_net
from tests.backends.sim.test_products import SPEC, narrowed, product_graph

TARGET = load_target("fpga-artix7-35t")
ICE40 = load_target("fpga-ice40up5k")

CASES = {
    "causal-levels-decay": {"dim": 4, "heads": 2, "levels": 3, "decay": (0, 1), "causal": True},
    "causal-binary-decay": {"dim": 6, "heads": 2, "levels": 1, "decay": (2, 3), "causal": True},
    "whole-clip-binary": {"dim": 3, "heads": 1, "levels": 1, "decay": (0,), "causal": False},
    "whole-clip-levels": {"dim": 4, "heads": 2, "levels": 3, "decay": (0, 0), "causal": False},
}


def assert_rtl_equals_sim(net, inputs, *, one_lane=False):
    """RTL == simulator: populations (outputs, u, v) and product units at every step."""
    program = fpga.lower(net, TARGET)
    if one_lane:
        cores = build_cores(net)
        program = dataclasses.replace(program, cores=cores, units=build_units(net, cores))
    want = simulate(net, inputs, record_state=True)
    expected = {**want.populations, **want.products}
    got, cycles = simulate_rtl(program, inputs, expected=expected, record_state=True)
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name], err_msg=name)
        assert_array_equal(got.u[name], want.u[name], err_msg=f"u of {name}")
        assert_array_equal(got.v[name], want.v[name], err_msg=f"v of {name}")
    for name in net.products:
        assert_array_equal(got.products[name], want.products[name], err_msg=name)
    assert cycles == program.cycles_per_step
    return want, program


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("narrow", [0, 3], ids=["sized", "saturating"])
def test_random_product_graphs(case, narrow):
    """x -> qkv (LIF) -> Attention -> out, x -> LI voltage ⊙ spikes (Gate, shifted) -> out."""
    steps = 5
    rng = np.random.default_rng(0)  # a seed where every case's q, k, v reach their top level
    net = quantize(lower(product_graph(rng, **CASES[case], steps=steps), 1e-4), SPEC)
    sized = net
    if narrow:
        net = narrowed(net, narrow)
    x = (rng.random((2, 2 * steps + 3, 5)) < 0.6).astype(np.int64)
    want, _ = assert_rtl_equals_sim(net, {"x": x}, one_lane=case.startswith("whole"))
    att, gate = want.products["att"], want.products["gate"]
    assert np.abs(att).sum() > 0 and np.abs(gate).sum() > 0
    assert want.populations["qkv"].max() == CASES[case]["levels"]
    assert net.products["gate"].fixed.shift > 0  # the gate multiplies a voltage
    if narrow:  # the narrowed registers clip: both units' outputs differ from the sized run's
        full = simulate(sized, {"x": x}).products
        assert not np.array_equal(full["att"], att) and not np.array_equal(full["gate"], gate)


@pytest.mark.toolchain("iverilog")
@pytest.mark.parametrize("seed", range(2))
def test_signed_operands_saturate_both_ways(seed):
    """Graded inputs in [-128, 127] as q, k, v, a and g (integer products of signed values,
    arbitrary indices); the state and both outputs reach both ends of their registers; the
    attention is the longest unit, so it sets the cycles per step."""
    rng = np.random.default_rng(seed)
    net = product_net(rng)
    x = rng.integers(-128, 128, (2, 16, 6))
    want, program = assert_rtl_equals_sim(net, {"x": x})
    for name in ("att", "gate"):
        reg = net.products[name].fixed.output
        assert want.products[name].max() == reg.max and want.products[name].min() == reg.min
    att = program.units[0]
    assert att.cycles_per_step == 8 * 4 + 4
    assert program.cycles_per_step == att.cycles_per_step + 3


def test_a_unit_too_large_for_the_board_is_named():
    """A 256-element single-head attention keeps 65,536 state entries: more block RAM than the
    iCE40 has, reported for the unit by name."""
    net = product_net(np.random.default_rng(0), dim=256, heads=1, state_bits=12)
    with pytest.raises(DesignRuleError) as err:
        fpga.lower(net, ICE40)
    lines = str(err.value).splitlines()
    hit = [line for line in lines if line.startswith("  [fpga-attention] att: bram_blocks")]
    assert hit and hit[0].endswith(
        "limit 30; fix: fewer elements (dim) or more heads (the state is dim * dim / heads "
        "entries), or a larger board"
    )
