"""Product units (Attention, Gate; docs/SEMANTICS.md §4): simulator == reference loop, bit for
bit, on random graphs with multi-level spikes, decays, whole-clip attention and saturation."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir import nodes as n
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import FixedPoint
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import quantize
from snn_deploy.target.load import load_target
from tests.backends.sim.reference import run_reference

SPEC = load_target("sim").numeric


def _lif(size: int, levels: int, threshold: float = 0.5) -> n.LIF:
    return n.LIF(
        in_shape=(size,),
        out_shape=(size,),
        tau=np.full(size, 2e-4),
        r=np.full(size, 2.0),
        v_leak=np.zeros(size),
        v_threshold=np.full(size, threshold),
        v_reset=np.zeros(size),
        levels=levels,
    )


def _select(rows: int, cols: int, offset: int, size: int) -> n.Linear:
    """Copy a source's first ``size`` outputs to rows ``offset..offset+size`` (weight 1)."""
    weight = np.zeros((rows, cols))
    weight[np.arange(offset, offset + size), np.arange(size)] = 1.0
    return n.Linear(in_shape=(cols,), out_shape=(rows,), weight=weight)


def product_graph(
    rng: np.random.Generator,
    *,
    dim: int,
    heads: int,
    levels: int,
    decay: tuple[int, ...],
    causal: bool,
    steps: int,
) -> Graph:
    """x -> qkv (LIF, ``levels``) -> Attention -> 2^-3 -> out (LIF); x -> val (LI) and qkv's
    first ``dim`` spikes -> Gate -> out."""
    n_in = 5
    nodes: dict[str, n.Node] = {
        "x": n.Input(in_shape=(n_in,), out_shape=(n_in,)),
        "w": n.Linear(
            in_shape=(n_in,), out_shape=(3 * dim,), weight=rng.normal(size=(3 * dim, n_in))
        ),
        "qkv": _lif(3 * dim, levels),
        "att": n.Attention(
            in_shape=(3 * dim,),
            out_shape=(dim,),
            heads=heads,
            decay=decay,
            causal=causal,
            steps=steps,
        ),
        "scale": n.Scale(in_shape=(dim,), out_shape=(dim,), scale=np.full(dim, 2.0**-3)),
        "wv": n.Linear(in_shape=(n_in,), out_shape=(dim,), weight=rng.normal(size=(dim, n_in))),
        "val": n.LI(
            in_shape=(dim,),
            out_shape=(dim,),
            tau=np.full(dim, 1e-4),
            r=np.ones(dim),
            v_leak=np.zeros(dim),
        ),
        "sel_a": _select(2 * dim, dim, 0, dim),
        "sel_g": _select(2 * dim, 3 * dim, dim, dim),
        "gate": n.Gate(in_shape=(2 * dim,), out_shape=(dim,)),
        "wg": n.Linear(in_shape=(dim,), out_shape=(dim,), weight=rng.normal(size=(dim, dim))),
        "out": _lif(dim, 1, threshold=1.0),
        "y": n.Output(in_shape=(dim,), out_shape=(dim,)),
    }
    edges = [
        ("x", "w"), ("w", "qkv"), ("qkv", "att"), ("att", "scale"), ("scale", "out"),
        ("x", "wv"), ("wv", "val"), ("val", "sel_a"), ("qkv", "sel_g"), ("sel_a", "gate"),
        ("sel_g", "gate"), ("gate", "wg"), ("wg", "out"), ("out", "y"),
    ]  # fmt: skip
    graph = Graph(nodes=nodes, edges=tuple(edges))
    graph.verify()
    return graph


def narrowed(net: Net, bits: int) -> Net:
    """Every product register ``bits`` narrower (at least 2 bits): saturation must happen."""

    def cut(reg: FixedPoint | None) -> FixedPoint | None:
        return None if reg is None else FixedPoint(width=max(2, reg.width - bits), signed=True)

    units = {
        k: dataclasses.replace(
            u,
            fixed=dataclasses.replace(
                u.fixed, output=cut(u.fixed.output), state=cut(u.fixed.state)
            ),
        )
        for k, u in net.products.items()
    }
    return net.replace(products=units)


