"""Write the FPGA program: netlist JSON, Verilog, memory init files, testbench and vectors.

``lif_core.v``, ``hist_ram.v``, ``attention.v`` and ``gate.v`` are fixed templates
(``templates/``); ``snn_top.v`` (one ``core<c>_unit`` per core with its history buffers, one
``unit<u>_attention`` or ``unit<u>_gate`` per product unit with its operand buffers, and the
step controller) and ``tb.v`` are generated here. docs/FPGA.md documents the netlist schema and
every memory layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.fpga.lower import (
    INPUT_BITS,
    Core,
    CoreProjection,
    OperandPort,
    ProductUnit,
    Program,
)
from snn_deploy.backends.sim.run import simulate
from snn_deploy.ir.net import Attention
from snn_deploy.ir.types import ResetMode, ThresholdCompare

NETLIST_SCHEMA = "snn-deploy-fpga-netlist/1"
TEMPLATES = ("lif_core.v", "hist_ram.v")
"""The templates of every design; ``attention.v`` and ``gate.v`` join those that use them."""
TESTBENCH = ("tb.v", "stim.mem", "expected.mem")
"""The testbench and its vectors; every other ``.v`` and ``.mem`` file is the design."""
DEFAULT_STEPS = 32
"""Steps of the random stimulus ``emit`` writes when it is given no inputs."""


def rtl_files(program: Program) -> tuple[str, ...]:
    """The design's Verilog files: ``snn_top.v``, the core templates and the product units'."""
    kinds = {type(u.unit).__name__.lower() for u in program.units}
    return ("snn_top.v", *TEMPLATES, *(f"{k}.v" for k in ("attention", "gate") if k in kinds))


def hexword(value: int, bits: int) -> str:
    """Two's complement of ``value`` in ``bits`` bits, as hex digits.

    Examples:
        >>> hexword(-1, 8), hexword(5, 12)
        ('ff', '005')
    """
    return format(value & ((1 << bits) - 1), f"0{(bits + 3) // 4}x")


def emit(
    program: Program,
    out_dir: Path,
    inputs: Mapping[str, npt.NDArray[np.int64]] | None = None,
    expected: Mapping[str, npt.NDArray[np.int64]] | None = None,
) -> list[Path]:
    """Write every file of the program into ``out_dir``.

    Args:
        program: from ``lower``.
        out_dir: an existing folder.
        inputs: stimulus, ``[batch, time, *shape]`` integers per input name; default: one
            sample of ``DEFAULT_STEPS`` random spikes (seed 0) of each input's shape.
        expected: the simulator's output per population and product unit for ``inputs`` (the
            testbench checks against it with ``+check``); default: computed with the sim
            backend.

    Returns:
        The written files.
    """
    if inputs is None:
        rng = np.random.default_rng(0)
        inputs = {  # shaped like the input ([batch, time, *shape]): the simulator checks it
            k: (rng.random((1, DEFAULT_STEPS, *shape)) < 0.3).astype(np.int64)
            for k, shape in program.net.inputs.items()
        }
    if expected is None:
        trace = simulate(program.net, inputs)
        expected = {
            k: np.asarray(v, np.int64) for k, v in {**trace.populations, **trace.products}.items()
        }
    batch, steps = next(iter(inputs.values())).shape[:2]
    files = {
        "netlist.json": json.dumps(netlist(program), indent=2) + "\n",
        "snn_top.v": top_verilog(program),
        "tb.v": testbench(program, batch, steps),
        "stim.mem": stimulus(program, inputs),
        "expected.mem": expected_outputs(program, expected),
    }
    for name in rtl_files(program)[1:]:
        files[name] = (resources.files(__package__) / "templates" / name).read_text()
    for core in program.cores:
        files.update(core_memories(program, core))
    for unit in program.units:
        files.update(unit_memories(program, unit))
    paths = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        paths.append(out_dir / name)
    return paths


def core_memories(program: Program, core: Core) -> dict[str, str]:
    """The three init files of a core: projection table, weights and neuron parameters."""
    spec = program.net.numeric
    fixed = core.pop.fixed
    assert spec is not None
    assert fixed is not None
    proj = "".join(f"{p.src_size:04x}{p.delay:04x}{hexword(p.exp, 8)}\n" for p in core.projections)
    rows = np.concatenate([p.codes.toarray() for p in core.projections], axis=1)
    wb = spec.weight.width
    weights = "".join(
        f"{hexword(_pack(group[:, col], wb), core.lanes * wb)}\n"
        for group in _groups(core, rows)
        for col in range(core.row)
    )
    db, tb, bw = spec.decay.width, spec.threshold.width, core.bias_width
    vth = fixed.vth if fixed.vth is not None else np.zeros(core.pop.size, np.int64)
    bias = fixed.bias_mant << fixed.bias_exp
    words = [
        (int(du) << (db + tb + bw))
        | (int(dv) << (tb + bw))
        | (int(th) << bw)
        | (int(b) & ((1 << bw) - 1))
        for du, dv, th, b in zip(fixed.du, fixed.dv, vth, bias, strict=True)
    ]
    pw = 2 * db + tb + bw
    params = "".join(
        f"{hexword(_pack(group[:, 0], pw), core.lanes * pw)}\n"
        for group in _groups(core, np.array(words, dtype=object)[:, None])
    )
    c = core.index
    return {
        f"core{c}_proj.mem": proj,
        f"core{c}_weights.mem": weights,
        f"core{c}_params.mem": params,
    }


def unit_memories(program: Program, unit: ProductUnit) -> dict[str, str]:
    """The index ROMs of a product unit: per operand, the source index of each element."""
    ib = program.index_bits
    return {
        f"unit{unit.index}_{op.role}_index.mem": "".join(
            f"{hexword(int(j), ib)}\n" for j in op.index
        )
        for op in unit.operands
    }


def _groups(core: Core, rows: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    """Rows (one per neuron) in groups of ``core.lanes``, the last one padded with zeros."""
    padded = np.zeros((core.groups * core.lanes, rows.shape[1]), dtype=rows.dtype)
    padded[: len(rows)] = rows
    return list(padded.reshape(core.groups, core.lanes, -1))


def _pack(values: npt.NDArray[Any], bits: int) -> int:
    """One word holding ``values`` as ``bits``-bit fields, the first in the lowest bits."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (lane * bits) for lane, v in enumerate(values))


