"""examples/kws/transformer.py (issue 24): the speech transformers, trained with the deployed
dynamics, run exactly as their NIR graph; the shipped ones compile whole for every target.

The sequence forms used for training are checked against the step-wise ``snn_deploy.nn`` layers
(the operators' reference), and the exported graph against the module, value for value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.kws.train import TRANSFORMERS, classify
from examples.kws.transformer import KwsTransformer, attention_sequence, gate_sequence
from snn_deploy import api
from snn_deploy import nn as snn
from snn_deploy.target.load import load_target
from tests.examples.test_kws import MODELS, _readme_counts

SHIPPED = {
    "kws_spikescr_t100.pt": "kws_test_inputs.npz",
    "kws_spikescr_t40.pt": "kws_test_inputs_t40.npz",
    "kws_iml_t100.pt": "kws_test_inputs.npz",
    "kws_iml_t40.pt": "kws_test_inputs_t40.npz",
    "kws_spikescr_k15_t40.pt": "kws_test_inputs_t40.npz",
}


def _spikes(steps: int, batch: int, n: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=g, dtype=torch.float64) < p).double()


def _scaled(module: torch.nn.Module, factor: float) -> torch.nn.Module:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(factor)
    return module


@pytest.mark.parametrize(
    ("levels", "decay"), [(1, None), (3, (1, 2)), (2, (0, 3))], ids=["plain", "decayed", "mixed"]
)
def test_attention_sequence_equals_the_step_layer(levels, decay) -> None:
    torch.manual_seed(0)
    m = _scaled(snn.SpikingSelfAttention(8, 2, 30, levels=levels, decay=decay), 3.0).double()
    x = _spikes(30, 3, 8)
    with torch.no_grad():
        step = snn.run(m, x)
        sequence = attention_sequence(m, x)
    assert step.sum() > 0
    np.testing.assert_array_equal(sequence.numpy(), step.numpy())


@pytest.mark.parametrize("levels", [1, 3])
def test_gate_sequence_equals_the_step_layer(levels) -> None:
    torch.manual_seed(1)
    m = _scaled(snn.SpikingGate(8, levels=levels), 3.0).double()
    x = _spikes(30, 3, 8)
    with torch.no_grad():
        step = snn.run(m, x)
        sequence = gate_sequence(m, x)
    assert step.sum() > 0
    np.testing.assert_array_equal(sequence.numpy(), step.numpy())


@pytest.mark.filterwarnings("ignore:the NIR graph looks like a snntorch export")  # in-memory NIR
@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_graph_runs_exactly_like_the_module(name) -> None:
    """Random weights and BatchNorm statistics: our float simulator's read-out, averaged over
    time, equals the module's logits bit for bit."""
    torch.manual_seed(2)
    options = {**TRANSFORMERS[name], "dim": 16, "heads": 2, "steps": 30, "kernel": 7}
    if options.get("decay"):
        options["decay"] = (1, 3)
    model = KwsTransformer(**options).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(1.5, 3.0)
                m.bias.uniform_(-0.2, 0.4)
    model.eval()
    x = _spikes(30, 3, 64)
    with torch.no_grad():
        logits = model(x).numpy()
    float_net, _ = api.lower_and_quantize(api.load(model.to_nir()), load_target("sim"))
    trace = api.simulate(float_net, {"input": x.numpy().transpose(1, 0, 2)}, fixed=False)
    (out,) = trace.outputs.values()
    np.testing.assert_array_equal(np.asarray(out).mean(axis=1), logits)
    spiking = [p for p, s in trace.populations.items() if np.asarray(s).any()]
    assert len(spiking) >= 5, spiking  # every block is active, not a silent network


def _slice(model: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(MODELS / SHIPPED[model]) as z:
        return z["input"].astype(np.float64), z["labels"]


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_shipped_transformer_quantized_accuracy(model: str) -> None:
    """Loads with no flags and no warning, compiles whole (no host part), and
    scores on the shipped slice the count models/README.md states."""
    x, labels = _slice(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = api.load(MODELS / model)
    _, net = api.lower_and_quantize(graph, load_target("sim"))
    assert net.products, "the attention runs on the target"
    (out,) = api.simulate(net, {"input": x}).outputs.values()
    correct = int(np.sum(classify(np.asarray(out).sum(axis=1)) == labels))
    assert (correct, len(labels)) == _readme_counts()[model]


@pytest.mark.toolchain("lava")
@pytest.mark.parametrize("model", ["kws_spikescr_t40.pt", "kws_iml_t40.pt"])
def test_shipped_transformer_on_loihi_sim_equals_sim(model: str, tmp_path: Path) -> None:
    x, _ = _slice(model)
    inputs = {"input": x[:2]}
    assert inputs["input"].max() > 1  # graded input: spike counts of 25 ms bins
    result = api.compile(str(MODELS / model), "loihi-sim", inputs=inputs, out_dir=tmp_path)
    ranges = result.report["quantization"]["inputs"]
    assert ranges == {"input": {"max_abs": 3.0, "source": "declared (snn_deploy.input_max)"}}
    sim = api.simulate(result.net, inputs, target="sim")
    lava = api.simulate(result.net, inputs, target="loihi-sim")
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(lava.outputs[k]), np.asarray(sim.outputs[k]))


def test_spikescr_too_big_for_the_board_is_refused_by_rule() -> None:
    from snn_deploy.errors import DesignRuleError

    with pytest.raises(DesignRuleError, match=r"\[fpga-bram-blocks\].* is 10\d, limit 100"):
        api.compile(str(MODELS / "kws_spikescr_t40.pt"), "fpga-artix7-35t")


@pytest.mark.toolchain("iverilog")
def test_fpga_variant_rtl_equals_sim() -> None:
    """The 15-tap variant fits the board; Icarus runs its RTL on a clip's first 12 steps (graded
    input) and every output value equals the simulator's."""
    with np.load(MODELS / "kws_test_inputs_t40.npz") as z:
        x = {"input": z["input"][2:3, :12].astype(np.float64)}
    assert x["input"].max() > 1  # graded input (the first clip with a count > 1 this early)
    _, net = api.lower_and_quantize(
        api.load(MODELS / "kws_spikescr_k15_t40.pt"), load_target("fpga-artix7-35t")
    )
    assert {type(u).__name__ for u in net.products.values()} == {"Attention", "Gate"}
    rtl = api.simulate(net, x, target="fpga-artix7-35t")
    sim = api.simulate(net, x, target="sim")
    assert any(np.asarray(s).any() for s in sim.populations.values())
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(rtl.outputs[k]), np.asarray(sim.outputs[k]))
