"""The bit-accurate simulator backend: ``lower`` / ``emit`` / ``run``.

The program is the quantized ``Net`` itself; ``emit`` writes it as ``network.npz`` so a user
can re-run it bit-exactly (``snn-deploy simulate out_dir``) in their own CI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from snn_deploy.target.schema import Target

name = "sim"


def lower(net: Net, target: Target) -> Net:
    """The program of a quantized net is the net (verified)."""
    if not net.quantized:
        raise ValueError("the sim backend takes a quantized net")
    net.verify()
    return net


def emit(program: Net, out_dir: Path) -> list[Path]:
    """Write ``network.npz`` (the integer network, no pickle) into ``out_dir``."""
    path = out_dir / "network.npz"
    path.write_bytes(serialize.to_bytes(program))
    return [path]


def notes(program: Net, out_dir: Path | None = None) -> dict[str, object]:
    """Nothing backend-specific to report (``out_dir``, the emitted folder, adds nothing)."""
    return {}


def run(
    program: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run the integer simulation (``progress`` after every time step)."""
    return simulate(program, inputs, fixed=True, record_state=record_state, progress=progress)
