"""Property tests (Hypothesis) on random valid graphs (issue 9): compiling never fails with an
internal error; the simulator equals the loop-based reference, Lava and the RTL; quantizing a
dequantized net gives back its integers; a compile output folder (network.npz, graph.nir,
vectors.npz) loads and re-simulates bit-exactly (issue 17)."""

from __future__ import annotations

import dataclasses
import functools
import itertools

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy import api
from snn_deploy.backends import get_all_backends
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import SnnDeployError
from snn_deploy.frontends.nir import load
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from snn_deploy.passes.quantize import quantize
from tests.backends.sim.reference import run_reference

SIM = api.load_target("sim")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def graphs(draw: st.DrawFn, *, lava_ok: bool = False) -> tuple[nir.NIRGraph, int]:
    """A chain Input -> (Linear|Affine [-> Delay] -> neuron [+ recurrence])* -> Output."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    sizes = [draw(st.integers(1, 6)) for _ in range(draw(st.integers(2, 4)))]
    nodes = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "input"
    kinds = ["LIF", "CubaLIF", "IF"]
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, draw(st.sampled_from([0.3, 1.0, 3.0])), (b, a))
        syn = (
            nir.Affine(weight=w, bias=rng.normal(0, 0.05, b))
            if draw(st.booleans())
            else nir.Linear(weight=w)
        )
        nodes[f"w{i}"] = syn
        edges.append((prev, f"w{i}"))
        prev = f"w{i}"
        if draw(st.booleans()):
            nodes[f"d{i}"] = nir.Delay(delay=np.full(b, 1e-4 * draw(st.integers(0, 3))))
            edges.append((prev, f"d{i}"))
            prev = f"d{i}"
        kind = draw(st.sampled_from(kinds))
        f = functools.partial(np.full, b, dtype=np.float64)
        reset = draw(st.sampled_from(["zero"] if lava_ok else ["zero", "subtract"]))
        meta = {"snn_deploy.reset": reset}
        th = f(rng.uniform(0.2, 2.0))
        if kind == "LIF":
            node = nir.LIF(
                tau=f(rng.uniform(2e-4, 2e-2)),
                r=f(10),
                v_leak=f(0),
                v_threshold=th,
                v_reset=f(0),
                metadata=meta,
            )
        elif kind == "CubaLIF":
            node = nir.CubaLIF(
                tau_syn=f(rng.uniform(2e-4, 2e-2)),
                tau_mem=f(rng.uniform(2e-4, 2e-2)),
                r=f(10),
                v_leak=f(0),
                v_threshold=th,
                v_reset=f(0),
                w_in=f(5),
                metadata=meta,
            )
        else:
            node = nir.IF(r=f(1), v_threshold=th, v_reset=f(0), metadata=meta)
        nodes[f"n{i}"] = node
        edges.append((prev, f"n{i}"))
        if draw(st.booleans()):
            nodes[f"r{i}"] = nir.Linear(weight=rng.normal(0, 0.5, (b, b)))
            edges += [(f"n{i}", f"r{i}"), (f"r{i}", f"n{i}")]
        prev = f"n{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), seed


def compiled(graph: nir.NIRGraph, target: str = "sim") -> Net:
    _, net = api.lower_and_quantize(load(graph), api.load_target(target))
    return net


def inputs(net: Net, seed: int, steps: int = 25) -> np.ndarray:
    (shape,) = net.inputs.values()
    return (np.random.default_rng(seed).random((1, steps, *shape)) < 0.4).astype(np.int64)


@SETTINGS
@given(graphs())
def test_compile_never_fails_internally_and_sim_equals_reference(case):
    graph, seed = case
    try:
        net = compiled(graph)
    except SnnDeployError:  # a clear, user-facing error is allowed; anything else is a bug
        return
    x = inputs(net, seed)
    trace = simulate(net, {"input": x})
    want = run_reference(net, x[0])
    for name in net.populations:
        assert_array_equal(trace.populations[name][0], want[name])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=graphs())
def test_compile_save_load_resimulates_bit_exactly(tmp_path_factory, case):
    """Any net the API builds compiles; its folder's network.npz loads to an equal net that
    re-runs the vectors bit for bit, and its graph.nir compiles to the same integers."""
    graph, seed = case
    tmp = tmp_path_factory.mktemp("roundtrip")
    nir.write(tmp / "model.nir", graph)
    (size,) = graph.nodes["input"].input_type["input"]
    x = (np.random.default_rng(seed).random((2, 20, size)) < 0.4).astype(np.int64)
    try:
        result = api.compile(tmp / "model.nir", "sim", out_dir=tmp / "out", inputs={"input": x})
    except SnnDeployError:  # a clear, user-facing error is allowed (e.g. a register overflow)
        event("refused with a user error")
        return
    net = api.load_program(tmp / "out")
    assert serialize.to_bytes(net) == serialize.to_bytes(result.net)
    got = api.simulate(net, {"input": x})
    with np.load(tmp / "out" / "vectors.npz") as vectors:
        assert_array_equal(vectors["input.input"], x)
        for name, rec in got.outputs.items():
            assert_array_equal(rec, vectors[f"output.{name}"])
    again = api.compile(tmp / "out" / "graph.nir", "sim")
    assert serialize.to_bytes(again.net) == serialize.to_bytes(result.net)


def dequantized(net: Net) -> Net:
    """The float net whose quantization at the same scales gives ``net``'s integers back."""
    spec = net.numeric
    unity = 2.0**spec.decay.width
    pops = {}
    for name, p in net.populations.items():
        f = p.fixed
        pops[name] = dataclasses.replace(
            p,
            fixed=None,
            voltage_scale=f.scale,
            alpha=(f.du + spec.current_decay_offset) / unity,
            beta=(f.dv + spec.voltage_decay_offset) / unity,
            threshold=None if f.vth is None else f.vth * 2.0**spec.threshold_shift / f.scale,
            bias=(f.bias_mant * 2.0**f.bias_exp) / f.scale,
        )
    projs = tuple(
        dataclasses.replace(
            p,
            fixed=None,
            weight=p.fixed.codes
            * (2.0 ** (p.fixed.exp + spec.input_shift) / net.populations[p.dst].fixed.scale),
        )
        for p in net.projections
    )
    return net.replace(populations=pops, projections=projs, numeric=None)


