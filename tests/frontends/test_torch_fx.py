"""Real model code traced with torch.fx (frontends/torch_fx.py), against its own forward pass.

The models are written the way SpikingJelly-style speech models are (multi-step ``[T, B, C]``
tensors, ``layer.Linear``/``BatchNorm1d`` with ``step_mode="m"``, ``LIFNode(decay_input=False)``,
residual ``x + f(x)``, a ``Transpose`` module around a depthwise ``Conv1d`` over time). Each
is run by SpikingJelly and torch themselves and compared with our float simulator at the
latency ``trace`` returns: ``ours[t + latency] == source[t]`` (an integrator read-out: the
running sum of the source's read-out). The integer path is compared by agreement.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.toolchain("spikingjelly")

torch = pytest.importorskip("torch")

from snn_deploy import api  # noqa: E402
from snn_deploy import nn as snn  # noqa: E402
from snn_deploy.errors import UnsupportedOpError  # noqa: E402
from snn_deploy.frontends.torch import load  # noqa: E402
from snn_deploy.frontends.torch_fx import trace  # noqa: E402
from tests.frontends.test_torch import ours, spikes  # noqa: E402

DT = 1e-4


def _lif(**kwargs):
    from spikingjelly.activation_based import neuron

    return neuron.LIFNode(tau=2.0, decay_input=False, step_mode="m", **kwargs)


class Transpose(torch.nn.Module):
    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


def _randomise(model, scale: float = 3.0) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear | torch.nn.Conv1d):
                m.weight.mul_(scale)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def _source(model, x):
    from spikingjelly.activation_based import functional

    functional.reset_net(model)
    snn.reset_state(model)
    with torch.no_grad():
        return model(x).numpy()


def _aligned(model, x, *, integrator: bool, exact_steps: int | None = None):
    """Assert ours (float) at t + latency == the source at t; return the integer run's lowest
    spike agreement with the float run over the populations."""
    latency = trace(model, dt=DT).latency
    source = _source(model, x)
    if integrator:
        source = np.cumsum(source, axis=0)
    result = ours(model, x)
    n = (exact_steps or x.shape[0]) - latency
    got = result["float"][latency : latency + n]
    if integrator:  # BatchNorm folded into the weights changes the float rounding (1e-15)
        np.testing.assert_allclose(got, source[:n], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(got[-1].argmax(-1), source[n - 1].argmax(-1))
    else:
        np.testing.assert_array_equal(got, source[:n])
        assert source[:n].sum() > 0, "the test network must spike"
    pops = result["agreement"]["populations"].values()
    return latency, min(p["spike_agreement"] for p in pops)


class Residual(torch.nn.Module):
    """Embedding, a residual MLP block with BatchNorm before and after the add, a read-out."""

    def __init__(self, d_in: int = 10, d: int = 16, classes: int = 4) -> None:
        from spikingjelly.activation_based import layer

        super().__init__()
        self.emb = layer.Linear(d_in, d, step_mode="m")
        self.emb_lif = _lif()
        self.fc1 = layer.Linear(d, d, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm1d(d, step_mode="m")
        self.lif1 = _lif()
        self.drop = layer.Dropout(0.1, step_mode="m")
        self.fc2 = layer.Linear(d, d, step_mode="m")
        self.lif2 = _lif()
        self.bn_out = layer.BatchNorm1d(d, step_mode="m")
        self.head = layer.Linear(d, classes, step_mode="m")

    def forward(self, x):
        x = self.emb_lif(self.emb(x))
        x = x + self.lif2(self.fc2(self.drop(self.lif1(self.bn1(self.fc1(x))))))
        return self.head(self.bn_out(x))  # BatchNorm after the add, then a read-out


def test_residual_block_batchnorm_and_readout_exact():
    torch.manual_seed(0)
    model = Residual().double().eval()
    _randomise(model)
    latency, agreement = _aligned(model, spikes(40, 3, (10,)), integrator=True)
    assert latency == 4  # emb_lif 1, lif1 2, lif2 3, read-out 4; the skip waits 2 steps
    assert agreement > 0.9


class ConformerConv(torch.nn.Module):
    """Pointwise conv + BN + LIF, depthwise Conv1d over time (k, "same") + BN + LIF, residual."""

    def __init__(self, d: int = 8, k: int = 31, padding: int | str | None = None) -> None:
        super().__init__()
        self.to_bct, self.to_tbc = Transpose(1, 2, 0), Transpose(2, 0, 1)
        self.pw = torch.nn.Conv1d(d, d, 1)
        self.bn1 = torch.nn.BatchNorm1d(d)
        self.lif1 = _lif()
        self.dw = torch.nn.Conv1d(
            d, d, k, groups=d, padding=(k - 1) // 2 if padding is None else padding, bias=False
        )
        self.bn2 = torch.nn.BatchNorm1d(d)
        self.lif2 = _lif()

    def forward(self, x):
        y = self.lif1(self.to_tbc(self.bn1(self.pw(self.to_bct(x)))))
        y = self.lif2(self.to_tbc(self.bn2(self.dw(self.to_bct(y)))))
        return x + y


class Local(torch.nn.Module):
    def __init__(self, k: int = 31, padding: int | str | None = None) -> None:
        from spikingjelly.activation_based import layer

        super().__init__()
        self.emb = layer.Linear(6, 8, step_mode="m")
        self.lif = _lif()
        self.conv = ConformerConv(8, k, padding)
        self.out = _lif()

    def forward(self, x):
        return self.out(self.conv(self.lif(self.emb(x))))


@pytest.mark.parametrize("padding", [None, "same"])
def test_temporal_depthwise_conv_k31_exact_with_added_latency(padding):
    """Tap k is delayed 30 - k steps: 'same' padding adds (k-1)/2 = 15 steps of latency. The
    source pads the clip's end with zeros where we see what follows it, so the last 15 steps
    are not compared."""
    torch.manual_seed(1)
    model = Local(31, padding).double().eval()
    _randomise(model, 2.0)
    x = spikes(60, 2, (6,), p=0.5)
    latency, _ = _aligned(model, x, integrator=False, exact_steps=60 - 15)
    assert latency == 1 + 1 + 16 + 1  # lif, lif1, lif2 (+15 look-ahead), out; skip delayed
    graph = load(model, dt=DT)
    assert sum(name.startswith("conv_dw_tap") for name in graph.nodes) == 31


def test_kernel_beyond_delay_limit_refused_by_name():
    from snn_deploy.errors import DesignRuleError

    model = Local(201).double().eval()  # taps delayed up to 200 steps; Loihi 2 holds 63
    graph = load(model, dt=DT)
    with pytest.raises(DesignRuleError, match=r"max-delay\] conv_lif1_delay200\+conv_dw_tap0"):
        api.lower_and_quantize(graph, api.load_target("loihi2"), dt=DT)


class SpikeSCRStyle(torch.nn.Module):
    """Embedding, conformer local branch, gated unit, causal spiking self-attention and a
    residual MLP, each added to the stream, then a Linear read-out (no neuron)."""

    def __init__(self, d: int = 8, steps: int = 50) -> None:
        from spikingjelly.activation_based import layer

        super().__init__()
        self.emb = layer.Linear(6, d, bias=False, step_mode="m")
        self.emb_bn = layer.BatchNorm1d(d, step_mode="m")
        self.emb_lif = _lif()
        self.local = ConformerConv(d, 31)
        self.gate = layer.MultiStepContainer(snn.SpikingGate(d))
        self.attn = layer.MultiStepContainer(snn.SpikingSelfAttention(d, 2, steps))
        self.mlp = layer.SeqToANNContainer(torch.nn.Linear(d, d), torch.nn.BatchNorm1d(d))
        self.mlp_lif = _lif()
        self.head = layer.Linear(d, 4, step_mode="m")

    def forward(self, x):
        x = self.emb_lif(self.emb_bn(self.emb(x)))
        x = self.local(x)
        x = x + self.gate(x)
        x = x + self.attn(x)
        x = x + self.mlp_lif(self.mlp(x))
        return self.head(x)


def test_spikescr_style_model_whole_on_sim():
    """Traces, compiles for sim with no host part, and equals its PyTorch forward (float)."""
    torch.manual_seed(3)
    model = SpikeSCRStyle().double().eval()
    _randomise(model, 2.0)
    with torch.no_grad():  # our step-wise blocks sit at lag > 0: their biases must be 0
        for block in (model.gate[0], model.attn[0]):
            for m in block.modules():
                if isinstance(m, torch.nn.Linear) and m.bias is not None:
                    m.bias.zero_()
    x = spikes(50, 2, (6,), p=0.5)
    latency, agreement = _aligned(model, x, integrator=True, exact_steps=50 - 15)
    assert latency == 1 + 1 + 16 + 1 + 1  # emb, lif1, lif2 (+15), mlp_lif, read-out
    assert agreement > 0.8
    graph = load(model, dt=DT)
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert {"Attention", "Gate", "I", "Delay"} <= kinds
    api.lower_and_quantize(graph, api.load_target("sim"), dt=DT)


def test_spikingjelly_fires_on_ties_in_float():
    """``v == θ`` fires in SpikingJelly (``v - θ >= 0``); weights 0.5 make v land on θ = 1."""
    from spikingjelly.activation_based import layer, neuron

    class Tie(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = layer.Linear(4, 3, bias=False, step_mode="m")
            self.if1 = neuron.IFNode(step_mode="m")
            self.plif = neuron.ParametricLIFNode(init_tau=2.0, step_mode="m")

        def forward(self, x):
            y = self.if1(self.fc(x))
            return self.plif(y + y)  # a residual of the same spikes: v = 1.0 when tau = 2

    model = Tie().double().eval()
    with torch.no_grad():
        model.fc.weight.fill_(0.5)
    x = spikes(30, 2, (4,), p=0.4)
    _aligned(model, x, integrator=False)
    source = _source(model.if1, model.fc(x).detach())
    assert np.any(source), "ties must occur"


def test_unsupported_call_site_named_in_one_line():
    from spikingjelly.activation_based import layer

    class Sigmoid(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = layer.Linear(4, 3, step_mode="m")
            self.lif = _lif()

        def forward(self, x):
            return self.lif(torch.sigmoid(self.fc(x)))

    with pytest.raises(UnsupportedOpError, match=r"call site 'sigmoid' .*test_torch_fx.py:\d+"):
        load(Sigmoid(), dt=DT)


def test_activation_product_points_to_the_gate_layer():
    from spikingjelly.activation_based import layer

    class Product(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = layer.Linear(4, 3, step_mode="m")
            self.lif = _lif()

        def forward(self, x):
            s = self.lif(self.fc(x))
            return self.lif(s * s)

    with pytest.raises(UnsupportedOpError, match="SpikingGate"):
        load(Product(), dt=DT)


def test_pickled_module_traced_with_trust_pickle(tmp_path):
    torch.save(Residual().eval(), tmp_path / "model.pt")
    with pytest.warns(UserWarning, match="trust_pickle"):
        graph = api.load(tmp_path / "model.pt", trust_pickle=True)
    assert "bias_onset" in graph.nodes and type(graph.nodes["readout"]).__name__ == "I"
