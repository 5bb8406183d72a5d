"""lava-dl netx HDF5 (``.net``) -> IR graph, keeping the file's integers exact.

Each ``dense``/``dense_rec`` layer becomes ``Linear`` (+ a recurrent ``Linear``) into a
``CubaLIF`` whose parameters are the file's integers written in voltage units of
``voltage_scale = 1`` (docs/SEMANTICS.md §1): ``tau_syn = dt * 2**12 / iDecay``,
``tau_mem = dt * 2**12 / vDecay``, ``r = tau_mem / dt`` and ``w_in = tau_syn / dt`` (so the
input gain is 1), weights ``w * 2**6``, threshold ``vThMant * 2**6`` and bias ``b * 2**6`` per
step. Quantizing the result for a Loihi target gives back ``du = iDecay - 1``, ``dv = vDecay``,
``vth = vThMant`` and the weights unchanged when compiled with the default ``dt`` (netx has no
time unit, so the graph is written for ``DEFAULT_DT``; another ``--dt`` rescales the decays).
Supported: layers ``input``, ``dense``, ``dense_rec``, CUBA neurons with binary spikes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

from snn_deploy.errors import InputFileError, UnsupportedOpError
from snn_deploy.frontends import hdf5
from snn_deploy.frontends.isolated import ReaderError, read_isolated
from snn_deploy.frontends.nir import SCALE_KEY
from snn_deploy.frontends.nir import load as load_nir
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.ir.types import ResetMode

DT = DEFAULT_DT
SHIFT = 1 << 6
"""Loihi's input and threshold shift (``act_shift``, ``vth_shift``), as netx assumes it."""
DECAY_UNITY = 1 << 12
"""netx ``iDecay``/``vDecay`` are fractions of 2**12 (lava-dl slayer ``p_scale``)."""
SUPPORTED = ("input", "dense", "dense_rec")


def _text(value: Any) -> str:
    value = value[()] if isinstance(value, h5py.Dataset) else value
    value = value[0] if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def load(path: Path, *, reset: ResetMode | None = None) -> Graph:
    """Read a netx file into a verified graph (``reset`` must be None or zero: netx is CUBA)."""
    if reset is ResetMode.SUBTRACT:
        raise UnsupportedOpError("netx CUBA neurons reset to zero; --reset subtract does not apply")
    try:
        return load_nir(read_isolated(_read, path), origin=path)
    except ReaderError as exc:
        raise InputFileError(f"{path} is not a readable netx (HDF5) file: {exc}") from None


def _read(path: Path) -> nir.NIRGraph:
    with h5py.File(path, "r") as h5:
        hdf5.check(h5, path)
        return _graph(path, [h5["layer"][k] for k in sorted(h5["layer"], key=int)])


def _graph(path: Path, layers: list[h5py.Group]) -> nir.NIRGraph:
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    previous = "input"
    size = None
    for i, layer in enumerate(layers):
        kind = _text(layer["type"])
        if kind not in SUPPORTED:
            raise UnsupportedOpError(
                f"{path}: layer {i} has type {kind!r}; "
                f"supported netx layers: {', '.join(SUPPORTED)}"
            )
        if kind == "input":
            size = int(np.prod(layer["shape"][()]))
            continue
        weight = np.asarray(layer["weight"][()], dtype=np.float64)
        out = weight.shape[0]
        if size is None:
            size = weight.shape[1]
        neuron = layer["neuron"]
        if _text(neuron["type"]) != "CUBA" or bool(neuron.get("gradedSpike", np.False_)[()]):
            raise UnsupportedOpError(f"{path}: layer {i}: only CUBA neurons with binary spikes")
        if "delay" in layer:
            raise UnsupportedOpError(f"{path}: layer {i}: netx synaptic delays are not supported")
        i_decay, v_decay = int(neuron["iDecay"][()]), int(neuron["vDecay"][()])
        if not (0 < i_decay <= DECAY_UNITY and 0 < v_decay < DECAY_UNITY):
            raise UnsupportedOpError(
                f"{path}: layer {i}: iDecay {i_decay} must be in 1..{DECAY_UNITY} and vDecay "
                f"{v_decay} in 1..{DECAY_UNITY - 1}: a neuron without leak has no CubaLIF form"
            )
        tau_syn, tau_mem = DT * DECAY_UNITY / i_decay, DT * DECAY_UNITY / v_decay
        bias = np.asarray(layer["bias"][()], dtype=np.float64) if "bias" in layer else np.zeros(out)
        syn, lif = f"{i}.synapse", f"{i}.neuron"
        nodes[syn] = nir.Linear(weight=weight * SHIFT)
        nodes[lif] = nir.CubaLIF(
            tau_syn=np.full(out, tau_syn),
            tau_mem=np.full(out, tau_mem),
            r=np.full(out, tau_mem / DT),
            w_in=np.full(out, tau_syn / DT),
            v_leak=bias * SHIFT * tau_mem / DT,
            v_threshold=np.full(out, int(neuron["vThMant"][()]) * SHIFT),
            v_reset=np.full(out, 0.0),
            metadata={SCALE_KEY: 1.0},
        )
        edges += [(previous, syn), (syn, lif)]
        if _text(layer["type"]) == "dense_rec":
            rec = f"{i}.recurrent"
            nodes[rec] = nir.Linear(
                weight=np.asarray(layer["weight_rec"][()], dtype=np.float64) * SHIFT
            )
            edges += [(lif, rec), (rec, lif)]
        previous = lif
    if size is None or previous == "input":
        raise InputFileError(f"{path}: no dense layers")
    nodes["input"] = nir.Input(input_type={"input": np.array([size])})
    nodes["output"] = nir.Output(output_type={"output": np.array([nodes[previous].tau_mem.size])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
