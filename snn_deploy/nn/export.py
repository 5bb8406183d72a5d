"""``export(model, dt)``: an ``snn_deploy.nn`` model -> ``nir.NIRGraph``."""

from __future__ import annotations

import nir
import torch

from snn_deploy.ir.net import DEFAULT_DT


def export(
    model: torch.nn.Module, dt: float = DEFAULT_DT, *, input_shape: tuple[int, ...] | None = None
) -> nir.NIRGraph:
    """Export a ``Sequential`` of ``snn_deploy.nn`` layers (and torch pooling/flatten) to NIR.

    The graph, lowered with the same ``dt``, runs spike for spike like ``run(model, x)``:
    ``LIF(beta)`` becomes ``LIF(tau=dt/(1-beta), r=tau/dt)``, ``CubaLIF(alpha, beta)`` becomes
    ``CubaLIF(tau_syn=dt/(1-alpha), tau_mem=dt/(1-beta), r=tau_mem/dt, w_in=tau_syn/dt)``,
    ``IF`` becomes ``IF(r=1)``; the reset mode is kept in node metadata, and so is the spike
    level count of a layer with ``levels > 1`` (``"snn_deploy.spike_levels"``).

    Args:
        model: the model.
        dt: seconds per step.
        input_shape: per-sample input shape, needed unless the model starts with ``Linear``.
    """
    from snn_deploy.frontends.torch import to_nir

    return to_nir(model, dt=dt, input_shape=input_shape)