def netlist(program: Program) -> dict[str, Any]:
    """The documented netlist description (docs/FPGA.md, schema ``snn-deploy-fpga-netlist/1``)."""
    spec = program.net.numeric
    assert spec is not None
    core_of = {c.pop.name: c.index for c in program.cores}
    cores = []
    for c in program.cores:
        n, g, db = c.pop.size, c.groups, spec.decay.width
        cores.append(
            {
                "id": c.index,
                "population": c.pop.name,
                "type": c.pop.node_type,
                "neurons": n,
                "output": "spikes" if c.pop.spiking else "v",
                "spike_levels": c.pop.levels,
                "reset": c.pop.reset.value,
                "update_units": c.lanes,
                "widths": {
                    "source": c.xw,
                    "datapath": c.width,
                    "u": c.u_width,
                    "bias": c.bias_width,
                },
                "cycles_per_step": c.cycles_per_step,
                "memories": {
                    "projection_table": {
                        "file": f"core{c.index}_proj.mem",
                        "depth": len(c.projections),
                        "width": 40,
                    },
                    "weights": {
                        "file": f"core{c.index}_weights.mem",
                        "depth": g * c.row,
                        "width": c.lanes * spec.weight.width,
                    },
                    "params": {
                        "file": f"core{c.index}_params.mem",
                        "depth": g,
                        "width": c.lanes * (2 * db + spec.threshold.width + c.bias_width),
                    },
                    "state": {
                        "depth": g,
                        "width": c.lanes * (c.u_width + spec.voltage.width),
                    },
                },
                "incoming": [
                    {
                        "projection": p.name,
                        "source": p.src,
                        "kind": p.kind,
                        "size": p.src_size,
                        "delay": p.delay,
                        "exp": p.exp,
                        "weight_offset": int(off),
                        "history": {
                            "slots": p.depth,
                            "banks": p.src_lanes,
                            "width": p.width,
                            "bank_depth": p.depth * -(-p.src_size // p.src_lanes),
                        },
                    }
                    for p, off in zip(c.projections, _offsets(c), strict=True)
                    if p.kind != "none"
                ],
            }
        )
    unit_of = {u.unit.name: u.index for u in program.units}

    def origin(src: str) -> dict[str, Any]:
        if src in program.inputs:
            return {"input": src}
        return {"core": core_of[src]} if src in core_of else {"unit": unit_of[src]}

    routes = [
        {"from": origin(p.src), "to_core": c.index, "projection": p.name}
        for c in program.cores
        for p in c.projections
        if p.kind != "none"
    ] + [
        {"from": origin(op.src), "to_unit": u.index, "operand": op.role}
        for u in program.units
        for op in u.operands
    ]
    return {
        "schema": NETLIST_SCHEMA,
        "target": program.target,
        "device": program.board.device,
        "clock_mhz": program.board.clock_mhz,
        "numeric": {
            "weight_bits": spec.weight.width,
            "decay_bits": spec.decay.width,
            "state_bits": spec.voltage.width,
            "input_shift": spec.input_shift,
            "threshold_shift": spec.threshold_shift,
            "current_decay_offset": spec.current_decay_offset,
            "voltage_decay_offset": spec.voltage_decay_offset,
        },
        "cores": cores,
        "units": [_unit_netlist(program, u) for u in program.units],
        "routes": routes,
        "io": {
            "inputs": [
                {"name": k, "select": i, "size": n, "bits": INPUT_BITS}
                for i, (k, n) in enumerate(program.inputs.items())
            ],
            "outputs": [
                {"name": k, "source": v, **({"core": core_of[v]} if v in core_of else {})}
                for k, v in program.net.outputs.items()
            ],
            "index_bits": program.index_bits,
        },
        "timing": {
            "cycles_per_step": program.cycles_per_step,
            "input_cycles_per_step": program.input_cycles,
            "us_per_step": (program.cycles_per_step + program.input_cycles)
            / program.board.clock_mhz,
        },
    }


def _unit_netlist(program: Program, u: ProductUnit) -> dict[str, Any]:
    """A product unit's netlist entry (docs/FPGA.md §4)."""
    fixed = u.unit.fixed
    assert fixed is not None
    entry: dict[str, Any] = {
        "id": u.index,
        "product": u.unit.name,
        "type": type(u.unit).__name__,
        "elements": u.unit.size,
        "widths": {
            "output": fixed.output.width,
            **{op.role: op.xw for op in u.operands},
        },
        "cycles_per_step": u.cycles_per_step,
        "operands": [
            {
                "role": op.role,
                "source": op.src,
                "kind": op.kind,
                "index_file": f"unit{u.index}_{op.role}_index.mem",
                "history": {"slots": 2, "banks": op.src_lanes, "width": op.width},
            }
            for op in u.operands
        ],
    }
    if isinstance(u.unit, Attention):
        assert fixed.state is not None
        d = u.unit.size // u.unit.heads
        entry |= {
            "heads": u.unit.heads,
            "decay": list(u.unit.decay),
            "causal": u.unit.causal,
            "steps": u.unit.steps,
            "memories": {
                "state": {"depth": u.unit.size * d, "width": fixed.state.width},
                **(
                    {}
                    if u.unit.causal
                    else {
                        "queries": {"depth": u.unit.steps * u.unit.size, "width": u.operands[0].xw}
                    }
                ),
            },
        }
    else:
        entry["shift"] = fixed.shift
    return entry


def _offsets(core: Core) -> npt.NDArray[np.int64]:
    return np.cumsum([0, *(p.src_size for p in core.projections)])[:-1]


def top_verilog(program: Program) -> str:
    """``snn_top``: the step controller, one ``core<c>_unit`` per core, one ``unit<u>_<kind>``
    per product unit and the routing."""
    ib = program.index_bits
    buses = _buses(program)
    units, insts, ports = [], [], []
    for i, lanes, bits in buses.values():
        ports.append(
            f"    output wire out_valid_{i}, output wire [{ib - 1}:0] out_group_{i},"
            f" output wire [{lanes * bits - 1}:0] out_vals_{i}"
        )
    for c in program.cores:
        i = c.index
        srcs = {p.src for p in c.projections if p.kind in ("spikes", "values")}
        hists, vals = [], []
        for k, p in enumerate(c.projections):
            h = f"hq_{k}"
            if p.kind == "none":
                vals.append(f"{{{c.xw}{{1'b0}}}}")
                continue
            hists.append(_buffer(program, k, p, p.depth, "rd_idx"))
            vals.append(_extend(h, p.kind, p.width, c.xw))
        spec = program.net.numeric
        assert spec is not None
        params = {
            "N": c.pop.size,
            "P": c.lanes,
            "K": len(c.projections),
            "ROW": c.row,
            "IB": ib,
            "XW": c.xw,
            "W": c.width,
            "UW": c.u_width,
            "WB": spec.weight.width,
            "DB": spec.decay.width,
            "DU_OFF": spec.current_decay_offset,
            "DV_OFF": spec.voltage_decay_offset,
            "TB": spec.threshold.width,
            "TH_SHIFT": spec.threshold_shift,
            "IN_SHIFT": spec.input_shift,
            "BW": c.bias_width,
            "SB": spec.voltage.width,
            "SPIKING": int(c.pop.spiking),
            "SUBTRACT": int(c.pop.reset is ResetMode.SUBTRACT),
            "GE": int(c.pop.threshold_compare is ThresholdCompare.GE),
            # binary cores keep the template defaults (LEVELS = LB = 1): their RTL is unchanged
            **(
                {"LEVELS": c.pop.levels, "LB": c.pop.levels.bit_length()}
                if c.pop.levels > 1
                else {}
            ),
            "PROJ_FILE": f'"core{i}_proj.mem"',
            "WEIGHT_FILE": f'"core{i}_weights.mem"',
            "PARAM_FILE": f'"core{i}_params.mem"',
        }
        units.append(
            _wrapper(
                program,
                f"core{i}_unit",
                f"core {i}: population {c.pop.name!r}",
                srcs,
                c.lanes * spec.voltage.width,
            )
            + f"    wire [{ib - 1}:0] rd_idx;\n"
            + "".join(hists)
            + f"    lif_core #({_plist(params)}) core (\n"
            f"        .clk(clk), .rst(rst), .start(start), .t(t), .busy(busy), .rd_idx(rd_idx),\n"
            f"        .rd_vals({{{', '.join(reversed(vals))}}}),\n"
            f"        .out_valid(out_valid), .out_group(out_group), .out_vals(out_vals));\n"
            f"endmodule\n"
        )
        insts.append(_instance(buses, f"core{i}_unit", i, srcs))
    for u in program.units:
        kind = type(u.unit).__name__.lower()
        module = f"unit{u.index}_{kind}"
        srcs = {op.src for op in u.operands if op.src not in program.inputs}
        buffers = "".join(
            _buffer(program, k, op, 2, f"{op.role}_raddr") for k, op in enumerate(u.operands)
        )
        raddrs = ", ".join(f"{op.role}_raddr" for op in u.operands)
        conns = "".join(
            f" .{op.role}_raddr({op.role}_raddr),"
            f" .{op.role}_val({_extend(f'hq_{k}', op.kind, op.width, op.xw)}),"
            for k, op in enumerate(u.operands)
        )
        units.append(
            _wrapper(
                program,
                module,
                f"unit {u.index}: {type(u.unit).__name__} {u.unit.name!r}",
                srcs,
                u.width,
            )
            + f"    wire [{ib - 1}:0] {raddrs};\n"
            + buffers
            + f"    {kind} #({_plist(_unit_params(program, u))}) unit (\n"
            f"        .clk(clk), .rst(rst), .start(start), .t(t), .busy(busy),\n"
            f"       {conns}\n"
            f"        .out_valid(out_valid), .out_group(out_group), .out_vals(out_vals));\n"
            f"endmodule\n"
        )
        insts.append(_instance(buses, module, u.index, srcs))
    n = len(buses)
    return (
        "// Generated by snn-deploy (FPGA backend). docs/FPGA.md describes the design.\n"
        + "\n".join(units)
        + "\nmodule snn_top (\n"
        "    input wire clk, input wire rst,\n"
        "    input wire new_sample,  // the next step is step 0 of a new sample\n"
        "    input wire start,       // run one time step (inputs already written)\n"
        "    output reg done,        // one-cycle pulse at the end of the step\n"
        "    output reg [31:0] t,\n"
        f"    input wire in_we, input wire [7:0] in_sel, input wire [{ib - 1}:0] in_idx,"
        f" input wire [{INPUT_BITS - 1}:0] in_val,\n" + ",\n".join(ports) + "\n);\n"
        f"    wire [{n - 1}:0] busy;\n"
        "    reg running;\n"
        "    wire advance = running && !(|busy);\n"
        "    always @(posedge clk) begin\n"
        "        done <= 0;\n"
        "        if (rst) begin running <= 0; t <= 0; end\n"
        "        else if (new_sample) t <= 0;\n"
        "        else if (start) running <= 1;\n"
        "        else if (advance) begin running <= 0; done <= 1; t <= t + 1; end\n"
        "    end\n" + "".join(insts) + "endmodule\n"
    )


def _buses(program: Program) -> dict[str, tuple[int, int, int]]:
    """Source name -> (bus number, lanes, bits per lane) of every core and product unit: the
    ``out_valid_<n>``, ``out_group_<n>``, ``out_vals_<n>`` that history buffers listen to."""
    sb = program.net.numeric.voltage.width  # type: ignore[union-attr]
    return {
        **{c.pop.name: (c.index, c.lanes, sb) for c in program.cores},
        **{u.unit.name: (u.index, 1, u.width) for u in program.units},
    }


def _plist(params: Mapping[str, object]) -> str:
    return ", ".join(f".{k}({v})" for k, v in params.items())


def _unit_params(program: Program, u: ProductUnit) -> dict[str, object]:
    """The parameters of ``attention.v`` or ``gate.v`` for a unit (widths from its operands and
    its ``ProductFixed``)."""
    fixed = u.unit.fixed
    assert fixed is not None
    ops = {op.role: op for op in u.operands}
    files = {f"{r.upper()}_FILE": f'"unit{u.index}_{r}_index.mem"' for r in ops}
    if isinstance(u.unit, Attention):
        assert fixed.state is not None
        decay = "".join(hexword(d, 8) for d in reversed(u.unit.decay))
        return {
            "DIM": u.unit.size,
            "HEADS": u.unit.heads,
            "IB": program.index_bits,
            "QW": ops["q"].xw,
            "KW": ops["k"].xw,
            "VW": ops["v"].xw,
            "Q_BIN": int(ops["q"].binary),
            "KV_BIN": int(ops["k"].binary and ops["v"].binary),
            "SW": fixed.state.width,
            "OW": fixed.output.width,
            "DECAY": f"{8 * u.unit.heads}'h{decay}",
            "CAUSAL": int(u.unit.causal),
            "STEPS": u.unit.steps,
            **files,
        }
    return {
        "SIZE": u.unit.size,
        "IB": program.index_bits,
        "AW": ops["a"].xw,
        "GW": ops["g"].xw,
        "G_BIN": int(ops["g"].binary),
        "SHIFT": fixed.shift,
        "OW": fixed.output.width,
        **files,
    }


def _wrapper(program: Program, module: str, title: str, srcs: set[str], out_bits: int) -> str:
    """The header of a core's or unit's wrapper module: the step and input ports, the buses of
    the sources in ``srcs`` and its own output bus of ``out_bits`` bits."""
    ib = program.index_bits
    src_ports = "".join(
        f", input wire out_valid_{d}, input wire [{ib - 1}:0] out_group_{d},"
        f" input wire [{lanes * bits - 1}:0] out_vals_{d}"
        for name, (d, lanes, bits) in _buses(program).items()
        if name in srcs
    )
    return (
        f"// {title}\n"
        f"(* keep_hierarchy *)\n"
        f"module {module} (\n"
        f"    input wire clk, input wire rst, input wire start, input wire [31:0] t,"
        f" input wire advance, output wire busy,\n"
        f"    input wire in_we, input wire [7:0] in_sel, input wire [{ib - 1}:0] in_idx,"
        f" input wire [{INPUT_BITS - 1}:0] in_val{src_ports},\n"
        f"    output wire out_valid, output wire [{ib - 1}:0] out_group,"
        f" output wire [{out_bits - 1}:0] out_vals\n);\n"
    )


def _instance(buses: dict[str, tuple[int, int, int]], module: str, i: int, srcs: set[str]) -> str:
    """The instance of a wrapper in ``snn_top``, connected to its sources' buses."""
    src_conns = "".join(
        f", .out_valid_{d}(out_valid_{d}), .out_group_{d}(out_group_{d}),"
        f" .out_vals_{d}(out_vals_{d})"
        for name, (d, _, _) in buses.items()
        if name in srcs
    )
    return (
        f"    {module} u{i} (.clk(clk), .rst(rst), .start(start), .t(t),"
        f" .advance(advance), .busy(busy[{i}]), .in_we(in_we), .in_sel(in_sel),"
        f" .in_idx(in_idx), .in_val(in_val){src_conns}, .out_valid(out_valid_{i}),"
        f" .out_group(out_group_{i}), .out_vals(out_vals_{i}));\n"
    )


def _buffer(
    program: Program, k: int, port: CoreProjection | OperandPort, depth: int, raddr: str
) -> str:
    """History buffer ``hist_<k>`` (output ``hq_<k>``, ``depth`` slots) of a projection's or
    operand's source values, written by the host (an input) or by the source's bus, read at
    ``raddr``."""
    width = port.width
    if port.kind == "input":
        sel = list(program.inputs).index(port.src)
        we, idx, val = f"in_we && in_sel == 8'd{sel}", "in_idx", f"in_val[{width - 1}:0]"
    else:
        d, _, bits = _buses(program)[port.src]
        lanes = ", ".join(
            f"out_vals_{d}[{lane * bits + width - 1}:{lane * bits}]"
            for lane in reversed(range(port.src_lanes))
        )
        we, idx, val = f"out_valid_{d}", f"out_group_{d}", f"{{{lanes}}}"
    return (
        f"    wire [{width - 1}:0] hq_{k};\n"
        f"    hist_ram #(.NSRC({port.src_size}), .D({depth}), .W({width}),"
        f" .P({port.src_lanes}), .IB({program.index_bits})) hist_{k} (.clk(clk), .rst(rst),"
        f" .advance(advance), .we({we}), .wgroup({idx}), .wdata({val}),"
        f" .raddr({raddr}), .q(hq_{k}));\n"
    )


def _extend(h: str, kind: str, width: int, xw: int) -> str:
    """``h`` sign-extended to ``xw`` bits; a spike count is unsigned (zero-extended)."""
    fill = xw - width
    ext = "1'b0" if kind == "spikes" else f"{h}[{width - 1}]"
    return f"{{{{{fill}{{{ext}}}}}, {h}}}" if fill else h


def testbench(program: Program, batch: int, steps: int) -> str:
    """Self-checking testbench: drives ``stim.mem``; with ``+check`` compares every output
    (cores' and product units') with ``expected.mem`` and prints ``PASS``, or the first mismatch
    and ``FAIL n mismatches`` through ``$fatal`` (so ``vvp`` exits with status 1); prints
    ``SAMPLE_DONE n`` (flushed, for progress) after the ``n``-th sample and the cycles per step
    at the end; always writes ``dump.txt`` (``sample step core index output u v`` per neuron
    update; u and v are read from inside the core, after the overflow rules and the reset; a
    product unit's rows carry its bus number as ``core`` and 0 for u and v)."""
    ib = program.index_bits
    sb = program.net.numeric.voltage.width  # type: ignore[union-attr]
    ew = expected_bits(program)
    e_core = "e" if ew == sb else f"e[{sb - 1}:0]"
    n_in = sum(program.inputs.values())
    sizes = [*(c.pop.size for c in program.cores), *(u.unit.size for u in program.units)]
    n_out = sum(sizes)
    base = np.cumsum([0, *sizes])
    wires = "".join(
        f"    wire ov{c.index}; wire [{ib - 1}:0] og{c.index};"
        f" wire [{c.lanes * sb - 1}:0] oq{c.index};\n"
        f"    reg [{c.lanes * c.width - 1}:0] su{c.index}, sv{c.index};\n"
        for c in program.cores
    ) + "".join(
        f"    wire ov{u.index}; wire [{ib - 1}:0] og{u.index};"
        f" wire [{u.width - 1}:0] oq{u.index};\n"
        for u in program.units
    )
    conns = "".join(
        f", .out_valid_{i}(ov{i}), .out_group_{i}(og{i}), .out_vals_{i}(oq{i})"
        for i, _, _ in _buses(program).values()
    )
    checks = "".join(
        f"        if (dut.u{i}.core.update) begin\n"
        f"            su{i} <= dut.u{i}.core.u_all;\n"
        f"            sv{i} <= dut.u{i}.core.v_all;\n"
        f"        end\n"
        f"        if (ov{i}) for (l = 0; l < {c.lanes}; l = l + 1) begin\n"
        f"            n_idx = og{i} * {c.lanes} + l;\n"
        f"            if (n_idx < {c.pop.size}) begin\n"
        f'                $fdisplay(fd, "%0d %0d {i} %0d %0d %0d %0d", s, t, n_idx,'
        f" $signed(oq{i}[l * {sb} +: {sb}]), $signed(su{i}[l * {c.width} +: {c.width}]),"
        f" $signed(sv{i}[l * {c.width} +: {c.width}]));\n"
        f"                e = expect[(s * T + t) * NOUT + {base[i]} + n_idx];\n"
        f"                if (check && oq{i}[l * {sb} +: {sb}] !== {e_core}) begin\n"
        f'                    if (errors == 0) $display("first mismatch: sample %0d step %0d'
        f' core {i} neuron %0d expected %0d got %0d", s, t, n_idx, $signed(e),'
        f" $signed(oq{i}[l * {sb} +: {sb}]));\n"
        f"                    errors = errors + 1;\n"
        f"                end\n"
        f"            end\n"
        f"        end\n"
        for i, c in enumerate(program.cores)
    ) + "".join(
        f"        if (ov{i}) begin\n"
        f'            $fdisplay(fd, "%0d %0d {i} %0d %0d 0 0", s, t, og{i}, $signed(oq{i}));\n'
        f"            e = expect[(s * T + t) * NOUT + {base[i]} + og{i}];\n"
        f"            if (check && oq{i} !== e[{u.width - 1}:0]) begin\n"
        f'                if (errors == 0) $display("first mismatch: sample %0d step %0d'
        f' unit {i} element %0d expected %0d got %0d", s, t, og{i}, $signed(e),'
        f" $signed(oq{i}));\n"
        f"                errors = errors + 1;\n"
        f"            end\n"
        f"        end\n"
        for i, u in ((u.index, u) for u in program.units)
    )
    return f"""// Generated by snn-deploy: self-checking testbench for snn_top.
`timescale 1ns/1ps
module tb;
    localparam S = {batch}, T = {steps}, NIN = {n_in}, NOUT = {n_out};
    reg clk = 0;
    always #5 clk = ~clk;
    reg rst = 1, new_sample = 0, start = 0, in_we = 0;
    reg [7:0] in_sel = 0;
    reg [{ib - 1}:0] in_idx = 0;
    reg [{INPUT_BITS - 1}:0] in_val = 0;
    wire done;
    wire [31:0] t;
{wires}    snn_top dut (.clk(clk), .rst(rst), .new_sample(new_sample), .start(start), .done(done),
        .t(t), .in_we(in_we), .in_sel(in_sel), .in_idx(in_idx), .in_val(in_val){conns});
    reg [{8 + ib + INPUT_BITS - 1}:0] stim [0:S*T*NIN-1];   // {{select, index, value}}
    reg [{ew - 1}:0] expect [0:S*T*NOUT-1];
    reg [{ew - 1}:0] e;
    integer s = 0, step, n, errors = 0, fd, cycles, max_cycles = 0, l, n_idx;
    reg check;
    always @(posedge clk) begin
{checks}    end
    initial begin
        $readmemh("stim.mem", stim);
        check = $test$plusargs("check");
        if (check) $readmemh("expected.mem", expect);
        fd = $fopen("dump.txt", "w");
        repeat (2) @(posedge clk);
        rst <= 0;
        for (s = 0; s < S; s = s + 1) begin
            @(posedge clk) new_sample <= 1;
            @(posedge clk) new_sample <= 0;
            for (step = 0; step < T; step = step + 1) begin
                for (n = 0; n < NIN; n = n + 1) begin
                    {{in_sel, in_idx, in_val}} <= stim[(s * T + step) * NIN + n];
                    in_we <= 1;
                    @(posedge clk);
                end
                in_we <= 0;
                start <= 1;
                @(posedge clk);
                start <= 0;
                cycles = 1;
                while (!done) begin @(posedge clk); cycles = cycles + 1; end
                if (cycles > max_cycles) max_cycles = cycles;
            end
            $display("SAMPLE_DONE %0d", s + 1);  // progress, read while vvp runs
            $fflush;
        end
        @(posedge clk);
        $fclose(fd);
        $display("CYCLES_PER_STEP %0d", max_cycles);
        if (check) begin
            if (errors == 0) $display("PASS"); else $fatal(1, "FAIL %0d mismatches", errors);
        end
        $finish;
    end
endmodule
"""


def stimulus(program: Program, inputs: Mapping[str, npt.NDArray[np.int64]]) -> str:
    """``stim.mem``: per sample, step and input value one word ``{select, index, value}``."""
    ib = program.index_bits
    bits = 8 + ib + INPUT_BITS

    def word(sel: int, j: int, v: int) -> int:
        return (sel << (ib + INPUT_BITS)) | (j << INPUT_BITS) | (v & ((1 << INPUT_BITS) - 1))

    arrays = [np.asarray(inputs[k]) for k in program.inputs]
    batch, steps = arrays[0].shape[:2]
    lines = []
    for b in range(batch):
        for t in range(steps):
            for sel, x in enumerate(arrays):
                lines += [
                    f"{hexword(word(sel, j, int(v)), bits)}\n"
                    for j, v in enumerate(x[b, t].ravel())
                ]
    return "".join(lines)


def expected_bits(program: Program) -> int:
    """Width of an ``expected.mem`` word: the cores' 24-bit outputs or a wider product unit's."""
    sb = program.net.numeric.voltage.width  # type: ignore[union-attr]
    return max([sb, *(u.width for u in program.units)])


def expected_outputs(program: Program, expected: Mapping[str, npt.NDArray[np.int64]]) -> str:
    """``expected.mem``: per sample and step every core's outputs, in core order, then every
    product unit's."""
    names = [*(c.pop.name for c in program.cores), *(u.unit.name for u in program.units)]
    stacked = np.concatenate([np.asarray(expected[k]) for k in names], axis=2)
    ew = expected_bits(program)
    return "".join(f"{hexword(int(v), ew)}\n" for v in stacked.ravel())
