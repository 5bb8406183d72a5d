"""Equivalence: the compiled kernel (``kernel="numba"``, the default of integer runs) == the
readable NumPy loop (``kernel="numpy"``), bit for bit: outputs, ``u``, ``u2``, ``v`` and product
units.

The NumPy loop equals the independent reference loop (test_against_reference.py), and Lava
and the RTL equal the default kernel (tests/backends/lava, tests/backends/fpga), so every
backend equals both kernels.
"""

from __future__ import annotations

import dataclasses
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy.backends.sim import compiled
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Net, Operand
from snn_deploy.ir.types import (
    Accumulation,
    CurrentUpdate,
    DecayForm,
    ResetMode,
    ResetTiming,
    ThresholdCompare,
    VoltageUpdate,
)
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import quantize
from tests.backends.lava.test_lava import CASES as LAVA_CASES
from tests.backends.lava.test_lava import uniform
from tests.backends.sim.test_against_reference import random_net
from tests.backends.sim.test_products import SPEC, cases, narrowed, product_graph


def assert_kernels_equal(net: Net, x: dict[str, np.ndarray]) -> None:
    want = simulate(net, x, kernel="numpy", record_state=True)
    got = simulate(net, x, kernel="numba", record_state=True)
    assert set(got.u2) == set(want.u2) == {k for k, p in net.populations.items() if p.currents == 2}
    for part in ("populations", "u", "u2", "v", "outputs", "products"):
        for name, arr in getattr(want, part).items():
            assert arr.dtype == np.int64
            assert_array_equal(getattr(got, part)[name], arr, err_msg=f"{part} {name}")


