"""The FPGA backend: time-multiplexed LIF cores and product units (Attention, Gate) in
Verilog, bit-exact with the simulator.

``lower`` checks the board's design rules and sizes one core per population and one unit per
product; ``emit`` writes
the netlist JSON, the Verilog, the memory init files, a self-checking testbench with its
vectors and the resource report (Yosys); ``run`` simulates the RTL in Icarus Verilog;
``notes`` gives the report the resources (``resources.json`` after ``emit``) and the
latency. docs/FPGA.md describes the architecture.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace
from snn_deploy.backends.fpga import emit as _emit
from snn_deploy.backends.fpga.lower import Program, build_units
from snn_deploy.backends.fpga.rules import check_board
from snn_deploy.backends.fpga.run import simulate_rtl
from snn_deploy.backends.fpga.synth import cores_for_board, resource_report
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from snn_deploy.target.schema import Target

name = "fpga"


def lower(net: Net, target: Target) -> Program:
    """Size the cores of a quantized net for the target's board: one core per population,
    with as many neuron-update lanes as the board holds (``synth.cores_for_board``), and one
    unit per product (``lower.build_units``).

    Raises:
        DesignRuleError: listing every violation when the network does not fit the board.
    """
    if not net.quantized:
        raise ValueError("the fpga backend takes a quantized net")
    if target.fpga is None:
        raise ValueError(f"target {target.name!r} has no [fpga] board description")
    net.verify()
    check_board(net, target)
    sizes = [1, *(net.size_of(k) for k in (*net.inputs, *net.populations, *net.products))]
    cores = cores_for_board(net, target.fpga)
    return Program(
        net=net,
        cores=cores,
        units=build_units(net, cores),
        inputs={k: net.size_of(k) for k in net.inputs},
        index_bits=max(1, (max(sizes) - 1).bit_length()),
        target=target.name,
        board=target.fpga,
    )


def emit(program: Program, out_dir: Path) -> list[Path]:
    """Write ``network.npz`` (the integer network the design is built from, for ``verify``
    and ``simulate``), the netlist, Verilog, memory files, testbench, a default stimulus and
    ``resources.json`` (Yosys synthesis if installed, else the analytical estimate).

    Raises:
        DesignRuleError: the synthesized design does not fit the board.
    """
    (out_dir / "network.npz").write_bytes(serialize.to_bytes(program.net))
    files = [out_dir / "network.npz", *_emit.emit(program, out_dir)]
    report = resource_report(program, out_dir)
    (out_dir / "resources.json").write_text(json.dumps(report, indent=2) + "\n")
    if report["violations"]:
        lines = "\n  ".join(report["violations"])
        raise DesignRuleError(
            f"{len(report['violations'])} design-rule violation(s) for target "
            f"{program.target!r}:\n  {lines}"
        )
    extra = [out_dir / n for n in ("synth.ys", "stat.json") if (out_dir / n).exists()]
    return [*files, *extra, out_dir / "resources.json"]


def notes(program: Program, out_dir: Path | None = None) -> dict[str, Any]:
    """For the report: resources, board capacity and latency. With ``out_dir`` (after
    ``emit``), its ``resources.json``: Yosys' numbers when Yosys ran; otherwise, and before
    ``emit``, the analytical estimate (``resources.tool`` says which)."""
    if out_dir is not None and (out_dir / "resources.json").is_file():
        return json.loads((out_dir / "resources.json").read_text())  # type: ignore[no-any-return]
    return resource_report(program, None)


def run(
    program: Program,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Simulate the RTL in Icarus Verilog on ``inputs`` (and record ``u``, ``v`` if asked);
    one simulator run for the whole batch, ``progress`` after each sample."""
    return simulate_rtl(program, inputs, record_state=record_state, progress=progress)[0]