@SETTINGS
@given(graphs())
def test_quantize_dequantize_quantize_is_idempotent(case):
    graph, _ = case
    net = compiled(graph)
    again = quantize(dequantized(net), net.numeric)
    for name, p in net.populations.items():
        a, b = p.fixed, again.populations[name].fixed
        for field in ("du", "dv", "vth"):
            assert_array_equal(getattr(a, field), getattr(b, field))
        assert_array_equal(a.bias_mant << a.bias_exp, b.bias_mant << b.bias_exp)
    for p, q in zip(net.projections, again.projections, strict=True):
        value = lambda s: s.codes.toarray() * 2.0**s.exp  # noqa: E731
        assert_array_equal(value(p.fixed), value(q.fixed))


@pytest.mark.toolchain("lava")
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs(lava_ok=True))
def test_sim_equals_lava(case):
    graph, seed = case
    net = compiled(graph, "loihi-sim")
    x = inputs(net, seed)
    got = api.simulate(net, {"input": x}, target="loihi-sim")
    want = simulate(net, {"input": x})
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name])


@pytest.mark.toolchain("iverilog")
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs())
def test_sim_equals_rtl(case):
    graph, seed = case
    target = api.load_target("fpga-artix7-35t")
    net = compiled(graph, "fpga-artix7-35t")
    backend = get_all_backends()["fpga"]()
    x = inputs(net, seed, steps=15)
    got = backend.run(backend.lower(net, target), {"input": x})
    want = simulate(net, {"input": x})
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name])
