"""Equivalence with the vendor's oracle: our simulator == SynSense's xylosim, bit for bit.

Random Xylo Audio 2 nets (Hypothesis) with every feature the chip has: saturation of the
current and the voltage, multi-spike hidden neurons (up to 31 per step), alias neurons (a
target with a small fan-out makes them on small nets), biases, every dash value 0..15, input
events above the chip's cap of 15, one to two hidden populations with recurrence and skips,
and second synaptic currents (input and recurrent projections into them, their own dashes).
Both simulator kernels must equal xylosim (``xylosim.v2.XyloLayer``, driven by
``backends.xylo``) in spikes, ``u`` (``i_syn``), ``u2`` (``i_syn2``) and ``v`` (``v_mem``) at
every step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy.backends import xylo
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Net, NeuronFixed, Population, Projection, SynapseFixed
from snn_deploy.ir.types import ResetMode, ThresholdCompare
from snn_deploy.target.load import load_target
from snn_deploy.target.schema import Target

pytestmark = pytest.mark.toolchain("xylosim")

TARGET = load_target("xylo-audio2")
SPEC = TARGET.numeric


def small_fan_out(limit: int) -> Target:
    """The Xylo target with a fan-out of ``limit``: small nets then need alias neurons."""
    return dataclasses.replace(
        TARGET, limits=dataclasses.replace(TARGET.limits, hidden_fan_out=limit)
    )


def xylo_net(
    rng: np.random.Generator,
    *,
    n_in: int = 5,
    hidden: tuple[int, ...] = (6, 4),
    n_out: int = 3,
    big: bool = False,
    density: float = 0.6,
    second: bool = False,
) -> Net:
    """A random quantized Xylo net: input -> h1 (-> h2), recurrence on h1, h2 -> h1, a skip
    input -> h2, read-out from every hidden population; shared shifts per matrix. ``big``:
    weights, shifts and inputs that saturate ``u`` and ``v``, and small thresholds (many
    spikes per step). ``second``: every hidden population has a second current with its own
    dashes, fed by the input and by the recurrent projections h1 -> h1 and h2 -> h1."""
    pops = {}
    names = [f"h{i + 1}" for i in range(len(hidden))]
    layers = [*zip(names, hidden, [31] * len(hidden), strict=True), ("o", n_out, 1)]
    for name, n, levels in layers:
        fixed = NeuronFixed(
            scale=1.0,
            du=rng.integers(0, 16, n),
            dv=rng.integers(0, 16, n),
            vth=rng.integers(1, 60, n) if big else rng.integers(1, 2**15, n),
            bias_mant=rng.integers(-(2**15), 2**15, n) if big else rng.integers(-40, 40, n),
            bias_exp=np.zeros(n, np.int64),
            du2=rng.integers(0, 16, n) if second and name != "o" else None,
        )
        pops[name] = Population(
            name=name,
            node_type="CubaLIF",
            shape=(n,),
            alpha=0.5,
            beta=0.5,
            bias=0.0,
            threshold=1.0,
            reset=ResetMode.SUBTRACT,
            levels=levels,
            threshold_compare=ThresholdCompare.GE,
            alpha2=None if fixed.du2 is None else 0.25,
            fixed=fixed,
        )
    shifts = {m: int(rng.integers(4 if big else 0, 8)) for m in ("input", "recurrent", "output")}

    def proj(
        src: str, dst: str, n_src: int, n_dst: int, matrix: str, synapse: int = 0
    ) -> Projection:
        codes = sp.random(
            n_dst,
            n_src,
            density=density,
            random_state=rng,
            data_rvs=lambda k: rng.integers(-128, 128, k),
        )
        return Projection(
            name=f"{src}->{dst}" + (".2" if synapse else ""),
            src=src,
            dst=dst,
            weight=sp.csr_matrix(codes, dtype=float),
            synapse=synapse,
            fixed=SynapseFixed(codes=codes, exp=shifts[matrix]),
        )

    projs = [
        proj("x", "h1", n_in, hidden[0], "input"),
        proj("h1", "h1", *hidden[:1] * 2, "recurrent"),
    ]
    if len(hidden) > 1:
        projs += [
            proj("h1", "h2", hidden[0], hidden[1], "recurrent"),
            proj("h2", "h1", hidden[1], hidden[0], "recurrent"),
            proj("x", "h2", n_in, hidden[1], "input"),
        ]
    if second:
        projs += [
            proj("h1", "h1", *hidden[:1] * 2, "recurrent", synapse=1),
            proj("x", "h1", n_in, hidden[0], "input", synapse=1),
        ]
        if len(hidden) > 1:
            projs += [
                proj("x", "h2", n_in, hidden[1], "input", synapse=1),
                proj("h2", "h1", hidden[1], hidden[0], "recurrent", synapse=1),
            ]
    projs += [proj(h, "o", n, n_out, "output") for h, n in zip(names, hidden, strict=True)]
    net = Net(
        dt=1e-3,
        inputs={"x": (n_in,)},
        populations=pops,
        projections=projs,
        outputs={"y": "o", "hidden": "h1"},
        numeric=SPEC,
        input_latency=SPEC.input_latency,
    )
    net.verify()
    return net


def events(rng: np.random.Generator, shape: tuple[int, ...], big: bool) -> np.ndarray:
    """Input event counts, sparse, up to 20 per channel and step (the chip keeps 15)."""
    x = rng.integers(0, 21 if big else 4, shape)
    return np.where(rng.random(shape) < 0.4, x, 0)


def assert_equal_to_xylosim(net: Net, x: np.ndarray, target: Target = TARGET) -> None:
    program = xylo.lower(net, target)
    want = xylo.run(program, {"x": x}, record_state=True)
    for kernel in ("numba", "numpy"):
        got = simulate(net, {"x": x}, kernel=kernel, record_state=True)
        two = {k for k, p in net.populations.items() if p.currents == 2}
        assert set(got.u2) == set(want.u2) == two, kernel
        for part in ("populations", "u", "v", "u2", "outputs"):
            for name, arr in getattr(want, part).items():
                assert_array_equal(
                    getattr(got, part)[name], arr, err_msg=f"{kernel}: {part} {name}"
                )


@st.composite
def cases(draw: st.DrawFn) -> tuple[Net, np.ndarray, Target]:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    hidden = tuple(draw(st.integers(1, 12)) for _ in range(draw(st.integers(1, 2))))
    big = draw(st.booleans())
    net = xylo_net(
        rng,
        n_in=draw(st.integers(1, 16)),
        hidden=hidden,
        n_out=draw(st.integers(1, 8)),
        big=big,
        density=draw(st.sampled_from([0.2, 0.6, 1.0])),
        second=draw(st.booleans()),
    )
    x = events(rng, (draw(st.integers(1, 2)), draw(st.integers(1, 40)), net.inputs["x"][0]), big)
    return net, x, small_fan_out(draw(st.sampled_from([2, 5, 64])))


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_simulator_equals_xylosim_on_random_nets(case):
    net, x, target = case
    assert_equal_to_xylosim(net, x, target)


def test_the_random_nets_reach_every_feature():
    """The equivalence above is not vacuous: over a few fixed nets, both saturations change
    the result (a run with 24-bit registers differs), hidden neurons emit 31 spikes in a step,
    alias chains carry synapses, inputs above 15 are clipped and every dash value is used; the
    second currents saturate and change ``v`` (a run without their projections differs)."""
    seen = {"u_saturates": 0, "v_saturates": 0, "aliases": 0, "spikes": 0}
    seen |= {"u2_saturates": 0, "u2_matters": 0}
    dashes: set[int] = set()
    dashes2: set[int] = set()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        net = xylo_net(rng, hidden=(12, 8), big=seed % 2 == 0, second=seed < 4)
        x = events(rng, (1, 40, 5), big=True)
        assert np.any(x > 15)
        target = small_fan_out(3)
        assert_equal_to_xylosim(net, x, target)
        trace = simulate(net, {"x": x}, record_state=True)
        for key, register in (("u_saturates", "current"), ("v_saturates", "voltage")):
            wide = dataclasses.replace(getattr(SPEC, register), width=24)
            other = simulate(
                net.replace(numeric=dataclasses.replace(SPEC, **{register: wide})),
                {"x": x},
                record_state=True,
            )
            seen[key] += any(not np.array_equal(trace.v[k], other.v[k]) for k in net.populations)
        seen["spikes"] = max(seen["spikes"], int(trace.populations["h1"].max()))
        if trace.u2:
            seen["u2_saturates"] += any(np.abs(u2).max() >= 2**15 - 1 for u2 in trace.u2.values())
            one = net.replace(projections=[p for p in net.projections if p.synapse == 0])
            other = simulate(one, {"x": x}, record_state=True)
            seen["u2_matters"] += not np.array_equal(trace.v["h1"], other.v["h1"])
        seen["aliases"] += sum(map(len, xylo.lower(net, target).aliases))
        for pop in net.populations.values():
            assert pop.fixed is not None
            dashes |= set(pop.fixed.du.tolist()) | set(pop.fixed.dv.tolist())
            if pop.fixed.du2 is not None:
                dashes2 |= set(pop.fixed.du2.tolist())
    assert all(count > 0 for count in seen.values()), seen
    assert seen["spikes"] == 31
    assert dashes == set(range(16))
    assert dashes2 == set(range(16))


def test_the_negated_decay_of_the_lowest_voltage_wraps_as_on_xylosim():
    """At ``v = -2**15`` with dash_mem 0 the decay removes all of ``v`` and xylosim holds its
    negation, ``2**15``, in an int16: it wraps to ``-2**15`` (docs/SEMANTICS.md §2.4). Then
    ``dv = sat(-2**15 + u)`` keeps ``v`` at the bound where an exact ``2**15 + u`` would lift
    it to ``-2**15 + 1``."""
    net = xylo_net(np.random.default_rng(0), n_in=1, hidden=(1,), n_out=1, density=1.0)
    pops = dict(net.populations)
    for name in pops:
        f = pops[name].fixed
        assert f is not None
        pops[name] = dataclasses.replace(
            pops[name],
            fixed=dataclasses.replace(
                f, du=[15], dv=[0], vth=[2**15 - 1], bias_mant=[-1], bias_exp=[0]
            ),
        )
    projs = []
    for p in net.projections:
        codes = sp.csr_matrix([[-128]]) if p.src == "x" else sp.csr_matrix((1, 1), dtype=np.int64)
        projs.append(dataclasses.replace(p, fixed=SynapseFixed(codes=codes, exp=7)))
    net = net.replace(populations=pops, projections=tuple(projs))
    x = np.zeros((1, 4, 1), np.int64)
    x[0, 0, 0] = 2  # 2 · (-128 << 7) = -2**15: u, and with the bias of -1 v, at the bound
    trace = simulate(net, {"x": x}, record_state=True)
    assert trace.v["h1"][0, :, 0].tolist() == [-(2**15)] * 4
    assert_equal_to_xylosim(net, x)


def test_the_comparison_fails_on_lava_arithmetic():
    """A net run with Lava's arithmetic (the defaults) differs from xylosim: the comparison
    can fail."""
    rng = np.random.default_rng(1)
    net = xylo_net(rng)
    x = events(rng, (1, 30, 5), big=False)
    lava = load_target("sim").numeric
    lava_net = net.replace(numeric=dataclasses.replace(lava, weight=SPEC.weight), input_latency=1)
    with pytest.raises(AssertionError):
        assert_equal_to_xylosim(lava_net, x)
