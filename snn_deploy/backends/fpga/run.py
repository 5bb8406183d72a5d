"""Simulate the emitted RTL with Icarus Verilog and read the outputs back as a ``Trace``."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Progress, Trace, check_inputs
from snn_deploy.backends.fpga.emit import TESTBENCH, emit, rtl_files
from snn_deploy.backends.fpga.lower import INPUT_BITS, Program
from snn_deploy.errors import BackendUnavailableError, InputFileError, MismatchError

SIMULATOR = ("iverilog", "vvp")
SAMPLE_DONE = "SAMPLE_DONE"
"""The testbench prints ``SAMPLE_DONE n`` (and flushes) when it has run ``n`` samples."""


def simulate_rtl(
    program: Program,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    expected: Mapping[str, npt.NDArray[np.int64]] | None = None,
    record_state: bool = False,
    design: Path | None = None,
    progress: Progress | None = None,
) -> tuple[Trace, int]:
    """Run the RTL on ``inputs`` in Icarus Verilog.

    Args:
        program: from ``lower``.
        inputs: ``[batch, time, *shape]`` integers per input name, within ``INPUT_BITS``.
        expected: every population's and product unit's outputs; if given, the testbench
            checks its outputs against these (``vvp +check``, which exits non-zero on a
            mismatch).
        record_state: also return every population's ``u`` and ``v``.
        design: a folder holding the emitted design (a compile output folder): its Verilog
            and memory files are simulated instead of freshly generated ones; the testbench
            and its vectors are always generated for ``inputs``.
        progress: called as ``progress(samples_done, samples)`` as the simulator finishes
            each sample (read from its output while it runs).

    Returns:
        The trace (every population's and product unit's output) and the measured cycles per
        time step (the step itself, without loading the inputs).

    Raises:
        BackendUnavailableError: Icarus Verilog is not installed.
        InputFileError: ``design`` lacks one of the design's files.
        MismatchError: the testbench found outputs that differ from ``expected``.
    """
    data = {k: _integers(k, v) for k, v in check_inputs(program.net, inputs).items()}
    missing = [tool for tool in SIMULATOR if shutil.which(tool) is None]
    if missing:
        raise BackendUnavailableError(
            f"the fpga backend runs the RTL in Icarus Verilog ({', '.join(missing)} not found);"
            " install it with: apt-get install iverilog"
        )
    batch, steps = next(iter(data.values())).shape[:2]
    with tempfile.TemporaryDirectory(prefix="snn-fpga-") as tmp:
        d = Path(tmp)
        written = emit(program, d, data, expected or _zeros(program, batch, steps))
        if design is not None:
            _use_design(design, [f for f in written if f.suffix in (".v", ".mem")])
        _call(["iverilog", "-g2005", "-o", "sim.vvp", "tb.v", *rtl_files(program)], d)
        log = _call(
            ["vvp", "-n", "sim.vvp", *(["+check"] if expected else [])],
            d,
            on_line=None if progress is None else _samples_done(progress, batch),
        )
        dump = np.loadtxt(d / "dump.txt", dtype=np.int64, ndmin=2).reshape(-1, 7)
    cycles = int(log.split("CYCLES_PER_STEP")[1].split()[0])
    columns: list[dict[str, npt.NDArray[np.int64]]] = [{}, {}, {}]  # output, u, v
    for core in program.cores:
        rows = dump[dump[:, 2] == core.index]
        for col, table in enumerate(columns):
            table[core.pop.name] = np.zeros((batch, steps, core.pop.size), np.int64)
            table[core.pop.name][rows[:, 0], rows[:, 1], rows[:, 3]] = rows[:, 4 + col]
    products = {}
    for unit in program.units:
        rows = dump[dump[:, 2] == unit.index]
        products[unit.unit.name] = np.zeros((batch, steps, unit.unit.size), np.int64)
        products[unit.unit.name][rows[:, 0], rows[:, 1], rows[:, 3]] = rows[:, 4]
    pops, us, vs = columns if record_state else (columns[0], {}, {})
    sources = {**data, **pops}
    outputs = {k: sources[v] for k, v in program.net.outputs.items()}
    return Trace(outputs=outputs, populations=pops, u=us, v=vs, products=products), cycles


def _integers(name: str, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    lo, hi = -(1 << (INPUT_BITS - 1)), (1 << (INPUT_BITS - 1)) - 1
    if not np.array_equal(x, np.rint(x)) or x.min(initial=0) < lo or x.max(initial=0) > hi:
        raise InputFileError(
            f"input {name!r}: the fpga backend takes integer inputs in [{lo}, {hi}]"
        )
    return x.astype(np.int64)


def _zeros(program: Program, batch: int, steps: int) -> dict[str, npt.NDArray[np.int64]]:
    sizes = {
        **{c.pop.name: c.pop.size for c in program.cores},
        **{u.unit.name: u.unit.size for u in program.units},
    }
    return {k: np.zeros((batch, steps, n), np.int64) for k, n in sizes.items()}


def _use_design(design: Path, files: list[Path]) -> None:
    """Overwrite the generated design files (not the testbench) with ``design``'s."""
    for f in files:
        if f.name in TESTBENCH:
            continue
        if not (design / f.name).is_file():
            raise InputFileError(f"{design} has no {f.name}: is it an fpga compile output folder?")
        shutil.copyfile(design / f.name, f)


def _samples_done(progress: Progress, batch: int) -> Callable[[str], None]:
    """A reader of the testbench's output lines that reports each ``SAMPLE_DONE n``."""

    def read(line: str) -> None:
        if line.startswith(SAMPLE_DONE):
            progress(int(line.split()[1]), batch)

    return read


def _call(cmd: list[str], cwd: Path, *, on_line: Callable[[str], None] | None = None) -> str:
    """Run a tool and return its output (stdout and stderr), handing each line to
    ``on_line`` as it comes; a failing exit status raises: the testbench's check (``FAIL``)
    as a mismatch, anything else as a bug. An interruption kills the tool."""
    lines = []
    with subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            assert proc.stdout is not None  # stdout=PIPE
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)
            status = proc.wait()
        except BaseException:  # Ctrl-C, SIGTERM (as KeyboardInterrupt), a failing on_line
            proc.kill()
            raise
    log = "".join(lines)
    if status != 0 and "FAIL" in log:
        verdict = re.findall(r"first mismatch: .*|FAIL \d+ mismatches", log)
        raise MismatchError(f"the RTL testbench exited with status {status}: {'; '.join(verdict)}")
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{log}")
    return log
