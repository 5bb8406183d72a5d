"""The Xylo backend: SynSense Xylo Audio 2 (target ``xylo-audio2``).

``lower`` lays a quantized net out as the chip's three weight matrices (``program.py``);
``emit`` writes ``network.npz`` (the specification) and ``xylo_config.npz`` (the matrices,
shifts and per-neuron parameters as the chip takes them); ``run`` executes the program on
SynSense's bit-accurate simulator xylosim (``xylosim.v2.XyloLayer``, driven directly: no
Rockpool and never samna). xylosim declares no licence: it is an optional, user-installed
package (``pip install xylosim``), never vendored. Its result equals the ``sim`` backend
spike for spike and state for state (tests/backends/xylo).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace
from snn_deploy.backends.xylo import cycles, xylosim_run
from snn_deploy.backends.xylo.program import MATRICES, XyloProgram, hop_latency, lower_program
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from snn_deploy.target.rules import check_design_rules
from snn_deploy.target.schema import Target

name = "xylo"


def lower(net: Net, target: Target) -> XyloProgram:
    """Lay out a quantized net on the chip (pure; imports no xylosim).

    Raises:
        DesignRuleError: the net breaks one of the target's limits (every violation at once).
    """
    net.verify()
    check_design_rules(net, target)
    return lower_program(net, target)


def emit(program: XyloProgram, out_dir: Path) -> list[Path]:
    """Write ``network.npz`` and ``xylo_config.npz`` (integer arrays, no pickle)."""
    path = out_dir / "network.npz"
    path.write_bytes(serialize.to_bytes(program.net))
    config = out_dir / "xylo_config.npz"
    arrays = {
        "w_in": program.w_in,
        "w_rec": program.w_rec,
        "w_out": program.w_out,
        **{f"shift_{k}": np.array(program.shift[k]) for k in MATRICES},
        "dash_syn": program.dash_syn,
        "dash_mem": program.dash_mem,
        "threshold": program.threshold,
        "bias": program.bias,
        "dash_syn_out": program.dash_syn_out,
        "dash_mem_out": program.dash_mem_out,
        "threshold_out": program.threshold_out,
        "bias_out": program.bias_out,
        "alias": np.array([a[0] if a else -1 for a in program.aliases], np.int64),
    }
    for key in ("w_in2", "w_rec2", "dash_syn2"):  # the second synapse bank, where used
        value = getattr(program, key)
        if value is not None:
            arrays[key] = value
    with config.open("wb") as fh:
        np.savez(fh, **arrays)
    return [path, config]


def notes(program: XyloProgram, out_dir: Path | None = None) -> dict[str, object]:
    """For the report: neurons and synapses used, shifts, aliases, the latency per hop and the
    real-time step (one step per ``dt``), how far each population's dash values are from its
    time constants, and the layout the cycle model needs (``cycle_model``: ``cycles.structure``)
    (``out_dir``, the emitted folder, adds nothing)."""
    net = program.net
    return {
        "input_channels": program.n_channels,
        "hidden_neurons": program.n_hidden,
        "alias_neurons": sum(len(a) for a in program.aliases),
        "output_neurons": program.n_out,
        "recurrent_synapses": int(np.count_nonzero(program.w_rec))
        + int(np.count_nonzero(program.w_rec2 if program.w_rec2 is not None else 0)),
        "weight_shift": dict(program.shift),
        "latency": {
            **hop_latency(net),
            "us_per_step": net.dt * 1e6,
            "basis": "real time: the chip runs one step per dt",
        },
        "time_constants": {k: dash_error(net, k) for k in net.populations},
        "cycle_model": cycles.structure(program),
    }


def dash_error(net: Net, name: str) -> dict[str, object]:
    """A population's time constants as the dash values give them, ``τ = dt·2**dash``, and
    their largest relative error against the float net's ``τ = dt/fraction``
    (``u``: ``tau_syn``, from α; ``v``: ``tau_mem``, from β; a second current ``u2``:
    ``tau_syn2``, from α2; None where the float net keeps no memory, fraction 1, or never
    decays, fraction 0)."""
    pop = net.populations[name]
    assert pop.fixed is not None
    out: dict[str, object] = {}
    states = [("tau_syn", pop.alpha, pop.fixed.du), ("tau_mem", pop.beta, pop.fixed.dv)]
    if pop.alpha2 is not None and pop.fixed.du2 is not None:
        states.append(("tau_syn2", pop.alpha2, pop.fixed.du2))
    for key, fraction, dash in states:
        dash = np.broadcast_to(dash, fraction.shape)
        real = np.where((fraction > 0) & (fraction < 1), net.dt / np.maximum(fraction, 1e-300), 0)
        chip = net.dt * 2.0**dash
        ok = real > 0
        err = float(np.max(np.abs(chip[ok] - real[ok]) / real[ok])) if np.any(ok) else None
        out[key] = {
            "dash": sorted({int(d) for d in dash}),
            "tau_s": sorted({float(t) for t in chip}),
            "relative_error": err,
        }
    return out


def run(
    program: XyloProgram,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run on xylosim, one sample at a time (``progress`` after each sample)."""
    return xylosim_run.run(program, inputs, record_state=record_state, progress=progress)
