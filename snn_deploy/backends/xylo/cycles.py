"""Xylo Audio 2's clock cycles per time step, from a run's activity (issue 23 item 6).

The chip's SNN core is clocked and "only works as hard as it needs to": once every neuron of
a step is updated it idles until the next step (Rockpool documentation, "Measuring power
consumption on Xylo Audio HDK", docs/devices/quick-xylo/xylo-audio-power.ipynb). The cycles a
step takes are counted by SynSense's public cycle model of the core (rockpool 3.1.0
``devices/xylo/syns61201/power_cycles_model.py``, ``cycles_model``), per stage:

* **input**: per input channel one cycle, plus 3.5 per hidden neuron when the channel has an
  event in the step (the input matrix is dense: an event visits every hidden neuron);
* **hidden_isyn**: per hidden neuron 3 cycles, plus 7 per recurrent synapse when it spikes;
* **output_isyn**: per hidden neuron that spikes, 1 + 8 per output neuron;
* **hidden_spike**: per hidden neuron 19 cycles, plus a few that depend on its spiking and on
  whether it is an alias source or target;
* **output_spike**: 12 per output neuron.

As in the vendor's model, a channel or neuron counts as active in a step whatever its
number of events (a 31-level spike costs what a single one does), the probabilities are
averages over the run (``activity`` counts events as non-zero slots), and the hidden
neurons are the chip's, alias neurons included: an alias neuron fires with its source, so the
hidden spike probability is the net's hidden neurons' (``structure`` keeps the counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from snn_deploy.backends.xylo.program import XyloProgram

INPUT_EVENT = 3.5
"""Cycles per (active input channel, hidden neuron) pair."""
HIDDEN_FIXED, HIDDEN_FAN_OUT = 3, 7
"""Cycles per hidden neuron for its current, and per recurrent synapse of a spiking one."""
OUTPUT_FAN_OUT = 8
"""Cycles per output synapse of a spiking hidden neuron (plus one per spiking neuron)."""
HIDDEN_SPIKE, OUTPUT_SPIKE = 19, 12
"""Fixed cycles per hidden and per output neuron for the membrane update and spike test."""
STAGES = ("input", "hidden_isyn", "output_isyn", "hidden_spike", "output_spike")
"""The stages of a step, in the chip's order."""


def structure(program: XyloProgram) -> dict[str, Any]:
    """What the cycle model needs of the chip layout (written into the backend notes)."""
    has_alias = np.array([bool(a) for a in program.aliases])
    return {
        "input_channels": program.n_channels,
        "hidden_neurons": program.n_hidden,
        "output_neurons": program.n_out,
        "recurrent_synapses": int(np.count_nonzero(program.w_rec)),
        "alias_sources": int(has_alias.sum()),
        "hidden_populations": list(program.hidden),
        "readout_populations": list(program.readout),
    }


def per_step(layout: Mapping[str, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
    """Average clock cycles per time step of a run: per stage and ``total``, with the
    activity they rest on (``input_rate``, ``hidden_rate``: fraction of channel- or
    neuron-steps with an event).

    Args:
        layout: ``structure`` of the program.
        counts: ``reports.energy.activity`` of the run.

    Examples:
        >>> layout = {"input_channels": 2, "hidden_neurons": 4, "output_neurons": 1,
        ...           "recurrent_synapses": 0, "alias_sources": 0,
        ...           "hidden_populations": ["h"], "readout_populations": ["o"]}
        >>> counts = {"samples": 1, "steps": 10,
        ...           "inputs": {"x": {"neurons": 2, "events": 0}},
        ...           "populations": {"h": {"neurons": 4, "spikes": 0}}}
        >>> per_step(layout, counts)["total"]  # 2 channels, 4 x (3 + 19) hidden, 12 output
        102.0
    """
    slots = counts["samples"] * counts["steps"]
    n_in, n_hid, n_out = (
        layout["input_channels"],
        layout["hidden_neurons"],
        layout["output_neurons"],
    )
    ins = counts["inputs"].values()
    p_in = sum(i["events"] for i in ins) / max(slots * sum(i["neurons"] for i in ins), 1)
    hidden = [counts["populations"][k] for k in layout["hidden_populations"]]
    p = sum(h["spikes"] for h in hidden) / max(slots * sum(h["neurons"] for h in hidden), 1)
    fan_out = layout["recurrent_synapses"] / max(n_hid, 1)
    a_src = a_tgt = layout["alias_sources"] / max(n_hid, 1)  # one alias each
    alias = a_tgt * a_src
    variable = (
        2 * max(p, alias) + 3 * max(p * a_tgt, alias) + p + max(p, a_tgt) * a_src
    )  # the vendor's spike- and alias-dependent cycles of a hidden neuron
    stages = {
        "input": n_in * (p_in * n_hid * INPUT_EVENT + 1),
        "hidden_isyn": n_hid * (fan_out * HIDDEN_FAN_OUT * p + HIDDEN_FIXED),
        "output_isyn": n_hid * p * (1 + n_out * OUTPUT_FAN_OUT),
        "hidden_spike": n_hid * (HIDDEN_SPIKE + variable),
        "output_spike": float(OUTPUT_SPIKE * n_out),
    }
    return {
        **{k: float(stages[k]) for k in STAGES},
        "total": float(sum(stages.values())),
        "input_rate": p_in,
        "hidden_rate": p,
    }
