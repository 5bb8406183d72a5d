"""``snn_deploy.nn``: a small PyTorch layer set whose dynamics are exactly docs/SEMANTICS.md §1.

Train with these layers (surrogate gradients), then ``export(model, dt)`` gives a NIR graph that
our float simulator runs spike for spike like the PyTorch model::

    model = torch.nn.Sequential(Linear(12, 32), LIF(32, beta=0.9), Linear(32, 4), IF(4))
    out = run(model, x)            # x: [time, batch, 12] -> spikes [time, batch, 4]
    graph = export(model, dt=1e-4) # nir.NIRGraph; snn_deploy.frontends.torch.load(model) -> Graph

* ``Linear`` and ``Conv2d`` are ``torch.nn.Linear``/``Conv2d`` that deliver the *previous*
  step's input (``W·x[t-1] + b``): the one-step synaptic delay of every projection. Put exactly
  one of them between two neuron layers (stateless ``AvgPool2d``/``Flatten`` may sit beside it).
* ``LIF``: ``v = beta·v + x``; ``CubaLIF``: ``u = alpha·u + x; v = beta·v + u``;
  ``IF``: ``v = v + x``. A spike is ``v > threshold`` (strict; ``compare=">="``: ``v >=
  threshold``, what Xylo's neurons test, exported as ``"snn_deploy.threshold_compare"``), then
  ``v = 0`` (``reset="zero"``) or ``v -= threshold`` (``"subtract"``), in the same step.
* ``levels=D > 1`` (multi-level, "graded" spikes, e.g. Loihi 2): the spike is the integer
  ``s = #{k in 1..D : v > k·threshold}`` (``multispike``), then ``v = 0`` where ``s > 0`` or
  ``v -= s·threshold``; the next projection gets ``W·s``. ``export`` writes ``D`` to the node's
  metadata ``"snn_deploy.spike_levels"`` (absent = binary).

* ``SpikingSelfAttention(dim, heads, steps, ...)`` and ``SpikingGate(dim, ...)``: the
  activation×activation products of docs/SEMANTICS.md §4 (``Attention``, ``Gate``) with the
  neurons around them, each one module in the ``Sequential`` (after a neuron layer).

Modules keep their state between calls (one call = one step, input ``[batch, ...]``);
``reset_state(model)`` clears it and ``run(model, x)`` steps through ``x[time, batch, ...]``.
"""

from snn_deploy.nn.export import export
from snn_deploy.nn.layers import (
    IF,
    LIF,
    Conv2d,
    CubaLIF,
    Linear,
    SpikingGate,
    SpikingSelfAttention,
    multispike,
    reset_state,
    run,
    spike,
)

__all__ = [
    "IF",
    "LIF",
    "Conv2d",
    "CubaLIF",
    "Linear",
    "SpikingGate",
    "SpikingSelfAttention",
    "export",
    "multispike",
    "reset_state",
    "run",
    "spike",
]
