"""The Xylo Audio 2 program: a quantized ``Net`` laid out as the chip's three weight matrices.

Pure and in memory (no xylosim import). Layout: the inputs' channels in ``net.inputs`` order;
the hidden neurons, every population that is not a read-out (``Net.readouts``) in
``net.populations`` order, then the alias neurons; the read-out neurons in order. This is the
order the simulator's source-by-source accumulation adds (``backends.sim.run.chip_order``),
so the saturating additions happen in the same order on both.

**Aliases.** A hidden neuron keeps at most ``hidden_fan_out`` recurrent synapses; the rest
go, ``hidden_fan_out`` at a time, to a chain of alias neurons placed right after it
(``k -> a1 -> a2``, one alias each, in increasing index order, so each copy is complete before
it is copied on: xylosim's ``evolve_neurons`` copies a neuron's count to its alias when the
neuron evolves). An alias neuron has no input, bias 0 and the largest threshold, so its ``v``
stays 0 and it emits exactly the count copied to it, in the same step. Right after its source
and not after every hidden neuron: a destination receives a source's spikes from the source
or from one of its aliases, so the sources still add into its saturating current in source
order, as the simulator adds them. The net's semantics are unchanged, and the tests compare
the populations of the net with xylosim's.

**Second synaptic currents.** A projection into a population's second current
(``Projection.synapse`` 1) goes to the chip's second synapse bank (``w_in2``, ``w_rec2``;
xylosim's ``XyloSynapse`` target synapse 1) and the population's ``du2`` to each neuron's
second ``dash_syn``. When any hidden population has a second current, every hidden neuron
gets two synaptic states (the unused one stays 0 and adds nothing to ``v``); otherwise one,
and the program is what it was before second currents existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.net import Net
from snn_deploy.target.schema import Target

Int = npt.NDArray[np.int64]

MATRICES = ("input", "recurrent", "output")
"""The chip's weight matrices, named as ``Net.matrix_of`` names them."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class XyloProgram:
    """A net as Xylo Audio 2's configuration (integers as xylosim takes them).

    Attributes:
        net: the quantized net (written as ``network.npz``; the specification).
        channels: input name -> (first channel, channels).
        hidden: hidden population name -> (first neuron, neurons), in net order (no aliases).
        chip: per hidden neuron in net order, its neuron on the chip (aliases interleaved).
        readout: read-out population name -> (first output neuron, neurons).
        n_hidden: hidden neurons including the alias neurons.
        w_in: ``[channels, n_hidden]`` int8 weights; w_rec: ``[n_hidden, n_hidden]`` (source,
            target); w_out: ``[n_hidden, outputs]``.
        w_in2, w_rec2: the same into the hidden neurons' second synaptic states; None when
            no hidden population has a second current (one state per hidden neuron).
        shift: per matrix (``input``, ``recurrent``, ``output``) its weight left shift.
        dash_syn, dash_mem, threshold, bias: per hidden neuron (aliases included).
        dash_syn2: per hidden neuron the dash of its second state (None with ``w_in2``).
        dash_syn_out, dash_mem_out, threshold_out, bias_out: per read-out neuron.
        aliases: per hidden neuron, the neurons its spike count is copied to (0 or 1).
    """

    net: Net
    channels: dict[str, tuple[int, int]]
    hidden: dict[str, tuple[int, int]]
    chip: Int
    readout: dict[str, tuple[int, int]]
    n_hidden: int
    w_in: Int
    w_rec: Int
    w_out: Int
    shift: dict[str, int]
    dash_syn: Int
    dash_mem: Int
    threshold: Int
    bias: Int
    dash_syn_out: Int
    dash_mem_out: Int
    threshold_out: Int
    bias_out: Int
    aliases: list[list[int]] = field(default_factory=list)
    w_in2: Int | None = None
    w_rec2: Int | None = None
    dash_syn2: Int | None = None

    @property
    def n_channels(self) -> int:
        """Input channels used."""
        return sum(n for _, n in self.channels.values())

    @property
    def n_out(self) -> int:
        """Read-out neurons used."""
        return sum(n for _, n in self.readout.values())


def _offsets(sizes: dict[str, int]) -> dict[str, tuple[int, int]]:
    out, end = {}, 0
    for name, size in sizes.items():
        out[name] = (end, size)
        end += size
    return out


