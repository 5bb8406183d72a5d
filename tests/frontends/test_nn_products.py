"""``snn_deploy.nn.SpikingSelfAttention`` and ``SpikingGate``: the PyTorch forward is the float
semantics of docs/SEMANTICS.md §4, spike for spike, through NIR and a ``.pt`` checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_deploy import api
from snn_deploy import nn as snn
from snn_deploy.backends.sim.run import simulate
from snn_deploy.frontends.torch import load
from tests.frontends.test_torch import ours, spikes

STEPS = 12
CASES = {
    "plain": {"levels": 1, "decay": (0, 0), "causal": True},
    "decayed-multi-level": {"levels": 3, "decay": (1, 3), "causal": True},
    "whole-clip": {"levels": 1, "decay": (0, 0), "causal": False},
}


def architecture(case: dict) -> list:
    """The checkpoint form of the test model: [class name, kwargs] per layer."""
    return [
        ["snn_deploy.nn.Linear", {"in_features": 10, "out_features": 8}],
        ["snn_deploy.nn.LIF", {"shape": 8, "beta": 0.8, "threshold": 0.5}],
        [
            "snn_deploy.nn.SpikingSelfAttention",
            {"dim": 8, "heads": 2, "steps": STEPS, "threshold": 0.5, "scale_shift": 2, **case},
        ],
        ["snn_deploy.nn.SpikingGate", {"dim": 8, "threshold": 0.5, "levels": case["levels"]}],
        ["snn_deploy.nn.Linear", {"in_features": 8, "out_features": 4}],
        ["snn_deploy.nn.LIF", {"shape": 4, "beta": 0.8, "threshold": 0.5}],
    ]


def build(case: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = []
    for name, kwargs in architecture(case):
        layers.append(getattr(snn, name.rsplit(".", 1)[1])(**kwargs))
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.0)
    return model


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_simulator_runs_the_pytorch_forward_spike_for_spike(case):
    model = build(CASES[case])
    x = spikes(2 * STEPS + 6, 3, (10,), p=0.5)
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    result = ours(model, x)
    np.testing.assert_array_equal(result["float"], out)
    assert out.sum() > 0
    _, net = api.lower_and_quantize(result["graph"], api.load_target("sim"), dt=1e-4)
    trace = simulate(net, {"input": np.swapaxes(x.numpy(), 0, 1)})
    for unit in net.products:  # both products really multiply something
        assert np.abs(trace.products[unit]).sum() > 0, unit
    assert trace.populations["spikingselfattention2.qkv_lif"].max() == CASES[case]["levels"]


def test_surrogate_gradients_reach_every_weight():
    model = build(CASES["decayed-multi-level"])
    out = snn.run(model, spikes(20, 2, (10,), p=0.5))
    out.sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_checkpoint_route(tmp_path):
    case = CASES["whole-clip"]
    model = build(case)
    path = tmp_path / "model.pt"
    torch.save({"architecture": architecture(case), "state_dict": model.state_dict()}, path)
    x = spikes(2 * STEPS + 4, 2, (10,), p=0.5)
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    graph = load(path, dt=1e-4)
    np.testing.assert_array_equal(ours(graph, x)["float"], out)
