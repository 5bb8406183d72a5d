"""SpikingJelly models (LIFNode, IFNode, Linear/Conv/BatchNorm) through our torch frontend.

SpikingJelly's exporter writes ``IF.r = 1/dt``; ours is ``r = 1`` (one step adds ``R·x``,
docs/SEMANTICS.md §1). SpikingJelly fires at ``v >= θ``, read as our ``>=`` threshold compare
(docs/SEMANTICS.md §1.2), exact at ties in floats and integers. Compared: the
framework's output at t against our float simulator's at t + L (L projections; no biases).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.toolchain("spikingjelly")

torch = pytest.importorskip("torch")

from tests.frontends.test_torch import compare, ours, spikes  # noqa: E402


def _neuron(kind: str):
    from spikingjelly.activation_based import neuron

    return {
        "LIF": lambda: neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="m"),
        "LIF-soft": lambda: neuron.LIFNode(tau=3.0, v_reset=None, decay_input=False, step_mode="m"),
        "IF": lambda: neuron.IFNode(step_mode="m"),
    }[kind]()


@pytest.mark.parametrize("kind", ["LIF", "LIF-soft", "IF"])
def test_linear_models_spike_for_spike(kind):
    from spikingjelly.activation_based import functional, layer

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        layer.Linear(10, 16, bias=False, step_mode="m"),
        _neuron(kind),
        layer.Linear(16, 4, bias=False, step_mode="m"),
        _neuron(kind),
    ).double()
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[2].weight.mul_(3)
    x = spikes(60, 4, (10,))
    functional.reset_net(model)
    with torch.no_grad():
        fw = model(x).numpy()
    assert compare(fw, ours(model, x), layers=2) > 0.95


def test_conv_batchnorm_model_batchnorm_folded():
    """Conv → BatchNorm → IF → AvgPool → Flatten → Linear → LIF; BN folded into the conv.

    The conv has no bias but the BatchNorm shift is a constant input: with IF and LIF neurons
    (α = 1) such a bias acts from step 0 in both, one step before our delayed input: the
    framework run on the input with one zero step prepended equals our first layer exactly (no
    shift). The two-layer output is compared by spike count (±10 %).
    """
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(2)
    conv = layer.Conv2d(2, 4, 3, padding=1, bias=False, step_mode="m")
    bn = layer.BatchNorm2d(4, step_mode="m")
    with torch.no_grad():
        conv.weight.mul_(2)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.1, 0.1)
    front = torch.nn.Sequential(conv, bn, neuron.IFNode(step_mode="m")).double().eval()
    x = spikes(40, 3, (2, 6, 6), p=0.4)
    functional.reset_net(front)
    with torch.no_grad():
        fw = front(torch.cat([torch.zeros_like(x[:1]), x[:-1]])).numpy()
    compare(fw, ours(front, x, input_shape=(2, 6, 6)), layers=0)

    head = (
        torch.nn.Sequential(
            front,
            layer.AvgPool2d(2, step_mode="m"),
            layer.Flatten(step_mode="m"),
            layer.Linear(36, 5, bias=False, step_mode="m"),
            neuron.LIFNode(tau=2.0, v_threshold=0.3, step_mode="m"),
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        head[3].weight.mul_(3)
        functional.reset_net(head)
        fw = head(x).numpy()
    result = ours(head, x, input_shape=(2, 6, 6))
    assert result["graph"].nodes["conv2d1"].__class__.__name__ == "Conv2d"
    assert abs(float(fw.sum()) - float(result["float"].sum())) <= 0.1 * fw.sum() + 2


def tie_model(v_reset: float | None) -> torch.nn.Module:
    """10 -> 16 -> 4 SpikingJelly IF neurons (θ = 1) with weights in quarters, so voltages land
    exactly on θ: a model whose ``v >= θ`` ties matter (also used by the RTL test)."""
    from spikingjelly.activation_based import layer, neuron

    g = torch.Generator().manual_seed(1)
    model = torch.nn.Sequential(
        layer.Linear(10, 16, bias=False, step_mode="m"),
        neuron.IFNode(v_reset=v_reset, step_mode="m"),
        layer.Linear(16, 4, bias=False, step_mode="m"),
        neuron.IFNode(v_reset=v_reset, step_mode="m"),
    ).double()
    with torch.no_grad():
        for lin in (model[0], model[2]):
            lin.weight.copy_(torch.randint(-2, 4, lin.weight.shape, generator=g) / 4.0)
    return model


def with_compare(net, compare):
    """``net`` with every population's threshold compare set to ``compare``."""
    import dataclasses

    return net.replace(
        populations={
            k: dataclasses.replace(p, threshold_compare=compare) for k, p in net.populations.items()
        }
    )


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_ties_at_the_threshold_are_exact_in_integers(v_reset):
    """Weights in quarters and θ = 1 land voltages exactly on θ: SpikingJelly fires there
    (``v >= θ``), so must we, in the float run and in the integer run (``v >= vth << 6``),
    where the quantization is exact; a ``>`` test would miss these ties."""
    import numpy as np
    from spikingjelly.activation_based import functional

    from snn_deploy import api
    from snn_deploy.backends.sim.run import simulate
    from snn_deploy.frontends.torch import load
    from snn_deploy.ir.types import ThresholdCompare

    model = tie_model(v_reset)
    x = spikes(40, 4, (10,))
    functional.reset_net(model)
    with torch.no_grad():
        fw = model(x).numpy()
    result = ours(model, x)
    assert compare(fw, result, layers=2) == 1.0  # the integer run too, spike for spike
    graph = load(model, input_shape=(10,), dt=1e-4)
    _, net = api.lower_and_quantize(graph, api.load_target("sim"), dt=1e-4)
    strict = with_compare(net, ThresholdCompare.GT)
    data = {"input": np.swapaxes(x.numpy(), 0, 1)}
    assert not np.array_equal(
        simulate(strict, data).outputs["output"], simulate(net, data).outputs["output"]
    ), "the test must have ties"
