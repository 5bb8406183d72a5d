"""The Python API (issue 21 item 4): ``import snn_deploy as sd``, live models, ``sd.save``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import snn_deploy as sd
from snn_deploy.errors import UnsupportedOpError, UsageError
from snn_deploy.ir import nodes as n
from snn_deploy.ir import serialize
from snn_deploy.ir.types import ResetMode

pytestmark = pytest.mark.toolchain("snntorch")

torch = pytest.importorskip("torch")
snntorch = pytest.importorskip("snntorch")


def _model(reset: str = "zero") -> torch.nn.Sequential:
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(6, 8), torch.nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        fc1.weight.mul_(4)
        fc2.weight.mul_(4)
    kw = {"reset_mechanism": reset, "reset_delay": False, "init_hidden": True}
    return torch.nn.Sequential(
        fc1, snntorch.Leaky(beta=0.9, **kw), fc2, snntorch.Synaptic(alpha=0.7, beta=0.8, **kw)
    )


def _inputs() -> dict[str, np.ndarray]:
    return {"input": (np.random.default_rng(1).random((3, 20, 6)) < 0.3).astype(np.float64)}


def test_public_names_resolve() -> None:
    for name in sd.__all__:
        assert getattr(sd, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sd.nope  # noqa: B018


def test_compile_live_module_equals_its_saved_checkpoint(tmp_path: Path) -> None:
    model = _model()
    live = sd.compile(model, "sim", inputs=_inputs())
    path = sd.save(model, tmp_path / "m.pt")
    saved = sd.compile(path, "sim", inputs=_inputs())
    assert serialize.to_bytes(live.net) == serialize.to_bytes(saved.net)
    assert live.report["agreement"] == saved.report["agreement"]
    assert live.report["model"] == "Sequential"
    assert live.report["provenance"]["model"]["path"] == "<live model>"


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_save_keeps_the_reset_mechanism(tmp_path: Path, reset: str) -> None:
    graph = sd.load(sd.save(_model(reset), tmp_path / "m.pt"))
    resets = {v.reset for v in graph.nodes.values() if isinstance(v, n.NEURONS)}
    assert resets == {ResetMode(reset)}


def test_save_keeps_module_names_dt_and_shape(tmp_path: Path) -> None:
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Sequential(*[torch.nn.Linear(12, 4), snntorch.Leaky(beta=0.5, reset_delay=False)]),
    )
    named = torch.nn.Sequential()
    named.add_module("flat", model[0])
    named.add_module("fc1", model[1][0])
    named.add_module("lif1", model[1][1])
    ckpt = torch.load(
        sd.save(named, tmp_path / "m.pt", dt=1e-3, input_shape=(3, 4)), weights_only=True
    )
    assert ckpt["names"] == ["flat", "fc1", "lif1"]
    assert (ckpt["dt"], ckpt["input_shape"]) == (1e-3, [3, 4])
    assert ckpt["architecture"][2][1]["beta"] == 0.5  # float32 0.5 written as its shortest decimal
    graph = sd.load(tmp_path / "m.pt")
    assert {"fc1", "lif1"} <= set(graph.nodes)


def test_save_refuses_model_code_and_other_suffixes(tmp_path: Path) -> None:
    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(UnsupportedOpError, match="Sequential"):
        sd.save(Net(), tmp_path / "m.pt")
    with pytest.raises(UsageError, match=r"\.pt or \.pth"):
        sd.save(_model(), tmp_path / "m.nir")
    with pytest.raises(UsageError, match="got int"):
        sd.load(3)


def test_compile_a_nir_graph_and_simulate_a_result() -> None:
    from snn_deploy.frontends.torch import to_nir

    with pytest.warns(UserWarning, match="looks like a snntorch export"):  # at dt = 1e-4, yes
        result = sd.compile(to_nir(_model()), "sim")
    trace = sd.simulate(result, _inputs())
    assert trace.outputs["output"].shape == (3, 20, 3)


def test_compiling_a_tiny_net_for_every_target_family_warns_nothing(tmp_path: Path) -> None:
    """No converter advice, no exporter guess, no matplotlib warning (issue 21 item 2)."""
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
            # Python's default filters keep these off a terminal (Norse's import makes torch
            # deprecate torch.jit.script; networkx, under Lava, misses pandas)
            warnings.filterwarnings("ignore", category=hidden)
        for target in ("sim", "loihi2", "fpga-ice40up5k"):
            sd.compile(model, target, inputs=_inputs(), out_dir=tmp_path / target)
            html = (tmp_path / target / "report.html").read_text()
            assert "<h2>Placement</h2>" in html
    assert "not modelled" in (tmp_path / "fpga-ice40up5k" / "report.html").read_text()


def test_save_refuses_what_a_safe_file_cannot_hold(tmp_path: Path) -> None:
    """Norse's ``LIFParameters`` (a class) is not stored: a custom one is refused, not lost."""
    norse = pytest.importorskip("norse.torch")
    default = torch.nn.Sequential(torch.nn.Linear(3, 3), norse.LIFCell())
    assert sd.save(default, tmp_path / "default.pt").is_file()
    custom = norse.LIFCell(norse.LIFParameters(tau_mem_inv=torch.tensor(50.0)))
    with pytest.raises(UnsupportedOpError, match=r"lifcell1.*tau_mem.*save the model as NIR"):
        sd.save(torch.nn.Sequential(torch.nn.Linear(3, 3), custom), tmp_path / "custom.pt")
    assert not (tmp_path / "custom.pt").exists()
