"""Norse models through our torch frontend, spike for spike.

Norse's exporter writes ``tau = dt/tau_inv`` (should be ``1/tau_inv``) and leaves CubaLIF
``w_in = 1`` although Norse adds the input to ``i`` undamped; our converter writes
``tau = dt_compile/(dt_norse·tau_inv)`` and ``w_in = 1/(dt_norse·tau_syn_inv)``. Compared: the
framework's output at t against our float simulator's at t + 2 (two projections; no biases).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.toolchain("norse")

torch = pytest.importorskip("torch")

from tests.frontends.test_torch import DT, compare, ours, spikes  # noqa: E402


def _lin(i: int, o: int, gain: float):
    layer = torch.nn.Linear(i, o, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


@pytest.mark.parametrize("kind", ["LIF", "IAF"])
def test_sequence_modules_spike_for_spike(kind):
    import norse.torch as norse

    torch.manual_seed(0)
    make = {"LIF": norse.LIF, "IAF": norse.IAF}[kind]
    model = norse.SequentialState(_lin(10, 16, 3), make(), _lin(16, 4, 3), make()).double()
    x = spikes(60, 4, (10,))
    with torch.no_grad():
        fw, _ = model(x)
    assert compare(fw.numpy(), ours(model, x), layers=2) > 0.95


def test_lif_box_cell_step_by_step():
    import norse.torch as norse

    torch.manual_seed(1)
    model = norse.SequentialState(
        _lin(10, 16, 30), norse.LIFBoxCell(), _lin(16, 4, 30), norse.LIFBoxCell()
    ).double()
    x = spikes(60, 4, (10,))
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = model(x[t], state)
            outs.append(out)
    compare(torch.stack(outs).numpy(), ours(model, x), layers=2)


def _recurrent_model(kind: str, autapses: bool = False):
    """``kind`` (10 -> 16, recurrent) -> Linear(16, 8) -> LIFCell/LIF, weights ×4: ~14 % of
    output slots spike."""
    import norse.torch as norse

    make, out = {
        "LIFRecurrentCell": (norse.LIFRecurrentCell, norse.LIFCell),
        "LIFRecurrent": (norse.LIFRecurrent, norse.LIF),
    }[kind]
    torch.manual_seed(0)
    model = norse.SequentialState(make(10, 16, autapses=autapses), _lin(16, 8, 4), out()).double()
    with torch.no_grad():
        model[0].input_weights.mul_(4)
        model[0].recurrent_weights.mul_(4)
    return model


def _run(model, x):
    """Norse's forward: a cell model step by step, a sequence model on the whole ``[T, B, N]``."""
    import norse.torch as norse

    with torch.no_grad():
        if isinstance(model[0], norse.LIFRecurrent):
            return model(x)[0].numpy()
        state, outs = None, []
        for t in range(x.shape[0]):
            out, state = model(x[t], state)
            outs.append(out)
        return torch.stack(outs).numpy()


@pytest.mark.parametrize("kind", ["LIFRecurrentCell", "LIFRecurrent"])
@pytest.mark.parametrize("autapses", [False, True])
def test_lif_recurrent_spike_for_spike(kind, autapses):
    """Norse adds ``W_rec·z[t-1]`` with the input ``W_in·x[t]``; our input projection delivers
    one step later and so does our recurrent one, one step after our own spike: exact after the
    two layers' shift, with no Delay. ``autapses=True`` keeps a random diagonal."""
    model = _recurrent_model(kind, autapses)
    x = spikes(60, 4, (10,))
    fw = _run(model, x)
    assert compare(fw, ours(model, x), layers=2) > 0.9  # quantized: measured 0.94-0.95
    with torch.no_grad():
        model[0].recurrent_weights.zero_()
    assert np.mean(_run(model, x) != fw) > 0.1  # the recurrence changes 15 % of the slots


def test_lif_recurrent_checkpoint_spike_for_spike(tmp_path):
    """The file route is ``snn_deploy.save``'s safe checkpoint: Norse 1.1.0 modules cannot be
    pickled whole (its ``LIFParameters`` class is not importable by name), so ``--trust-pickle``
    has no file to read."""
    import snn_deploy
    from snn_deploy.frontends.torch import load

    model = _recurrent_model("LIFRecurrentCell")
    with pytest.raises(Exception, match="Can't pickle"):
        torch.save(model, tmp_path / "whole.pt")
    path = snn_deploy.save(model, tmp_path / "m.pt", dt=DT)
    x = spikes(60, 4, (10,))
    compare(_run(model, x), ours(load(path), x), layers=2)
    assert "lifrecurrentcell1.w_rec" in load(path).nodes


def test_lif_recurrent_cell_checks_its_input_size():
    import norse.torch as norse

    from snn_deploy.errors import UnsupportedOpError
    from snn_deploy.frontends.torch import load

    model = norse.SequentialState(_lin(10, 12, 1), norse.LIFRecurrentCell(10, 16))
    with pytest.raises(UnsupportedOpError, match=r"LIFRecurrentCell: input shape \[12\], expected"):
        load(model)


def test_norse_exporter_time_constants_are_fixed():
    """Norse's own exporter gives tau = dt·tau_mem (1e-5 s for 10 ms at dt = 1 ms)."""
    import norse.torch as norse
    from norse.torch.utils.export_nir import _extract_norse_module

    from snn_deploy.frontends.torch import to_nir

    cell = norse.LIFCell()
    theirs = _extract_norse_module(cell, dt=cell.dt)
    np.testing.assert_allclose(np.asarray(theirs.tau_mem, float), cell.dt / 100.0)
    mine = to_nir(torch.nn.Sequential(_lin(3, 3, 1), cell), dt=1e-4).nodes["lifcell1"]
    np.testing.assert_allclose(mine.tau_mem, 1e-4 / (cell.dt * 100.0))  # per-step decay 0.1
    np.testing.assert_allclose(mine.w_in, 1 / (cell.dt * 200.0))
