"""Analytic goldens for the integer and float neuron kernels (docs/SEMANTICS.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from snn_deploy.backends.sim.kernels import (
    decay,
    fixed_step,
    float_step,
    overflow,
    shift,
    spike_count,
)
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Net, NeuronFixed, Population, Projection, SynapseFixed
from snn_deploy.ir.types import ResetMode
from snn_deploy.target.load import load_target

SPEC = load_target("sim").numeric


def step(u, v, a, *, du=4095, dv=0, bias=0, vth=100, subtract=False):
    arr = lambda x: np.asarray([x], dtype=np.int64)  # noqa: E731
    return fixed_step(
        arr(u),
        arr(v),
        arr(a),
        du=arr(du),
        dv=arr(dv),
        bias=arr(bias),
        vth=None if vth is None else arr(vth),
        subtract=subtract,
        spec=SPEC,
    )


def test_plain_lif_current_is_input_times_64():
    # du = 4095: the current forgets everything, u = a << 6.
    u, v, _ = step(u=1000, v=0, a=3, vth=None)
    assert (u[0], v[0]) == (192, 192)


def test_current_decays_even_with_du_zero():
    # current_decay_offset = 1: du = 0 still keeps only 4095/4096 of u.
    u, _, _ = step(u=4096, v=0, a=0, du=0, vth=None)
    assert u[0] == 4095


def test_voltage_decay_rounds_toward_zero_for_negative_values():
    # -100 * (4096 - 2048) / 4096 = -50 exactly; -101 -> -50.5 -> -50 (toward zero, not -51).
    assert_array_equal(decay(np.array([-100, -101, 101]), np.array(2048), 12), [-50, -50, 50])


def test_lif_impulse_response_matches_closed_form():
    # One input of 10 at step 0 into du=4095, dv=164 (tau = 25 steps): v = 640 then decays by
    # floor-toward-zero of v*(4096-164)/4096 each step, as Lava does (and the Loihi 2 trace).
    u = v = np.zeros(1, np.int64)
    trace = []
    for a in [10, 0, 0, 0]:
        u, v, _ = fixed_step(
            u,
            v,
            np.array([a]),
            du=np.array([4095]),
            dv=np.array([164]),
            bias=np.array([0]),
            vth=None,
            subtract=False,
            spec=SPEC,
        )
        trace.append(int(v[0]))
    assert trace == [640, 614, 589, 565]


def test_threshold_equality_does_not_spike():
    # vth << 6 = 6400: v == 6400 stays (strict >), 6401 spikes and resets to 0.
    _, v, s = step(u=0, v=0, a=100, vth=100)
    assert (v[0], s[0]) == (6400, 0)
    _, v, s = step(u=0, v=1, a=100, vth=100)
    assert (v[0], s[0]) == (0, 1)


def test_subtract_reset_keeps_the_excess():
    _, v, s = step(u=0, v=10, a=100, vth=100, subtract=True)
    assert (v[0], s[0]) == (10, 1)


def test_current_wraps_once_like_lava():
    # 2**23 itself survives; 2**23 + 64 wraps to 64 - 2**23; -2**23 wraps to +2**23.
    assert step(u=0, v=0, a=2**17, vth=None)[0][0] == 2**23
    assert step(u=0, v=0, a=2**17 + 1, vth=None)[0][0] == 64 - 2**23
    assert step(u=0, v=0, a=-(2**17), vth=None)[0][0] == 2**23


def test_voltage_saturates_symmetrically():
    _, v, _ = step(u=0, v=2**23 - 10, a=1, dv=0, vth=None)
    assert v[0] == 2**23 - 1
    _, v, _ = step(u=0, v=-(2**23) + 10, a=-1, dv=0, vth=None)
    assert v[0] == -(2**23) + 1


def test_bias_enters_voltage_unscaled():
    _, v, _ = step(u=0, v=0, a=0, bias=5, vth=None)
    assert v[0] == 5


@pytest.mark.parametrize(("x", "e", "want"), [(5, -1, 2), (-5, -1, -3), (-1, -3, -1), (3, 2, 12)])
def test_shift_is_floor_on_right_shifts(x, e, want):
    assert shift(np.array([x]), e)[0] == want


def test_overflow_saturate_uses_register_range():
    assert_array_equal(
        overflow(np.array([2**23, -(2**23)]), SPEC.voltage), [2**23 - 1, -(2**23) + 1]
    )


def test_float_step_lif_decay_and_reset():
    u, v, s = float_step(
        np.zeros(1),
        np.array([0.5]),
        np.array([0.2]),
        alpha=np.ones(1),
        beta=np.array([0.5]),
        bias=np.zeros(1),
        threshold=np.array([0.4]),
        subtract=False,
    )
    # v = 0.5*0.5 + 0.2 = 0.45 > 0.4 -> spike, reset to 0.
    assert (u[0], v[0], s[0]) == (0.2, 0.0, 1.0)


# Multi-level spikes (docs/SEMANTICS.md §1.1): s = #{k in 1..D : v > k * vth_eff}, vth_eff = 6400.
LEVEL_V = [-500, 0, 6400, 6401, 12800, 12801, 19200, 19201, 30000]
LEVEL_S = [0, 0, 0, 1, 1, 2, 2, 3, 3]  # v exactly at k * vth_eff crosses only k - 1 levels


def _level_step(subtract: bool) -> tuple[np.ndarray, np.ndarray]:
    size = len(LEVEL_V)
    full = lambda x: np.full(size, x, dtype=np.int64)  # noqa: E731
    # u = 0 and no input, no leak, no bias: v keeps its value, then the spike rule applies
    _, v, s = fixed_step(
        full(0),
        np.array(LEVEL_V, dtype=np.int64),
        full(0),
        du=full(4095),
        dv=full(0),
        bias=full(0),
        vth=full(100),
        subtract=subtract,
        spec=SPEC,
        levels=3,
    )
    return v, s


def test_three_levels_zero_reset():
    v, s = _level_step(subtract=False)
    assert_array_equal(s, LEVEL_S)
    assert_array_equal(v, [-500, 0, 6400, 0, 0, 0, 0, 0, 0])


def test_three_levels_subtract_reset_removes_one_threshold_per_level():
    v, s = _level_step(subtract=True)
    assert_array_equal(s, LEVEL_S)
    # v - s * 6400: 6401 -> 1, 12800 -> 6400, 12801 -> 1, 19200 -> 6400, 19201 -> 1, 30000 -> 10800
    assert_array_equal(v, [-500, 0, 6400, 1, 6400, 1, 6400, 1, 10800])


def test_zero_threshold_crosses_every_level_of_a_positive_voltage():
    assert_array_equal(spike_count(np.array([-1, 0, 1, 9]), np.array(0), 4), [0, 0, 4, 4])


@pytest.mark.parametrize("subtract", [False, True])
def test_one_level_is_the_binary_spike(subtract):
    rng = np.random.default_rng(0)
    v = rng.integers(-(2**23), 2**23, 2000)
    vth = rng.integers(0, 2**17, 2000)
    # the general count with D = 1 is exactly today's strict comparison
    assert_array_equal(spike_count(v, vth << 6, 1), (v > vth << 6).astype(np.int64))
    args = dict(du=np.full(2000, 4095), dv=np.zeros(2000, np.int64), bias=np.zeros(2000, np.int64))
    zeros = np.zeros(2000, np.int64)
    one = fixed_step(zeros, v, zeros, vth=vth, subtract=subtract, spec=SPEC, levels=1, **args)
    default = fixed_step(zeros, v, zeros, vth=vth, subtract=subtract, spec=SPEC, **args)
    for got, want in zip(one, default, strict=True):
        assert_array_equal(got, want)
    assert set(np.unique(one[2])) == {0, 1}


@pytest.mark.parametrize("subtract", [False, True])
def test_float_levels_compare_against_each_float_multiple(subtract):
    # 3 * 0.1 == 0.30000000000000004 in floats: v equal to it crosses 2 levels, not 3
    v0 = np.array([-1.0, 0.1, 0.10000000000000002, 0.2, 0.25, 0.30000000000000004, 0.31, 5.0])
    size = v0.size
    _, v, s = float_step(
        np.zeros(size),
        v0,
        np.zeros(size),
        alpha=np.ones(size),
        beta=np.zeros(size),
        bias=np.zeros(size),
        threshold=np.full(size, 0.1),
        subtract=subtract,
        levels=3,
    )
    assert_array_equal(s, [0, 0, 1, 1, 2, 2, 3, 3])
    want = np.where(s > 0, v0 - s * 0.1, v0) if subtract else np.where(s > 0, 0.0, v0)
    assert_array_equal(v, want)


def second_current_net() -> Net:
    """x -> p (non-spiking, no leak, no synaptic memory in u) twice: weight 1 into u, weight 2
    into u2 (alpha2 = 1/4); quantized for the sim target with u2's decay code 1024 (1/4)."""
    pop = Population(
        name="p",
        node_type="CubaLI",
        shape=(1,),
        alpha=1.0,
        beta=0.0,
        bias=0.0,
        threshold=None,
        reset=ResetMode.ZERO,
        alpha2=0.25,
        fixed=NeuronFixed(
            scale=1.0, du=[4095], dv=[0], vth=None, bias_mant=[0], bias_exp=[0], du2=[1024]
        ),
    )
    projections = [
        Projection(
            name=f"x->p.{syn}",
            src="x",
            dst="p",
            weight=sp.csr_matrix([[w]]),
            synapse=syn,
            fixed=SynapseFixed(codes=sp.csr_matrix([[w]]), exp=0),
        )
        for syn, w in ((0, 1.0), (1, 2.0))
    ]
    return Net(
        dt=1e-3,
        inputs={"x": (1,)},
        populations={"p": pop},
        projections=projections,
        outputs={"v": "p"},
        numeric=SPEC,
    )


