"""``snn_deploy.nn``: the PyTorch layers run spike for spike like our float simulator (no shift)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from snn_deploy import nn as snn
from snn_deploy.frontends.nir import COMPARE_KEY, LEVELS_KEY, RESET_KEY
from snn_deploy.frontends.nir import load as load_nir
from tests.frontends.test_torch import ours, spikes


def _scaled(model: torch.nn.Module, gain: float) -> torch.nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
    return model


@pytest.mark.parametrize("levels", [1, 3])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_mlp_spike_for_spike(reset, levels):
    torch.manual_seed(0)
    model = _scaled(
        torch.nn.Sequential(
            snn.Linear(12, 20),
            snn.LIF(20, beta=0.9, reset=reset, levels=levels),
            snn.Linear(20, 10, bias=False),
            snn.CubaLIF(10, alpha=0.8, beta=0.9, reset=reset, levels=levels),
            snn.Linear(10, 5),
            snn.IF(5, threshold=0.5, reset=reset, levels=levels),
        ).double(),
        3,
    )
    x = spikes(50, 4, (12,))
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    result = ours(model, x)
    np.testing.assert_array_equal(result["float"], out)
    assert out.sum() > 0
    assert out.max() == levels  # multi-level runs really send spikes above 1
    assert np.mean(result["quant"] == out) > 0.95


def test_conv_model_spike_for_spike():
    torch.manual_seed(1)
    model = _scaled(
        torch.nn.Sequential(
            snn.Conv2d(2, 4, 3, padding=1),
            snn.IF((4, 6, 6), reset="subtract"),
            torch.nn.AvgPool2d(2),
            torch.nn.Flatten(),
            snn.Linear(36, 5),
            snn.LIF(5, beta=0.8),
        ).double(),
        2,
    )
    x = spikes(30, 3, (2, 6, 6))
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    np.testing.assert_array_equal(ours(model, x, input_shape=(2, 6, 6))["float"], out)
    assert out.sum() > 0


def test_export_round_trips_and_has_surrogate_gradients():
    model = torch.nn.Sequential(snn.Linear(3, 4), snn.LIF(4, beta=0.5, learn_beta=True))
    graph = snn.export(model, dt=1e-3)
    assert type(graph.nodes["lif1"]).__name__ == "LIF"
    np.testing.assert_allclose(graph.nodes["lif1"].tau, 1e-3 / 0.5)
    assert load_nir(graph).nodes["lif1"].in_shape == (4,)
    out = snn.run(model, torch.ones(5, 2, 3, requires_grad=True))
    out.sum().backward()
    assert model[0].weight.grad is not None and model[1].beta.grad is not None


def test_bad_parameters():
    with pytest.raises(ValueError, match="beta must be in"):
        snn.LIF(3, beta=1.0)
    with pytest.raises(ValueError, match="reset must be"):
        snn.IF(3, reset="none")


# ---------------------------------------------------------------- multi-level spikes (issue 8d)


def test_multispike_hand_computed_levels_3():
    # s = #{k in 1..3 : v > k·θ}: strict at every level, so v exactly 2θ sends 1, not 2
    theta = 0.5
    v = torch.tensor([-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 7.0])
    expected = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert snn.multispike(v, theta, 3).tolist() == expected


@given(st.floats(-10, 10, allow_nan=False, width=32), st.integers(1, 5))
def test_multispike_is_ceil_minus_one(v, levels):
    # for θ = 1 (exact division): s = clamp(ceil(v) - 1, 0, D)
    x = torch.tensor([v])
    expected = min(max(math.ceil(v) - 1, 0), levels)
    assert snn.multispike(x, 1.0, levels).item() == expected


@pytest.mark.parametrize(
    ("reset", "spikes_out", "v_after"),
    [
        # v: 0.5, 1.0, 2.0, 2.5+..., see the test body
        ("subtract", [0, 0, 1, 3, 3, 2, 0], [0.5, 1.0, 1.0, 0.5, 2.5, 0.5, 0.5]),
        ("zero", [0, 0, 1, 2, 3, 0, 0], [0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_if_levels_3_forward_and_reset(reset, spikes_out, v_after):
    # IF (θ = 1, D = 3), v = v + x then s = #{k : v > k}, reset v = 0 where s > 0 or v -= s.
    # subtract: v = 0.5 | 1.0 (= θ: no spike) | 2.0 (= 2θ: s = 1) -> 1.0 | 3.5 -> s = 3, 0.5 |
    # 5.5 -> s = 3 (capped), 2.5 | 2.5 -> s = 2, 0.5 | 0.5
    # zero: 0.5 | 1.0 | 2.0 -> s = 1, 0 | 2.5 -> 2, 0 | 5.0 -> 3, 0 | 0 | 0
    layer = snn.IF(1, reset=reset, levels=3)
    out, volts = [], []
    for x in (0.5, 0.5, 1.0, 2.5, 5.0, 0.0, 0.0):
        out.append(layer(torch.tensor([[x]])).item())
        volts.append(layer.v.item())
    assert out == spikes_out
    assert volts == v_after


def test_multispike_surrogate_sums_the_level_surrogates():
    v = torch.tensor([2.0, 0.0], requires_grad=True)
    snn.multispike(v, 1.0, 3).sum().backward()
    bump = lambda d: 1.0 / (1.0 + 10.0 * abs(d)) ** 2  # noqa: E731
    expected = [bump(1) + bump(0) + bump(-1), bump(-1) + bump(-2) + bump(-3)]
    np.testing.assert_allclose(v.grad.numpy(), expected, rtol=1e-6)
    # one level: exactly the binary spike's surrogate
    a = torch.tensor([0.3, 1.0, 1.7], requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    snn.multispike(a, 1.0, 1).sum().backward()
    snn.spike(b - 1.0).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_export_writes_spike_levels():
    model = torch.nn.Sequential(
        snn.Linear(3, 4),
        snn.LIF(4, beta=0.5, levels=3),
        snn.Linear(4, 4),
        snn.CubaLIF(4, alpha=0.5, beta=0.5, reset="subtract", levels=2),
        snn.Linear(4, 2),
        snn.IF(2),
    )
    nodes = snn.export(model).nodes
    assert nodes["lif1"].metadata == {RESET_KEY: "zero", LEVELS_KEY: 3}
    assert nodes["cubalif2"].metadata == {RESET_KEY: "subtract", LEVELS_KEY: 2}
    assert nodes["if3"].metadata == {RESET_KEY: "zero"}  # binary: no key
    assert LEVELS_KEY == "snn_deploy.spike_levels"


@pytest.mark.parametrize("compare", [">", ">="])
def test_compare_decides_a_voltage_exactly_at_the_threshold(compare):
    # weights 0.5: two input spikes bring v exactly to θ = 1 (and 2θ with four, levels 3);
    # ``>=`` (Xylo's test) fires there and ``>`` does not, in torch and in our float run alike
    model = torch.nn.Sequential(
        snn.Linear(4, 2, bias=False),
        snn.IF(2, threshold=1.0, reset="subtract", levels=3, compare=compare),
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]]))
    x = torch.zeros(3, 1, 4, dtype=torch.float64)
    x[0, 0] = 1.0
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    expect = [[1.0, 2.0]] if compare == ">=" else [[0.0, 1.0]]  # v = 1 and 2 at step 1
    np.testing.assert_array_equal(out[1], expect)
    np.testing.assert_array_equal(ours(model, x)["float"], out)
    meta = snn.export(model).nodes["if1"].metadata
    assert meta.get(COMPARE_KEY, ">") == compare


def test_levels_1_is_the_binary_neuron():
    torch.manual_seed(2)
    x = spikes(40, 3, (6,))

    def make(**kw):
        torch.manual_seed(3)
        return _scaled(
            torch.nn.Sequential(
                snn.Linear(6, 8), snn.CubaLIF(8, alpha=0.8, beta=0.9, **kw)
            ).double(),
            3,
        )

    default, explicit = make(), make(levels=1)
    outs = []
    for model in (default, explicit):
        y = snn.run(model, x)
        y.sum().backward()
        outs.append((y.detach(), model[0].weight.grad.clone()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert set(outs[0][0].unique().tolist()) == {0.0, 1.0}
    assert snn.export(explicit).nodes["cubalif1"].metadata == {RESET_KEY: "zero"}


def test_checkpoint_architecture_takes_levels(tmp_path):
    from snn_deploy.frontends.torch import read_model, to_nir

    model = torch.nn.Sequential(snn.Linear(3, 4), snn.LIF(4, beta=0.5, levels=3))
    arch = [
        ["snn_deploy.nn.Linear", {"in_features": 3, "out_features": 4}],
        ["snn_deploy.nn.LIF", {"shape": 4, "beta": 0.5, "levels": 3}],
    ]
    torch.save({"architecture": arch, "state_dict": model.state_dict()}, tmp_path / "m.pt")
    rebuilt, _ = read_model(tmp_path / "m.pt")
    assert rebuilt[1].levels == 3
    assert to_nir(rebuilt).nodes["lif1"].metadata[LEVELS_KEY] == 3


@pytest.mark.parametrize("levels", [0, -1, 1.5, True])
def test_bad_levels(levels):
    with pytest.raises(ValueError, match="levels must be"):
        snn.LIF(3, beta=0.5, levels=levels)
