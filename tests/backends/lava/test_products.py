"""Product units in Lava (``backends/lava/products.py``) equal the simulator bit for bit: outputs,
``u`` and ``v`` of every population and every unit's output, on random product graphs with
multi-level spikes, decays, whole-clip attention, saturation and a gate on a voltage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy import api
from snn_deploy.backends import lava
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import quantize
from tests.backends.sim.test_products import SPEC, cases, narrowed, product_graph

pytestmark = pytest.mark.toolchain("lava")
TARGET = api.load_target("loihi-sim")


def assert_lava_equals_sim(net: Net, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run one Lava sample; returns the simulator's unit outputs (for the callers' checks)."""
    got = lava.run(lava.lower(net, TARGET), {"x": x}, record_state=True)
    want = simulate(net, {"x": x}, record_state=True)
    for name in net.products:
        assert_array_equal(got.products[name], want.products[name], err_msg=f"{name} output")
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name], err_msg=f"{name} output")
        assert_array_equal(got.u[name], want.u[name], err_msg=f"{name} u")
        assert_array_equal(got.v[name], want.v[name], err_msg=f"{name} v")
    return {k: v[0] for k, v in want.products.items()}


@settings(max_examples=8, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16), narrow=st.sampled_from([0, 3]))
def test_lava_equals_sim_on_random_product_graphs(case, seed, narrow):
    rng = np.random.default_rng(seed)
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    if narrow:
        net = narrowed(net, narrow)
    x = (rng.random((1, 2 * case["steps"] + 3, 5)) < 0.6).astype(np.int64)
    assert_lava_equals_sim(net, x)


CASES = {  # name -> (seed, case, register bits removed); each checked to exercise its feature
    "decayed-multi-level-saturating": (
        3,
        {"dim": 4, "heads": 2, "levels": 3, "decay": (0, 1), "causal": True, "steps": 6},
        4,
    ),
    "whole-clip": (
        3,
        {"dim": 4, "heads": 2, "levels": 1, "decay": (0, 0), "causal": False, "steps": 4},
        0,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_features_really_occur_and_match(name):
    """The cases are meaningful: levels reach 3, registers clip, whole-clip attention answers
    after the clip, and the gate multiplies a voltage (a ``VoltageLIF``), negative included."""
    seed, case, narrow = CASES[name]
    rng = np.random.default_rng(seed)
    full = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    x = (rng.random((1, 2 * case["steps"] + 3, 5)) < 0.6).astype(np.int64)
    net = narrowed(full, narrow) if narrow else full
    program = lava.lower(net, TARGET)
    assert [b.population for b in program.blocks if not b.spiking] == ["val"]
    out = assert_lava_equals_sim(net, x)
    assert out["gate"].min() < 0 < out["gate"].max()
    if narrow:
        assert simulate(full, {"x": x}).products["att"].max() > out["att"].max() > 0
        assert simulate(full, {"x": x}).populations["qkv"].max() == 3
    if not case["causal"]:
        steps = case["steps"]
        assert not out["att"][: steps + 1].any() and out["att"][steps + 1 :].any()


def test_an_output_wider_than_the_lava_payload_is_refused_by_name():
    rng = np.random.default_rng(0)
    case = {"dim": 2, "heads": 1, "levels": 1, "decay": (0,), "causal": True, "steps": 3}
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    with pytest.raises(DesignRuleError, match=r"\[product-payload\] Gate gate: output register"):
        lava.lower(narrowed(net, -12), TARGET)  # 12 bits wider