@st.composite
def nets(draw: st.DrawFn) -> tuple[Net, np.ndarray]:
    """Random chains (input -> p1 -> p2, recurrence, skip) of every feature, and inputs:
    binary at a drawn rate, or graded payloads of up to 2**44 (the int64 accumulator)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    sizes = tuple(draw(st.integers(1, 40)) for _ in range(3))
    timing = draw(st.sampled_from(ResetTiming))
    reset = ResetMode.SUBTRACT if timing is ResetTiming.CARRY else draw(st.sampled_from(ResetMode))
    net = random_net(
        rng,
        sizes=sizes,
        recurrent=draw(st.booleans()),
        delay=draw(st.integers(0, 4)),
        big=draw(st.booleans()),
        reset=reset,
        non_spiking_last=draw(st.booleans()),
        levels=draw(st.sampled_from([1, 1, 2, 5])) if timing is ResetTiming.IMMEDIATE else 1,
        timing=timing,
        compare=draw(st.sampled_from(ThresholdCompare)),
        density=draw(st.sampled_from([0.05, 0.3, 1.0])),  # CSC and dense rows
    )
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 30)), sizes[0])
    top = draw(st.sampled_from([1, 1, 7, 2**44]))
    if top == 1:
        x = (rng.random(shape) < draw(st.sampled_from([0.05, 0.4, 1.0]))).astype(np.int64)
    else:
        x = rng.integers(-top, top + 1, shape)
    return net, x


@settings(max_examples=90, deadline=None)
@given(case=nets())
def test_compiled_equals_numpy_on_random_nets(case):
    net, x = case
    assert_kernels_equal(net, {"x": x})


@st.composite
def generalised(draw: st.DrawFn) -> tuple[Net, np.ndarray]:
    """``nets()`` run with any combination of the format's generalisations of Lava's
    arithmetic (docs/SEMANTICS.md §2.4): decay form, current update, accumulation, voltage
    update, input latency and input cap; narrow registers so that they saturate or wrap."""
    net, x = draw(nets())
    assert net.numeric is not None
    shift_form = draw(st.sampled_from(DecayForm))
    width = draw(st.sampled_from([10, 16, 24]))
    spec = dataclasses.replace(
        net.numeric,
        decay_form=shift_form,
        current_update=draw(st.sampled_from(CurrentUpdate)),
        accumulation=draw(st.sampled_from(Accumulation)),
        voltage_update=draw(st.sampled_from(VoltageUpdate)),
        input_latency=draw(st.sampled_from([0, 1])),
        input_payload_max=draw(st.sampled_from([None, 3])),
        current=dataclasses.replace(net.numeric.current, width=width),
        voltage=dataclasses.replace(net.numeric.voltage, width=width),
    )
    pops = {}
    for name, pop in net.populations.items():
        f = pop.fixed
        assert f is not None
        if shift_form is DecayForm.SHIFT:  # dash values 0..15
            f = dataclasses.replace(f, du=f.du % 16, dv=f.dv % 16)
        pops[name] = dataclasses.replace(pop, fixed=f)
    return net.replace(populations=pops, numeric=spec, input_latency=spec.input_latency), x


@settings(max_examples=60, deadline=None)
@given(case=generalised())
def test_compiled_equals_numpy_on_every_numeric_format(case):
    net, x = case
    net.verify()
    assert_kernels_equal(net, {"x": x})


def with_second_currents(net: Net, rng: np.random.Generator) -> Net:
    """``net`` with a second current (its own decay codes) in each population where a coin
    says so, fed by a copy of every projection into it with other weights (input, forward,
    recurrent and skip projections, delays included)."""
    assert net.numeric is not None
    top = 16 if net.numeric.decay_form is DecayForm.SHIFT else 1 << net.numeric.decay.width
    pops = dict(net.populations)
    projs = list(net.projections)
    for name, pop in net.populations.items():
        if rng.random() < 0.3:
            continue
        assert pop.fixed is not None
        fixed = dataclasses.replace(pop.fixed, du2=rng.integers(0, top, pop.size))
        pops[name] = dataclasses.replace(pop, alpha2=0.25, fixed=fixed)
        for p in net.incoming(name):
            assert p.fixed is not None
            codes = p.fixed.codes.copy()
            codes.data = rng.permutation(-codes.data)
            fixed_w = dataclasses.replace(p.fixed, codes=codes)
            projs.append(dataclasses.replace(p, name=p.name + ".2", synapse=1, fixed=fixed_w))
    return net.replace(populations=pops, projections=projs)


@settings(max_examples=60, deadline=None)
@given(case=st.one_of(nets(), generalised()), seed=st.integers(0, 2**16))
def test_compiled_equals_numpy_with_second_currents(case, seed):
    net, x = case
    net = with_second_currents(net, np.random.default_rng(seed))
    net.verify()
    assert_kernels_equal(net, {"x": x})


@settings(max_examples=15, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16), narrow=st.sampled_from([0, 3]))
def test_compiled_equals_numpy_on_product_units(case, seed, narrow):
    net, x = product_case(case, seed, narrow)
    assert_kernels_equal(net, {"x": x})


def product_case(case: dict, seed: int, narrow: int) -> tuple[Net, np.ndarray]:
    """A quantized random product graph (``test_products.cases``) and binary inputs for it;
    with ``narrow`` its registers so narrow that S, A and the gate saturate."""
    rng = np.random.default_rng(seed)
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    if narrow:
        net = narrowed(net, narrow)
    return net, (rng.random((2, 2 * case["steps"] + 3, 5)) < 0.6).astype(np.int64)


def with_inputs_read_everywhere(net: Net, rng: np.random.Generator) -> Net:
    """``net`` with a second input ``x2`` (a copy of every projection from ``x``, other
    weights), every product unit's first operand reading ``x2`` and its last ``x``, and two
    outputs that read the inputs: the compiled kernel reads inputs in place (``xin``), not
    from its record, and must do so for projections, product units and outputs."""
    (name,) = net.inputs
    projs = list(net.projections)
    for p in net.projections:
        if p.src == name:
            assert p.fixed is not None
            codes = p.fixed.codes.copy()
            codes.data = rng.permutation(codes.data)
            fixed_w = dataclasses.replace(p.fixed, codes=codes)
            projs.append(dataclasses.replace(p, name=p.name + ".x2", src="x2", fixed=fixed_w))
    size = net.size_of(name)
    units = {}
    for k, unit in net.products.items():
        first, *_, last = (f.name for f in dataclasses.fields(unit) if f.type == "Operand")
        index = np.arange(unit.size) % size
        units[k] = dataclasses.replace(
            unit,
            **{first: Operand(src="x2", index=index), last: Operand(src=name, index=index)},
        )
    return net.replace(
        inputs={**net.inputs, "x2": net.inputs[name]},
        projections=projs,
        products=units,
        outputs={**net.outputs, "x_out": name, "x2_out": "x2"},
    )


@settings(max_examples=15, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_compiled_reads_inputs_in_place(case, seed):
    rng = np.random.default_rng(seed)
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    net = with_inputs_read_everywhere(net, rng)
    net.verify()
    assert {op.src for u in net.products.values() for op in u.operands} >= {"x", "x2"}
    shape = (2, 2 * case["steps"] + 3, 5)
    x = {"x": rng.integers(0, 3, shape), "x2": (rng.random(shape) < 0.6).astype(np.int64)}
    assert_kernels_equal(net, x)
    got = simulate(net, x)
    assert_array_equal(got.outputs["x2_out"], x["x2"])
    assert not np.shares_memory(got.outputs["x2_out"], x["x2"])  # a copy, not the caller's


@pytest.mark.parametrize("case", sorted(LAVA_CASES))
def test_numpy_kernel_on_the_lava_test_nets(case):
    """The nets tests/backends/lava compares with Lava (on the default, compiled kernel) also
    run equal on the NumPy kernel."""
    rng = np.random.default_rng(sorted(LAVA_CASES).index(case))
    net = uniform(random_net(rng, **LAVA_CASES[case]))
    x = (rng.random((1, 40, 6)) < 0.4).astype(np.int64)
    assert_kernels_equal(net, {"x": x})


def test_progress_runs_in_chunks_with_the_same_result():
    rng = np.random.default_rng(5)
    net = random_net(rng, delay=2, levels=3)
    x = (rng.random((2, 250, 6)) < 0.3).astype(np.int64)
    calls: list[tuple[int, int]] = []
    chunked = simulate(net, {"x": x}, record_state=True, progress=lambda *a: calls.append(a))
    whole = simulate(net, {"x": x}, record_state=True)
    assert calls[-1] == (250, 250) and len(calls) == 125  # chunks of 250 // 100 steps
    for name in net.populations:
        assert_array_equal(chunked.populations[name], whole.populations[name])
        assert_array_equal(chunked.v[name], whole.v[name])


def test_packed_net_is_cached_for_the_life_of_the_net():
    net = random_net(np.random.default_rng(0))
    x = np.ones((1, 3, 6), np.int64)
    simulate(net, {"x": x})
    packed = compiled.prepare(net)
    simulate(net, {"x": x})
    assert compiled.prepare(net) is packed
    n, freed = len(compiled._CACHE), weakref.ref(net)
    del net
    gc.collect()
    assert freed() is None  # the cache does not keep the net alive
    assert len(compiled._CACHE) <= n - 1  # and drops its entry (others may go too)


def test_compiled_kernel_is_integer_only():
    net = random_net(np.random.default_rng(0))
    with pytest.raises(ValueError, match="integer simulations only"):
        simulate(net, {"x": np.ones((1, 3, 6))}, fixed=False, kernel="numba")


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("spikes", [1, 128, 129, 200])
def test_int16_sums_at_their_bound(sign, spikes):
    """Dense rows add in int16 exactly while ``Σ|x| · max|w| < 2**15``: all-255 weights and
    128 spikes (32,640) stay in int16, 129 (32,895) take the int32 accumulator; both equal
    the NumPy kernel, and so does a payload that alone exceeds the bound."""
    net = random_net(np.random.default_rng(5), sizes=(200, 3, 2), density=1.0)
    projs = []
    for p in net.projections:
        assert p.fixed is not None
        if p.src == "x":
            codes = p.fixed.codes.copy()
            codes.data[:] = sign * 255
            p = dataclasses.replace(p, fixed=dataclasses.replace(p.fixed, codes=codes))
        projs.append(p)
    net = net.replace(projections=projs)
    x = np.zeros((2, 6, 200), np.int64)
    x[0, :, :spikes] = 1
    x[1, :, 0] = 200  # one graded payload: 200 · 255 > 2**15
    assert compiled.prepare(net).proj[0, 8] == 128
    assert_kernels_equal(net, {"x": x})


@pytest.mark.parametrize("bits", [1, 12, 16])
def test_float_decay_equals_the_integer_one_below_2_31(bits):
    """``_lost``'s ``FLOAT`` mode (the float64 product) equals its ``INTEGER`` mode for every
    ``|x| < 2**31`` and code ``0 .. 2**bits``, at the ends of both ranges; ``_mode`` takes
    ``FLOAT`` up to ``2**31 - 1`` and ``INTEGER`` from ``2**31`` (and for add-then-decay when
    the input could carry ``u`` past it, and for codes of over 22 bits)."""
    rng = np.random.default_rng(bits)
    top = 2**31 - 1
    x = np.concatenate([rng.integers(-top, top + 1, 4000), [0, 1, -1, top, -top, top, -top]])
    ends = [2**bits, 1, 1, 2**bits, 2**bits, 1, 0]
    code = np.concatenate([rng.integers(0, 2**bits + 1, 4000), ends])
    for xi, ci in zip(x.tolist(), code.tolist(), strict=True):
        scaled = ci / 2**bits
        want = compiled._lost(xi, ci, scaled, bits, compiled.INTEGER)
        assert compiled._lost(xi, ci, scaled, bits, compiled.FLOAT) == want, (xi, ci)
    spec = (bits, 6, 1, 0, 0, 40, 1, 0, 0, 40, 0, 0, 0, 0)  # multiply form, Lava's order
    none = np.zeros(0, np.int64)
    assert compiled._mode(np.array([top, -top]), none, spec) == compiled.FLOAT
    assert compiled._mode(np.array([0, top + 1]), none, spec) == compiled.INTEGER
    assert compiled._mode(np.array([-(top + 1)]), none, spec) == compiled.INTEGER
    assert compiled._mode(np.array([1]), none, (23, *spec[1:])) == compiled.INTEGER  # > 2**53
    then_decay, u = (*spec[:12], 1, 0), np.array([2**30 - 1])
    assert compiled._mode(u, np.array([2**24 - 1]), then_decay) == compiled.FLOAT
    assert compiled._mode(u, np.array([2**24]), then_decay) == compiled.INTEGER
