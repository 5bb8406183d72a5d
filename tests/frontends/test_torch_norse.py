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

from tests.frontends.test_torch import compare, ours, spikes  # noqa: E402


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
