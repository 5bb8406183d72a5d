"""Sinabs models (IAF, LIF with SingleSpike) through our torch frontend.

Sinabs's exporter writes ``LIF.tau`` in steps for an exponential decay ``exp(-1/tau)``; ours
writes the forward-Euler ``tau = dt/(1 - exp(-1/tau))`` with ``r = 1`` when ``norm_input``.
Sinabs fires at ``v >= θ`` (we: ``v > θ``), equal for random float weights. Sinabs runs in
float32 (its spike function returns float32); compared: framework output at t against our
float64 simulator at t + 2 (two projections, no biases).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.toolchain("sinabs")

torch = pytest.importorskip("torch")

from snn_deploy.errors import UnsupportedOpError  # noqa: E402
from tests.frontends.test_torch import compare, ours, spikes  # noqa: E402


def _make(kind: str):
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    return {
        "IAF": lambda: sl.IAF(spike_fn=SingleSpike),
        "IAF-zero": lambda: sl.IAF(spike_fn=SingleSpike, reset_fn=MembraneReset()),
        "LIF": lambda: sl.LIF(tau_mem=5.0, spike_fn=SingleSpike),
    }[kind]()


@pytest.mark.parametrize("kind", ["IAF", "IAF-zero", "LIF"])
def test_spike_for_spike(kind):
    torch.manual_seed(0)
    gain = 15.0 if kind == "LIF" else 3.0
    l1, l2 = torch.nn.Linear(10, 16, bias=False), torch.nn.Linear(16, 4, bias=False)
    with torch.no_grad():
        l1.weight.mul_(gain)
        l2.weight.mul_(gain)
    model = torch.nn.Sequential(l1, _make(kind), l2, _make(kind))
    x = spikes(60, 4, (10,))
    with torch.no_grad():
        fw = model(x.transpose(0, 1).float()).transpose(0, 1).numpy()
    assert compare(fw, ours(model, x), layers=2) > 0.95


def test_multispike_is_rejected_with_a_reason():
    import sinabs.layers as sl

    with pytest.raises(UnsupportedOpError, match="MultiSpike emits several spikes"):
        ours(torch.nn.Sequential(torch.nn.Linear(2, 2), sl.IAF()), spikes(3, 1, (2,)))
