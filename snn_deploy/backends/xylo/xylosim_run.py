"""Run a ``XyloProgram`` on SynSense's xylosim (``xylosim.v2.XyloLayer``), the vendor's
bit-accurate simulator of Xylo Audio 2, and read its records back as a ``Trace``.

xylosim's ``XyloLayer`` keeps raw pointers to the ``XyloSynapse`` objects it is given, so
the Python lists holding them live as long as the layer (``_Layer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace, check_inputs
from snn_deploy.backends.xylo.program import XyloProgram
from snn_deploy.errors import BackendUnavailableError, InputFileError

MAX_EVENTS = 255
"""xylosim takes input events as uint8; larger counts are clipped to it first (the chip keeps
at most 15 per channel and step either way, which xylosim applies itself)."""


def _xylosim() -> Any:
    try:
        import xylosim.v2
    except ImportError as exc:
        raise BackendUnavailableError(
            "the xylo backend runs on SynSense's simulator xylosim, which is not installed: "
            "`pip install xylosim` (a small C++ package; `make test` installs it)"
        ) from exc
    return xylosim.v2


class _Layer:
    """A ``XyloLayer`` with the synapse objects it points to."""

    def __init__(self, program: XyloProgram) -> None:
        v2 = _xylosim()

        def synapses(*banks: npt.NDArray[np.int64] | None) -> list[list[Any]]:
            """Per source its synapses: to each target in bank ``b``, its synapse ``b``."""
            used = [(b, w) for b, w in enumerate(banks) if w is not None]
            return [
                [
                    v2.XyloSynapse(int(t), b, int(w[s, t]))
                    for b, w in used
                    for t in np.flatnonzero(w[s])
                ]
                for s in range(used[0][1].shape[0])
            ]

        p = program
        self.keep = (
            synapses(p.w_in, p.w_in2),
            synapses(p.w_rec, p.w_rec2),
            synapses(p.w_out),
        )
        dash_syns = [p.dash_syn] if p.dash_syn2 is None else [p.dash_syn, p.dash_syn2]
        self.layer = v2.XyloLayer(
            synapses_in=self.keep[0],
            synapses_rec=self.keep[1],
            synapses_out=self.keep[2],
            aliases=p.aliases,
            threshold=p.threshold.tolist(),
            threshold_out=p.threshold_out.tolist(),
            has_bias=True,
            bias=p.bias.tolist(),
            bias_out=p.bias_out.tolist(),
            weight_shift_inp=p.shift["input"],
            weight_shift_rec=p.shift["recurrent"],
            weight_shift_out=p.shift["output"],
            dash_mem=p.dash_mem.tolist(),
            dash_mem_out=p.dash_mem_out.tolist(),
            dash_syns=[[int(d) for d in ds] for ds in zip(*dash_syns, strict=True)],
            dash_syns_out=[[int(d)] for d in p.dash_syn_out],
            name="snn-deploy",
        )


def run(
    program: XyloProgram,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run every sample from reset; the populations' spikes (and ``u`` = ``i_syn``, ``v`` =
    ``v_mem``) as the simulator records them.

    Raises:
        InputFileError: an input value that is negative or not an integer (Xylo inputs are
            event counts).
        BackendUnavailableError: xylosim is not installed.
    """
    net = program.net
    data = check_inputs(net, inputs)
    for name, x in data.items():
        if np.any(x < 0) or not np.array_equal(x, np.rint(x)):
            raise InputFileError(
                f"input {name!r}: Xylo inputs are event counts (integers >= 0); got "
                f"{float(x[(x < 0) | (x != np.rint(x))][0]):g}"
            )
    batch, steps = next(iter(data.values())).shape[:2]
    events = np.zeros((batch, steps, program.n_channels), np.int64)
    for name, (start, size) in program.channels.items():
        events[:, :, start : start + size] = np.minimum(data[name], MAX_EVENTS)
    xl = _Layer(program)
    hidden = np.zeros((batch, steps, program.n_hidden), np.int64)
    out = np.zeros((batch, steps, program.n_out), np.int64)
    state = {k: np.zeros_like(hidden) for k in ("u", "v", "u2")}
    state_out = {k: np.zeros_like(out) for k in ("u", "v", "u2")}  # u2: read-outs have none
    for b in range(batch):
        xl.layer.reset_all()
        out[b] = np.array(xl.layer.evolve(events[b].tolist()), np.int64).reshape(steps, -1)
        hidden[b] = np.array(xl.layer.rec_recurrent_spikes, np.int64).reshape(steps, -1)
        if record_state:
            for key, rec, rec_out in (
                ("u", xl.layer.rec_i_syn, xl.layer.rec_i_syn_out),
                ("v", xl.layer.rec_v_mem, xl.layer.rec_v_mem_out),
                *([("u2", xl.layer.rec_i_syn2, [])] if program.dash_syn2 is not None else []),
            ):
                state[key][b] = np.array([list(r) for r in rec], np.int64).reshape(-1, steps).T
                if rec_out:
                    state_out[key][b] = (
                        np.array([list(r) for r in rec_out], np.int64).reshape(-1, steps).T
                    )
        if progress is not None:
            progress(b + 1, batch)

    def part(name: str, arrays: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]) -> Any:
        if name in program.hidden:  # its neurons on the chip, between the alias neurons
            start, size = program.hidden[name]
            return arrays[0][:, :, program.chip[start : start + size]]
        start, size = program.readout[name]
        return arrays[1][:, :, start : start + size]

    pops = {k: part(k, (hidden, out)) for k in net.populations}
    return Trace(
        outputs={
            o: pops[src] if src in pops else data[src].astype(np.int64)
            for o, src in net.outputs.items()
        },
        populations=pops,
        u={k: part(k, (state["u"], state_out["u"])) for k in net.populations}
        if record_state
        else {},
        v={k: part(k, (state["v"], state_out["v"])) for k in net.populations}
        if record_state
        else {},
        u2={
            k: part(k, (state["u2"], state_out["u2"]))
            for k, pop in net.populations.items()
            if pop.currents == 2
        }
        if record_state
        else {},
    )
