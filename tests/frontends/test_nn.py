"""``snn_deploy.nn``: the PyTorch layers run spike for spike like our float simulator (no shift)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_deploy import nn as snn
from snn_deploy.frontends.nir import load as load_nir
from tests.frontends.test_torch import ours, spikes


def _scaled(model: torch.nn.Module, gain: float) -> torch.nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
    return model


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_mlp_spike_for_spike(reset):
    torch.manual_seed(0)
    model = _scaled(
        torch.nn.Sequential(
            snn.Linear(12, 20),
            snn.LIF(20, beta=0.9, reset=reset),
            snn.Linear(20, 10, bias=False),
            snn.CubaLIF(10, alpha=0.8, beta=0.9, reset=reset),
            snn.Linear(10, 5),
            snn.IF(5, threshold=0.5, reset=reset),
        ).double(),
        3,
    )
    x = spikes(50, 4, (12,))
    with torch.no_grad():
        out = snn.run(model, x).numpy()
    result = ours(model, x)
    np.testing.assert_array_equal(result["float"], out)
    assert out.sum() > 0
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
    assert type(graph.nodes["1"]).__name__ == "LIF"
    np.testing.assert_allclose(graph.nodes["1"].tau, 1e-3 / 0.5)
    assert load_nir(graph).nodes["1"].in_shape == (4,)
    out = snn.run(model, torch.ones(5, 2, 3, requires_grad=True))
    out.sum().backward()
    assert model[0].weight.grad is not None and model[1].beta.grad is not None


def test_bad_parameters():
    with pytest.raises(ValueError, match="beta must be in"):
        snn.LIF(3, beta=1.0)
    with pytest.raises(ValueError, match="reset must be"):
        snn.IF(3, reset="none")
