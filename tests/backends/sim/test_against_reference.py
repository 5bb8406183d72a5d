"""Equivalence: the vectorised simulator == the loop-based reference, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Net, NeuronFixed, Population, Projection, SynapseFixed
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare
from snn_deploy.target.load import load_target
from tests.backends.sim.reference import run_reference

SPEC = load_target("sim").numeric


def random_net(
    rng: np.random.Generator,
    *,
    sizes=(6, 5, 4),
    recurrent=True,
    delay=0,
    big=False,
    reset=ResetMode.ZERO,
    non_spiking_last=False,
    levels=1,
    density=0.7,
    timing=ResetTiming.IMMEDIATE,
    compare=ThresholdCompare.GT,
) -> Net:
    """A random quantized chain input -> pop1 -> pop2 (+ recurrence on pop1, + a skip);
    ``levels``, ``timing``, ``compare``: the spike levels, reset timing and threshold compare
    of the spiking populations."""
    n_in, n1, n2 = sizes
    pops = {}
    for name, n, spiking in (("p1", n1, True), ("p2", n2, not non_spiking_last)):
        fixed = NeuronFixed(
            scale=1.0,
            du=rng.integers(0, 50 if big else 4096, n),
            dv=rng.integers(0, 4096, n),
            vth=rng.integers(1, 2**17, n)
            if spiking and big
            else rng.integers(1, 300, n)
            if spiking
            else None,
            bias_mant=rng.integers(-50, 50, n),
            bias_exp=rng.integers(0, 3, n),
        )
        pops[name] = Population(
            name=name,
            node_type="CubaLIF" if spiking else "CubaLI",
            shape=(n,),
            alpha=0.5,
            beta=0.5,
            bias=0.0,
            threshold=1.0 if spiking else None,
            reset=reset,
            levels=levels if spiking else 1,
            reset_timing=timing if spiking else ResetTiming.IMMEDIATE,
            threshold_compare=compare,
            fixed=fixed,
        )

    def proj(name, src, dst, shape, d=0):
        codes = sp.random(
            *shape, density=density, random_state=rng, data_rvs=lambda k: rng.integers(-128, 128, k)
        )
        exp = int(rng.integers(5, 8)) if big else int(rng.integers(-3, 4))
        return Projection(
            name=name,
            src=src,
            dst=dst,
            weight=sp.csr_matrix(codes, dtype=float),
            delay=d,
            fixed=SynapseFixed(codes=codes, exp=exp),
        )

    projs = [
        proj("w1", "x", "p1", (n1, n_in)),
        proj("w2", "p1", "p2", (n2, n1), d=delay),
        proj("skip", "x", "p2", (n2, n_in), d=delay),
    ]
    if recurrent:
        projs.append(proj("rec", "p1", "p1", (n1, n1)))
    net = Net(
        dt=1e-3,
        inputs={"x": (n_in,)},
        populations=pops,
        projections=projs,
        outputs={"y": "p2"},
        numeric=SPEC,
    )
    net.verify()
    return net


CASES = {
    "feed-forward": {"recurrent": False},
    "recurrent": {},
    "delays": {"delay": 3},
    "subtract-reset": {"reset": ResetMode.SUBTRACT},
    "non-spiking-readout": {"non_spiking_last": True},
    "wrap-and-saturate": {"big": True},
}
MULTI_LEVEL_CASES = {  # not in CASES, which the binary-only FPGA tests reuse
    "multi-level": {"levels": 3},
    "multi-level-subtract": {"levels": 3, "reset": ResetMode.SUBTRACT},
}
TIMING_CASES = {  # reset timings and threshold compares (docs/SEMANTICS.md §1.2)
    "late-subtract": {"reset": ResetMode.SUBTRACT, "timing": ResetTiming.LATE},
    "late-zero": {"timing": ResetTiming.LATE},
    "carry-subtract": {"reset": ResetMode.SUBTRACT, "timing": ResetTiming.CARRY},
    "ge-threshold": {"compare": ThresholdCompare.GE},
    "ge-late-subtract": {
        "reset": ResetMode.SUBTRACT,
        "timing": ResetTiming.LATE,
        "compare": ThresholdCompare.GE,
    },
    "ge-multi-level-subtract": {
        "levels": 3,
        "reset": ResetMode.SUBTRACT,
        "compare": ThresholdCompare.GE,
    },
}
ALL_CASES = {**CASES, **MULTI_LEVEL_CASES, **TIMING_CASES}


@pytest.mark.parametrize("kernel", ["numba", "numpy"])
@pytest.mark.parametrize("case", sorted(ALL_CASES))
@pytest.mark.parametrize("seed", range(3))
def test_simulator_equals_reference(case, seed, kernel):
    rng = np.random.default_rng(seed)
    net = random_net(rng, **ALL_CASES[case])
    x = (rng.random((3, 40, 6)) < 0.4).astype(np.int64)
    trace = simulate(net, {"x": x}, kernel=kernel)
    for b in range(x.shape[0]):
        want = run_reference(net, x[b])
        for name in net.populations:
            assert_array_equal(trace.populations[name][b], want[name], err_msg=f"{name} sample {b}")
    if "multi-level" in case:  # graded spikes must really occur, up to the top level
        assert max(int(trace.populations[k].max()) for k in net.populations) == 3
    if case == "wrap-and-saturate":  # the case must really reach the registers' limits
        state = simulate(net, {"x": x}, record_state=True, kernel=kernel)
        assert max(np.abs(u).max() for u in state.u.values()) > 2**23 - 2**20
        assert max(np.abs(v).max() for v in state.v.values()) == 2**23 - 1


def test_graded_inputs_multiply_weights():
    rng = np.random.default_rng(7)
    net = random_net(rng)
    x = rng.integers(-7, 8, (2, 30, 6))
    trace = simulate(net, {"x": x})
    for b in range(2):
        assert_array_equal(trace.populations["p2"][b], run_reference(net, x[b])["p2"])


def test_batched_run_equals_single_sample_runs():
    rng = np.random.default_rng(3)
    net = random_net(rng)
    x = (rng.random((5, 25, 6)) < 0.3).astype(np.int64)
    whole = simulate(net, {"x": x}).populations["p2"]
    for b in range(5):
        assert_array_equal(simulate(net, {"x": x[b]}).populations["p2"][0], whole[b])


def test_int64_path_used_when_sums_could_exceed_float64():
    # Graded inputs of 2**50 make float64 products inexact; the int64 path must be exact.
    rng = np.random.default_rng(1)
    net = random_net(rng)
    net = net.replace(
        projections=tuple(
            dataclasses.replace(p, fixed=dataclasses.replace(p.fixed, exp=-20))
            for p in net.projections
        )
    )
    x = rng.integers(0, 2, (1, 10, 6)) * (2**50 + 1)
    trace = simulate(net, {"x": x})
    assert_array_equal(trace.populations["p1"][0], run_reference(net, x[0])["p1"])


def test_exact_matrix_products_allow_for_the_largest_spike_level():
    """A spike of 100097 levels over a weight of 255 sums to 25524735, which float32 rounds to
    25524736: the simulator must choose its exact dtype by the levels, not by 1."""

    def pop(name, levels, vth):
        fixed = NeuronFixed(scale=1.0, du=[4095], dv=[0], vth=vth, bias_mant=[0], bias_exp=[0])
        threshold = None if vth is None else 1.0
        return Population(
            name=name,
            node_type="IF",
            shape=(1,),
            alpha=1.0,
            beta=0.0,
            bias=0.0,
            threshold=threshold,
            reset=ResetMode.ZERO,
            levels=levels,
            fixed=fixed,
        )

    def proj(src, dst, exp):
        codes = sp.csr_matrix([[255]])
        return Projection(
            name=f"{src}->{dst}",
            src=src,
            dst=dst,
            weight=codes,
            fixed=SynapseFixed(codes=codes, exp=exp),
        )

    net = Net(
        dt=1e-3,
        inputs={"x": (1,)},
        populations={"p1": pop("p1", 100097, [1]), "p2": pop("p2", 1, None)},
        projections=(proj("x", "p1", 7), proj("p1", "p2", -8)),
        outputs={"y": "p2"},
        numeric=SPEC,
    )
    trace = simulate(net, {"x": [[4], [0], [0], [0]]})
    # step 1: u = v = (4 * 255 << 7) << 6 = 8355840, so s = min((v - 1) // 64, D) = D = 100097
    assert_array_equal(trace.populations["p1"][0, :, 0], [0, 100097, 0, 0])
    # step 2: a = (255 * 100097) >> 8 = 25524735 >> 8 = 99705, v = 99705 << 6 = 6381120
    assert_array_equal(trace.populations["p2"][0, :, 0], [0, 0, 6381120, 6381120])