@st.composite
def cases(draw):
    heads = draw(st.sampled_from([1, 2]))
    dim = heads * draw(st.integers(1, 3))
    causal = draw(st.booleans())
    decay = tuple(draw(st.integers(0, 3)) if causal else 0 for _ in range(heads))
    return {
        "dim": dim,
        "heads": heads,
        "levels": draw(st.sampled_from([1, 3])),
        "decay": decay,
        "causal": causal,
        "steps": draw(st.integers(2, 8)),
    }


@settings(max_examples=20, deadline=None)
@given(case=cases(), seed=st.integers(0, 2**16), narrow=st.sampled_from([0, 3]))
def test_simulator_equals_reference(case, seed, narrow):
    rng = np.random.default_rng(seed)
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    if narrow:
        net = narrowed(net, narrow)
    steps = 2 * case["steps"] + 3
    x = (rng.random((2, steps, 5)) < 0.6).astype(np.int64)
    trace = simulate(net, {"x": x})
    for b in range(2):
        want = run_reference(net, x[b])
        for name in [*net.populations, *net.products]:
            got = trace.products.get(name, trace.populations.get(name))
            assert_array_equal(got[b], want[name], err_msg=f"{name} sample {b}")


def test_saturation_and_levels_really_occur():
    """The narrowed registers clip (the outputs change), and multi-level q, k, v reach their top
    level (the seed is one whose q, k and v all spike)."""
    rng = np.random.default_rng(3)
    case = {"dim": 4, "heads": 2, "levels": 3, "decay": (0, 1), "causal": True, "steps": 6}
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    x = (rng.random((1, 12, 5)) < 0.6).astype(np.int64)
    full = simulate(net, {"x": x})
    assert full.populations["qkv"].max() == 3
    small = narrowed(net, 4)
    clipped = simulate(small, {"x": x}).products["att"]
    assert full.products["att"].max() > clipped.max() > 0
    assert_array_equal(clipped[0], run_reference(small, x[0])["att"])


def test_worst_case_registers_never_clip():
    """Sized from the worst case: all-ones operands for ``steps`` steps reach the bound, and the
    float run (no registers) gives the same integers."""
    rng = np.random.default_rng(2)
    case = {"dim": 4, "heads": 1, "levels": 1, "decay": (0,), "causal": True, "steps": 5}
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    att = net.products["att"]
    # drive q, k, v with every spike every step: the state reaches steps·1·1 = 5 per entry
    x = np.ones((1, case["steps"] + 1, 5), np.int64)
    x_float = x.astype(float)
    integer = simulate(net, {"x": x}).products["att"]
    floats = simulate(net, {"x": x_float}, fixed=False).products["att"]
    assert_array_equal(integer, floats)
    assert integer.max() <= att.fixed.output.max


def test_whole_clip_reads_after_the_clip():
    """Whole-clip attention outputs nothing during the clip, then q[n]ᵀ·S_clip for n < steps:
    latency 2·steps (one more step: the unit reads its operands' previous outputs)."""
    rng = np.random.default_rng(1)
    case = {"dim": 2, "heads": 1, "levels": 1, "decay": (0,), "causal": False, "steps": 4}
    net = quantize(lower(product_graph(rng, **case), 1e-4), SPEC)
    x = (rng.random((1, 12, 5)) < 0.7).astype(np.int64)
    trace = simulate(net, {"x": x})
    qkv = trace.populations["qkv"][0]
    q, k, v = qkv[:, :2], qkv[:, 2:4], qkv[:, 4:]
    s = sum(np.outer(k[t], v[t]) for t in range(4))
    want = np.zeros((12, 2), np.int64)
    for t in range(4):
        want[t + 5] = q[t] @ s  # read at unit step steps + 1 + t
    assert_array_equal(trace.products["att"][0], want)
