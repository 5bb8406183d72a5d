"""The Lava backend: Loihi-class targets as real Lava 0.10.0 processes.

``run`` executes them in Lava's bit-accurate CPU simulation (``Loihi2SimCfg(select_tag=
"fixed_pt")``); the result equals the ``sim`` backend spike for spike. ``build`` gives the
process graph for one sample so a user can run or extend it. Running on Loihi hardware needs
Intel's closed lava-loihi stack, which we cannot test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace
from snn_deploy.backends.lava import build as _build
from snn_deploy.backends.lava import netx
from snn_deploy.backends.lava.program import LavaProgram, lower_program
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from snn_deploy.target.rules import product_registers_fit, raise_violations, spike_payload_fits
from snn_deploy.target.schema import Target

name = "lava"
build = _build.build


def lower(net: Net, target: Target) -> LavaProgram:
    """Describe the Lava processes for a quantized net (pure; imports no Lava).

    Raises:
        DesignRuleError: a population has more spike levels than the target's spike payload
            holds, or a product unit's registers exceed the target's (Lava itself would run
            them, which the target's hardware cannot).
    """
    net.verify()
    raise_violations(spike_payload_fits(net, target) + product_registers_fit(net, target), target)
    return lower_program(net)


def emit(program: LavaProgram, out_dir: Path) -> list[Path]:
    """Write ``network.npz`` (the integer network the processes are built from) and, when netx
    can express the net exactly, ``network.net`` (lava-dl netx HDF5)."""
    path = out_dir / "network.npz"
    path.write_bytes(serialize.to_bytes(program.net))
    if netx.problems(program.net):
        return [path]
    netx.write(program.net, out_dir / "network.net")
    return [path, out_dir / "network.net"]


def notes(program: LavaProgram, out_dir: Path | None = None) -> dict[str, object]:
    """For the report: the Lava processes, and whether netx can hold the net (and why not);
    ``out_dir`` (the emitted folder) adds nothing."""
    return {
        "lif_processes": len(program.blocks),
        "product_processes": {k: type(u).__name__ for k, u in program.net.products.items()},
        "synapse_processes": len(program.synapses),
        "netx": {"written": not netx.problems(program.net), "problems": netx.problems(program.net)},
    }


def run(
    program: LavaProgram,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run in Lava's fixed-point CPU simulation, one Lava run per sample (``progress`` after
    each sample)."""
    return _build.run(program, inputs, record_state=record_state, progress=progress)
