"""``lower``: Before/Expected for folding, discretisation, and its errors."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from snn_deploy.errors import UnsupportedOpError, VerificationError
from snn_deploy.frontends.nir import load
from snn_deploy.ir import nodes as n
from snn_deploy.passes.lower import linear_map, lower
from tests.graphs import every_node_type, lif_node


def _graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_affine_into_lif_becomes_one_projection_with_euler_gain():
    w, b = np.array([[1.0, -2.0]]), np.array([0.5])
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([2])}),
                "fc": nir.Affine(weight=w, bias=b),
                "lif": lif_node(1, v_leak=0.3, v_reset=0.1),
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "fc"), ("fc", "lif"), ("lif", "y")],
        )
    )
    net = lower(g, dt=1e-3)
    (proj,) = net.projections
    pop = net.populations["lif"]
    gain = 2.0 * 1e-3 / 1e-2  # R dt / tau
    assert (proj.src, proj.dst, proj.delay, proj.name) == ("x", "lif", 0, "fc")
    assert_allclose(proj.weight.toarray(), gain * w)
    assert_allclose(pop.alpha, [1.0])
    assert_allclose(pop.beta, [0.1])
    assert_allclose(pop.threshold, [0.9])  # v_th - v_reset
    assert_allclose(pop.bias, [0.1 * (0.3 - 0.1) + gain * 0.5])


def test_cubalif_gain_and_bias_fold():
    node = nir.CubaLIF(
        tau_syn=np.array([2e-3]),
        tau_mem=np.array([4e-3]),
        r=np.array([3.0]),
        v_leak=np.array([0.0]),
        v_threshold=np.array([1.0]),
        v_reset=np.array([0.0]),
        w_in=np.array([2.0]),
    )
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "fc": nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.25])),
                "c": node,
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "fc"), ("fc", "c"), ("c", "y")],
        )
    )
    net = lower(g, dt=1e-3)
    gain = (1e-3 / 4e-3) * 3.0 * (1e-3 / 2e-3) * 2.0
    assert_allclose(net.projections[0].weight.toarray(), [[gain]])
    assert_allclose(net.populations["c"].alpha, [0.5])
    assert_allclose(net.populations["c"].bias, [gain * 0.25 / 0.5])  # steady state of u


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 2), (2, 1, 1, 4)],
)
def test_conv2d_matrix_equals_torch(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 4 // groups, 3, 3))
    node = n.Conv2d(
        in_shape=(4, 7, 6),
        out_shape=n.Conv2d.out_shape_of(
            type(
                "P",
                (),
                {
                    "weight": weight,
                    "stride": (stride,) * 2,
                    "padding": (padding,) * 2,
                    "dilation": (dilation,) * 2,
                },
            )(),
            (4, 7, 6),
        ),
        weight=weight,
        bias=rng.normal(size=4),
        stride=(stride,) * 2,
        padding=(padding,) * 2,
        dilation=(dilation,) * 2,
        groups=groups,
    )
    x = rng.normal(size=(4, 7, 6))
    matrix, bias = linear_map(node)
    want = torch.nn.functional.conv2d(
        torch.tensor(x)[None],
        torch.tensor(weight),
        torch.tensor(node.bias),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )[0]
    assert_allclose(matrix @ x.ravel() + bias, want.numpy().ravel(), atol=1e-12)


def test_conv1d_and_pools_equal_torch():
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(3, 2, 3))
    c1 = n.Conv1d(
        in_shape=(2, 9),
        out_shape=(3, 4),
        weight=w1,
        bias=np.zeros(3),
        stride=(2,),
        padding=(0,),
        dilation=(1,),
        groups=1,
    )
    x1 = rng.normal(size=(2, 9))
    want = torch.nn.functional.conv1d(torch.tensor(x1)[None], torch.tensor(w1), stride=2)[0]
    assert_allclose(linear_map(c1)[0] @ x1.ravel(), want.numpy().ravel(), atol=1e-12)
    x = rng.normal(size=(3, 6, 6))
    kw = {
        "in_shape": (3, 6, 6),
        "out_shape": (3, 3, 3),
        "kernel_size": (2, 2),
        "stride": (2, 2),
        "padding": (0, 0),
    }
    avg = torch.nn.functional.avg_pool2d(torch.tensor(x)[None], 2)[0].numpy().ravel()
    assert_allclose(linear_map(n.AvgPool2d(**kw))[0] @ x.ravel(), avg, atol=1e-12)
    assert_allclose(linear_map(n.SumPool2d(**kw))[0] @ x.ravel(), 4 * avg, atol=1e-12)


def test_every_node_type_lowers_with_merge_delay_and_recurrence():
    net = lower(load(every_node_type()), dt=1e-4)
    by_name = {p.name: p for p in net.projections}
    assert by_name["pool+avg+flat+fc"].src == "if"
    assert by_name["scale+delay"].delay == 3  # 3e-4 s at dt = 1e-4 s
    assert by_name["sub.rec"].src == by_name["sub.rec"].dst == "sub.lif"
    gain = (1e-4 / 5e-3) * (1e-4 / 2e-3)  # CubaLIF: (dt/tau_mem) R (dt/tau_syn) w_in
    assert_allclose(by_name["scale+delay"].weight.diagonal(), gain * np.linspace(0.5, 1.5, 8))
    assert net.outputs == {"output": "li", "output3": "culi"}
    assert not net.populations["li"].spiking and net.populations["thr"].spiking


def test_cycle_without_state_is_an_error():
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "a": nir.Linear(weight=np.eye(1)),
                "b": nir.Linear(weight=np.eye(1)),
                "lif": lif_node(1),
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "a"), ("a", "b"), ("b", "a"), ("b", "lif"), ("lif", "y")],
        )
    )
    with pytest.raises(VerificationError, match=r"cycle without state: (a -> b -> a|b -> a -> b)"):
        lower(g, 1e-3)


def test_output_behind_a_weight_is_an_error():
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "lif": lif_node(1),
                "w": nir.Linear(weight=np.eye(1)),
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "lif"), ("lif", "w"), ("w", "y")],
        )
    )
    with pytest.raises(UnsupportedOpError, match="Output 'y' must read exactly one neuron"):
        lower(g, 1e-3)


def test_unstable_time_step_is_an_error():
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "lif": lif_node(1, tau=1e-4),
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "lif"), ("lif", "y")],
        )
    )
    with pytest.raises(VerificationError, match=r"dt/tau_mem = 10 > 1 .*smaller --dt"):
        lower(g, 1e-3)
    assert lower(g, 1e-4).projections[0].name == "x->lif"  # identity projection


def test_delay_must_be_whole_steps():
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "d": nir.Delay(delay=np.array([1.5e-3])),
                "lif": lif_node(1),
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "d"), ("d", "lif"), ("lif", "y")],
        )
    )
    with pytest.raises(VerificationError, match="whole multiples of dt"):
        lower(g, 1e-3)
    assert lower(g, 5e-4).projections[0].delay == 3


def test_spike_levels_become_the_population_levels():
    lif = lif_node(2)
    lif.metadata["snn_deploy.spike_levels"] = 4
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([2])}),
                "fc": nir.Linear(weight=np.eye(2)),
                "lif": lif,
                "li": nir.LI(tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2)),
                "y": nir.Output(output_type={"output": np.array([2])}),
            },
            [("x", "fc"), ("fc", "lif"), ("lif", "li"), ("li", "y")],
        )
    )
    net = lower(g, dt=1e-3)
    assert (net.populations["lif"].levels, net.populations["li"].levels) == (4, 1)


def test_spike_levels_need_a_positive_threshold():
    lif = lif_node(1, v_threshold=0.0)
    lif.metadata["snn_deploy.spike_levels"] = 2
    g = load(
        _graph(
            {
                "x": nir.Input(input_type={"input": np.array([1])}),
                "fc": nir.Linear(weight=np.eye(1)),
                "lif": lif,
                "y": nir.Output(output_type={"output": np.array([1])}),
            },
            [("x", "fc"), ("fc", "lif"), ("lif", "y")],
        )
    )
    with pytest.raises(VerificationError, match=r"'lif': 2 spike levels need thresholds > 0"):
        lower(g, dt=1e-3)