def test_second_current_impulse_response_matches_closed_form():
    """An input event at step 0 reaches both currents at step 1 (Lava's latency): ``u`` holds
    it for one step (α = 1), ``u2[t] = 2·(3/4)**(t-1)``, and ``v`` (no leak) sums both:
    ``v[t] = 1 + 2·Σ_{k<t} (3/4)**k`` in float; in integers (×64) ``u2`` keeps
    ``u2·(4096 - 1024 - 1) >> 12`` each step (Lava's current decay offset of 1, rounded toward
    zero): ``128, 95, 71, 53, 39``, and ``v`` adds ``u + u2`` each step."""
    net = second_current_net()
    x = np.zeros((1, 6, 1))
    x[0, 0, 0] = 1
    t = np.arange(1, 6)
    floats = simulate(net, {"x": x}, fixed=False, record_state=True)
    assert_array_equal(floats.u2["p"][0, 1:, 0], 2 * 0.75 ** (t - 1))
    assert np.allclose(floats.v["p"][0, 1:, 0], 1 + 2 * (1 - 0.75**t) / 0.25, rtol=1e-14)
    for kernel in ("numpy", "numba"):
        ints = simulate(net, {"x": x}, kernel=kernel, record_state=True)
        assert ints.u2["p"][0, :, 0].tolist() == [0, 128, 95, 71, 53, 39]
        assert ints.u["p"][0, :, 0].tolist() == [0, 64, 0, 0, 0, 0]
        assert ints.v["p"][0, :, 0].tolist() == [0, 192, 287, 358, 411, 450]