def aliases_needed(fan_out: Int, limit: int) -> int:
    """Alias neurons a chain needs for recurrent fan-outs ``fan_out`` at ``limit`` synapses per
    neuron: ``ceil(f / limit) - 1`` each.

    Examples:
        >>> aliases_needed(np.array([10, 64, 65, 200]), 64)
        4
    """
    return int(np.sum(np.maximum(0, -(-fan_out // limit) - 1)))


def lower_program(net: Net, target: Target) -> XyloProgram:
    """Lay out a quantized ``net`` (that passed the design rules) on the chip."""
    readouts = net.readouts()
    channels = _offsets({k: net.size_of(k) for k in net.inputs})
    hidden = _offsets({k: p.size for k, p in net.populations.items() if k not in readouts})
    readout = _offsets({k: net.populations[k].size for k in readouts})
    n_in = sum(n for _, n in channels.values())
    n_h = sum(n for _, n in hidden.values())
    n_out = sum(n for _, n in readout.values())
    banks = max([net.populations[k].currents for k in hidden], default=1)  # synapses/neuron
    w_in = np.zeros((n_in, n_h, banks), np.int64)
    w_rec = np.zeros((n_h, n_h, banks), np.int64)
    w_out = np.zeros((n_h, n_out), np.int64)
    shift = dict.fromkeys(MATRICES, 0)
    for proj in net.projections:
        assert proj.fixed is not None
        codes = proj.fixed.codes.toarray().T  # [src, dst]
        kind = net.matrix_of(proj)
        shift[kind] = proj.fixed.exp  # one per matrix (rule weight-shift-per-matrix)
        if kind == "input":
            (s0, ns), (d0, nd) = channels[proj.src], hidden[proj.dst]
            w_in[s0 : s0 + ns, d0 : d0 + nd, proj.synapse] = codes
        elif kind == "output":
            (s0, ns), (d0, nd) = hidden[proj.src], readout[proj.dst]
            w_out[s0 : s0 + ns, d0 : d0 + nd] = codes
        else:
            (s0, ns), (d0, nd) = hidden[proj.src], hidden[proj.dst]
            w_rec[s0 : s0 + ns, d0 : d0 + nd, proj.synapse] = codes
    params = {k: _params(net, k) for k in net.populations}
    top = (1 << net.numeric.threshold.width) - 1 if net.numeric else 0
    alias = {"dash_syn": 1, "dash_syn2": 1, "dash_mem": 1, "threshold": top, "bias": 0}
    w_rec, aliases, chip = _alias(w_rec, target.limits.hidden_fan_out)
    n_chip = len(aliases)
    hid: dict[str, Int] = {}
    for key, fill in alias.items():  # alias neurons: no input, no bias, never spike themselves
        values = np.full(n_chip, fill, np.int64)
        if hidden:
            values[chip] = np.concatenate([params[k][key] for k in hidden])
        hid[key] = values
    chip_in = np.zeros((n_in, n_chip, banks), np.int64)
    chip_in[:, chip] = w_in
    chip_out = np.zeros((n_chip, n_out), np.int64)
    chip_out[chip] = w_out

    def out(key: str) -> Int:
        arrays = [params[k][key] for k in readout]
        return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)

    return XyloProgram(
        net=net,
        channels=channels,
        hidden=hidden,
        chip=chip,
        readout=readout,
        n_hidden=n_chip,
        w_in=np.ascontiguousarray(chip_in[:, :, 0]),
        w_rec=np.ascontiguousarray(w_rec[:, :, 0]),
        w_out=chip_out,
        w_in2=np.ascontiguousarray(chip_in[:, :, 1]) if banks == 2 else None,
        w_rec2=np.ascontiguousarray(w_rec[:, :, 1]) if banks == 2 else None,
        dash_syn2=hid["dash_syn2"] if banks == 2 else None,
        shift=shift,
        dash_syn=hid["dash_syn"],
        dash_mem=hid["dash_mem"],
        threshold=hid["threshold"],
        bias=hid["bias"],
        dash_syn_out=out("dash_syn"),
        dash_mem_out=out("dash_mem"),
        threshold_out=out("threshold"),
        bias_out=out("bias"),
        aliases=aliases,
    )


def _params(net: Net, name: str) -> dict[str, Int]:
    pop = net.populations[name]
    f = pop.fixed
    assert f is not None
    assert f.vth is not None  # the non-spiking rule: spiking populations only
    size = pop.size
    return {
        "dash_syn": np.broadcast_to(f.du, size),
        "dash_syn2": np.broadcast_to(1 if f.du2 is None else f.du2, size),  # 1: unused
        "dash_mem": np.broadcast_to(f.dv, size),
        "threshold": np.broadcast_to(f.vth, size),
        "bias": np.broadcast_to(f.bias_mant << f.bias_exp, size),
    }


def _alias(w_rec: Int, limit: int | None) -> tuple[Int, list[list[int]], Int]:
    """Move recurrent synapses beyond ``limit`` per source to chains of alias neurons right
    after it; returns the chip's recurrent matrix, the alias lists (chip indices) and each
    hidden neuron's chip index. ``w_rec`` is ``[source, target, synapse]``; a synapse is a
    (target, synapse) pair, counted in that order."""
    n, _, banks = w_rec.shape
    fan_out = np.count_nonzero(w_rec.reshape(n, -1), axis=1)
    chunks: list[list[Int]] = []
    for k in range(n):
        targets = np.flatnonzero(w_rec[k])  # target * banks + synapse
        step = limit if limit is not None else max(len(targets), 1)
        chunks.append([targets[i : i + step] for i in range(0, max(len(targets), 1), step)])
    sizes = np.array([len(c) for c in chunks], np.int64)  # the neuron and its aliases
    chip = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = int(sizes.sum())
    assert limit is None or total == n + aliases_needed(fan_out, limit)
    grown = np.zeros((total, total, banks), np.int64)
    aliases: list[list[int]] = [[] for _ in range(total)]
    for k in range(n):
        for c, chunk in enumerate(chunks[k]):
            holder = chip[k] + c
            if c + 1 < len(chunks[k]):
                aliases[holder].append(holder + 1)
            to, syn = chunk // banks, chunk % banks
            grown[holder, chip[to], syn] = w_rec[k, to, syn]
    return grown, aliases, chip


def hop_latency(net: Net) -> dict[str, object]:
    """Steps per hop and, per Output, the first step an input can reach it (the shortest
    path of ``Net.lag``s): the report's latency facts."""
    first: dict[str, float] = {k: 0.0 for k in net.inputs}
    for _ in range(len(net.populations) + 1):  # Bellman-Ford over the projections
        for p in net.projections:
            if p.src in first:
                first[p.dst] = min(first.get(p.dst, math.inf), first[p.src] + net.lag(p))
    return {
        "input_hop_steps": net.input_latency,
        "hidden_hop_steps": 1,
        "output_hop_steps": 1,
        "outputs_first_step": {
            out: int(first[src]) if src in first else None for out, src in net.outputs.items()
        },
    }
