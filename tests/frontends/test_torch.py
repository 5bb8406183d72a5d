"""PyTorch frontend: file formats, safe loading, converter table, BatchNorm folding.

Also the helpers the per-framework agreement tests share (``ours``, ``compare``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch

from snn_deploy import api
from snn_deploy import nn as snn
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import InputFileError, UnsupportedOpError
from snn_deploy.frontends.torch import load, supported, to_nir
from snn_deploy.ir import nodes as n

DT = 1e-4


def spikes(steps: int, batch: int, shape: tuple[int, ...], p: float = 0.3, seed: int = 0) -> Any:
    """Random binary input ``[time, batch, *shape]`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((steps, batch, *shape), generator=g) < p).double()


def ours(
    model: Any, x: Any, *, input_shape: tuple[int, ...] | None = None, dt: float = DT
) -> dict[str, Any]:
    """Load ``model`` with our frontend; run the float and quantized sim on ``x[T,B,...]``.

    Returns the float and quantized output spikes as ``[T, B, *shape]`` and the agreement.
    """
    graph = load(model, input_shape=input_shape, dt=dt) if not isinstance(model, Graph) else model
    float_net, net = api.lower_and_quantize(graph, api.load_target("sim"), dt=dt)
    data = {"input": np.swapaxes(np.asarray(x), 0, 1)}
    f = simulate(float_net, data, fixed=False)
    q = simulate(net, data, fixed=True)
    out_shape = graph.nodes["output"].in_shape
    as_tb = lambda a: np.swapaxes(a, 0, 1).reshape((x.shape[0], x.shape[1], *out_shape))  # noqa: E731
    return {
        "float": as_tb(f.outputs["output"]),
        "quant": as_tb(q.outputs["output"]),
        "agreement": api.agreement(f, q, net),
        "graph": graph,
    }


def shift(framework: Any, layers: int) -> tuple[Any, Any]:
    """Align a delay-free framework's output with ours: ours[t + L] answers framework[t].

    Our simulator delivers every projection one step later (docs/SEMANTICS.md §1), so in an
    L-layer chain the output is L steps later; the last L framework steps have no counterpart.
    """
    fw = np.asarray(framework)
    return fw[: fw.shape[0] - layers], slice(layers, None)


def compare(framework: Any, result: dict[str, Any], layers: int) -> float:
    """Assert spike-for-spike equality after the per-layer shift; return the quantized match."""
    fw, tail = shift(framework, layers)
    np.testing.assert_array_equal(result["float"][tail], fw)
    assert fw.sum() > 0, "the test network must spike"
    return float(np.mean(result["quant"][tail] == fw))


def count_agreement(framework: Any, result: dict[str, Any], layers: int) -> float:
    """Fraction of (sample, neuron) spike counts that are equal after the shift."""
    fw, tail = shift(framework, layers)
    return float(np.mean(result["float"][tail].sum(0) == fw.sum(0)))


from snn_deploy.ir.graph import Graph  # noqa: E402

# ---------------------------------------------------------------- formats


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(snn.Linear(6, 8), snn.LIF(8, beta=0.8), snn.Linear(8, 3), snn.IF(3))


ARCH = [
    ["snn_deploy.nn.Linear", {"in_features": 6, "out_features": 8}],
    ["snn_deploy.nn.LIF", {"shape": 8, "beta": 0.8}],
    ["snn_deploy.nn.Linear", {"in_features": 8, "out_features": 3}],
    ["snn_deploy.nn.IF", {"shape": 3}],
]


def test_checkpoint_with_architecture_and_state_dict(tmp_path: Path):
    model = _model()
    torch.save({"architecture": ARCH, "state_dict": model.state_dict()}, tmp_path / "m.pt")
    assert load(tmp_path / "m.pt") == load(model)


def test_checkpoint_with_nir_bytes(tmp_path: Path):
    nir.write(tmp_path / "m.nir", to_nir(_model()))
    torch.save({"architecture": (tmp_path / "m.nir").read_bytes()}, tmp_path / "m.pt")
    assert load(tmp_path / "m.pt") == load(_model())


def test_a_checkpoint_dt_is_the_default_compile_dt(tmp_path: Path):
    # NIR bytes written at dt = 10 ms: compiled with no dt, the per-step decays are the model's
    # (beta 0.8: the IR keeps the fraction lost, 0.2); at the old fixed default (1e-4 s) it
    # would lose 0.002 per step. An explicit dt wins.
    from snn_deploy import api

    nir.write(tmp_path / "m.nir", to_nir(_model(), dt=0.01))
    torch.save({"architecture": (tmp_path / "m.nir").read_bytes(), "dt": 0.01}, tmp_path / "m.pt")
    torch.save({"architecture": (tmp_path / "m.nir").read_bytes()}, tmp_path / "bare.pt")
    assert api.load(tmp_path / "m.pt").dt == 0.01
    assert api.load(tmp_path / "bare.pt").dt is api.load(tmp_path / "m.nir").dt is None
    assert api.load(_model()).dt == DT  # a live module is converted at the compile dt
    float_net, _ = api.lower_and_quantize(api.load(tmp_path / "m.pt"), api.load_target("sim"))
    assert float_net.dt == 0.01  # load, then lower_and_quantize: the graph keeps the step
    result = api.compile(tmp_path / "m.pt", "sim")
    assert result.report["dt"] == 0.01
    betas = {float(np.asarray(p.beta).flat[0]) for p in result.float_net.populations.values()}
    assert 0.2 in {round(b, 6) for b in betas}
    assert api.compile(tmp_path / "m.pt", "sim", dt=DT).report["dt"] == DT


def test_pickled_module_needs_trust(tmp_path: Path):
    torch.save(_model(), tmp_path / "m.pt")
    with pytest.raises(InputFileError, match="--trust-pickle"):
        load(tmp_path / "m.pt")
    with pytest.warns(UserWarning, match="runs any code"):
        g = load(tmp_path / "m.pt", trust_pickle=True)
    assert g == load(_model())


def test_torchscript_is_refused(tmp_path: Path):
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2))), tmp_path / "s.pt")
    with pytest.raises(InputFileError, match="TorchScript"):
        load(tmp_path / "s.pt")


def test_unknown_class_in_architecture_is_named(tmp_path: Path):
    torch.save({"architecture": [["os.system", {}]], "state_dict": {}}, tmp_path / "m.pt")
    with pytest.raises(
        UnsupportedOpError, match=r"'os.system' is not supported; supported: .*snntorch"
    ):
        load(tmp_path / "m.pt")


def test_not_a_torch_file(tmp_path: Path):
    (tmp_path / "m.pt").write_text("hello")
    with pytest.raises(InputFileError, match="not a readable PyTorch file"):
        load(tmp_path / "m.pt")


def test_unsupported_module_lists_supported():
    with pytest.raises(
        UnsupportedOpError, match=r"module ReLU .* no converter.*supported: .*torch.nn.Linear"
    ):
        load(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()))
    assert "snn_deploy.nn.CubaLIF" in supported()


def test_two_delayed_synapses_in_a_row_are_rejected():
    with pytest.raises(UnsupportedOpError, match="two delayed"):
        load(torch.nn.Sequential(snn.Linear(2, 2), snn.Linear(2, 2), snn.IF(2)))


def test_batchnorm_is_folded_into_the_conv():
    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    model = torch.nn.Sequential(conv, bn, snn.IF((4, 5, 5))).eval()
    g = load(model, input_shape=(2, 5, 5))
    assert [type(v).__name__ for v in g.nodes.values()] == ["Input", "Conv2d", "IF", "Output"]
    x = torch.randn(3, 2, 5, 5)
    folded = g.nodes["conv2d1"]
    ref = torch.nn.functional.conv2d(
        x,
        torch.tensor(np.array(folded.weight)).float(),
        torch.tensor(np.array(folded.bias)).float(),
        padding=1,
    )
    torch.testing.assert_close(ref.float(), bn(conv(x)).detach(), rtol=1e-5, atol=1e-5)
    assert isinstance(folded, n.Conv2d)


def test_nodes_are_named_after_the_modules():
    """Issue 21 item 3: the model's own names, else ``<class><layer>``; never an index."""
    from collections import OrderedDict

    plain = torch.nn.Sequential(
        torch.nn.Linear(3, 4), snn.LIF(4, beta=0.5), torch.nn.Linear(4, 2), snn.IF(2)
    )
    assert list(to_nir(plain).nodes) == ["input", "linear1", "lif1", "linear2", "if2", "output"]
    block = torch.nn.Sequential(OrderedDict(fc=torch.nn.Linear(4, 2), lif=snn.IF(2)))
    named = torch.nn.Sequential(
        OrderedDict(fc1=torch.nn.Linear(3, 4), lif1=snn.LIF(4, beta=0.5), block=block)
    )
    assert list(to_nir(named).nodes)[1:-1] == ["fc1", "lif1", "block_fc", "block_lif"]
    clash = torch.nn.Sequential(
        OrderedDict(
            [
                ("0", torch.nn.Linear(3, 3)),
                ("linear1", torch.nn.Linear(3, 3)),
                ("output", snn.IF(3)),
            ]
        )
    )
    assert list(to_nir(clash).nodes)[1:-1] == ["linear1", "linear1_2", "output_2"]
