"""The ``snn-deploy`` command: a thin click shell over ``snn_deploy.api``.

Every failure prints one line ``error: ...`` and exits with the code of its class (the table in
``snn_deploy.errors``); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

from snn_deploy import __version__, api, limits, outdir
from snn_deploy import evaluate as evaluation_api
from snn_deploy.engine import open_engine
from snn_deploy.errors import (
    EXIT_INTERNAL,
    BudgetError,
    DesignRuleError,
    InputFileError,
    Interrupted,
    MismatchError,
    ResourceLimitError,
    SnnDeployError,
    UsageError,
)
from snn_deploy.ir import nodes as n
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import DEFAULT_DT, Net
from snn_deploy.ir.types import ResetMode
from snn_deploy.passes import get_all_passes
from snn_deploy.reports import evaluation, verification
from snn_deploy.reports.compare import MISSING, changes, figures, side_by_side
from snn_deploy.reports.gates import check_budgets
from snn_deploy.reports.html import side_by_side_html
from snn_deploy.reports.render import summary, table, to_json
from snn_deploy.target.load import available, load_target


class _Finite(click.FloatRange):
    """A ``FloatRange`` that refuses NaN and infinities (NaN passes every range comparison)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


MODEL = click.Path(exists=False, dir_okay=True, path_type=Path)
_T = TypeVar("_T")
dt_option = click.option(
    "--dt",
    type=_Finite(min=0, min_open=True),
    default=None,
    help=(
        "Seconds per time step used to discretise NIR neurons "
        f"[default: a checkpoint's dt, else {DEFAULT_DT:g}]."
    ),
)
reset_option = click.option(
    "--reset",
    type=click.Choice([m.value for m in ResetMode]),
    default=None,
    help="Reset mode of every spiking neuron (NIR files do not record it).",
)
exporter_option = click.option(
    "--exporter",
    default=None,
    help=(
        "The framework whose NIR exporter wrote the .nir file (snntorch, norse, sinabs, "
        "spikingjelly, rockpool, spyx; NAME{dt=SECONDS} for its time step; lava-dl for .net): "
        "read it with that exporter's conventions (docs/FRONTENDS.md §7)."
    ),
)
trust_option = click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow a pickled torch.nn.Module: loading it runs code from the file.",
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as JSON on stdout (an error is still one line on stderr).",
)
time_first_option = click.option(
    "--time-first",
    is_flag=True,
    help=(
        "Input arrays are [time, batch, *shape] (snnTorch's and Norse's layout), not "
        "[batch, time, *shape]."
    ),
)
target_option = click.option(
    "--target",
    "-t",
    default="sim",
    show_default=True,
    help="Target name (see `snn-deploy targets`) or a target TOML file.",
)


class _Size(click.ParamType[int, Any]):
    """A byte size such as ``8G``, ``512M`` or ``1000000`` (``limits.parse_size``)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return limits.parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def max_memory_option(command: Callable[..., None]) -> Callable[..., None]:
    """``--max-memory SIZE``: the command runs under ``limits.memory_limit(SIZE)``."""

    @click.option(
        "--max-memory",
        type=_Size(),
        default=None,
        help=(
            "Refuse models, inputs and compiles estimated to need more memory than SIZE "
            "(e.g. 8G, 512M; default: half the physical memory)."
        ),
    )
    @functools.wraps(command)
    def run(*args: Any, max_memory: int | None, **kwargs: Any) -> None:
        with limits.memory_limit(max_memory):
            command(*args, **kwargs)

    return run


_LOG_EVERY_S = 5.0
"""In a log (stderr not a terminal), progress lines come at most this often, so a quick
command's log holds only its results."""


class _Progress:
    """Progress of a long run on stderr, ``label: 300/1000 samples (30.0 %), 20.0 samples/s,
    ETA 35 s`` (``evaluate.eta``): on a terminal one line rewritten in place at each report;
    in a log (stderr not a terminal) a plain line at each further tenth of the work, at most
    every ``_LOG_EVERY_S`` seconds, and at its end, once the command has run that long (a
    quick command's log holds only its results). The first report is where the run starts
    (an evaluation's resumed samples, a simulation's first step): the rate counts from it. A
    program run's unit (``simulating``, ``verifying``) is left out: ``sim`` reports time
    steps, the other backends samples."""

    def __init__(self, label: str, unit: str) -> None:
        self.label, self.unit = label, unit
        self.created = self.start = self.last = time.perf_counter()
        self.first: int | None = None
        self.tenths = self.width = 0

    def __call__(self, done: int, total: int) -> None:
        now, end = time.perf_counter(), done >= total
        if self.first is None:  # the rate counts from here
            self.first, self.start, self.tenths = done, now, 10 * done // max(total, 1)
            if not end:
                return
        eta = evaluation_api.eta(done, total, now - self.start, self.first, self.unit)
        line = f"{self.label}: {eta}"
        if _interactive():  # padded over a longer line before it
            self.width = max(self.width, len(line))
            click.echo(f"\r{line:<{self.width}}", err=True, nl=end)
            return
        if now - self.created < _LOG_EVERY_S:
            return
        tenths = 10 * done // max(total, 1)
        if end or (tenths > self.tenths and now - self.last >= _LOG_EVERY_S):
            click.echo(line, err=True)
            self.tenths, self.last = tenths, now


def _interactive() -> bool:
    """Whether stderr is a terminal: rewritten lines go only there, never into logs or pipes,
    which get sparse plain lines."""
    return sys.stderr.isatty()


class _Cli(click.Group):
    """Every failure ends as one ``error: ...`` line and an exit code (``snn_deploy.errors``).

    SIGTERM is turned into the same interruption as Ctrl-C, so a killed compile cleans up its
    temporary folder and stops its Yosys/Icarus children exactly like an interrupted one.
    """

    def main(self, args: Any = None, prog_name: Any = None, **extra: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
        extra.pop("standalone_mode", None)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                super().main(argv, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # bad option or argument: click's message, one line
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx else ""
            _fail(f"{exc.format_message()}{where}", UsageError.exit_code)
        except SnnDeployError as exc:
            if debug:
                raise
            _fail(str(exc), exc.exit_code)
        except MemoryError:
            if debug:
                raise
            _fail(
                "out of memory; see --max-memory, or compile a smaller network",
                ResourceLimitError.exit_code,
            )
        except Exception as exc:
            if debug:
                raise
            _fail(
                f"internal error ({type(exc).__name__}: {exc}); this is a bug in snn-deploy: "
                "please report it with the output of `snn-deploy --debug ...`",
                EXIT_INTERNAL,
            )
        finally:
            signal.signal(signal.SIGTERM, previous)
        sys.exit(0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # as an error of ours: click would print a blank line
            raise Interrupted("interrupted; nothing was left half-written") from None


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """A Python warning (from the frontends, passes or backends) as one ``warning:`` line."""
    click.echo(f"warning: {message}", err=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Cli)
@click.version_option(__version__)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Compile spiking neural networks for neuromorphic hardware."""
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("model", type=MODEL)
@target_option
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help=(
        "Output folder (default: <model stem>.<target>/); an existing one is replaced only if "
        "snn-deploy wrote it."
    ),
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing output folder that snn-deploy did not write.",
)
@dt_option
@reset_option
@exporter_option
@trust_option
@click.option(
    "--inputs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Sample inputs (.npz) to run for the energy report and test vectors; an array "
        "'labels' [batch] of class indices adds the accuracy and a confusion matrix."
    ),
)
@click.option(
    "--passes",
    default=None,
    help="Pipeline replacing the default, e.g. 'lower{dt=0.001},quantize'.",
)
@click.option(
    "--calibrate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Calibration inputs (.npz): size registers by the float net's observed activity and "
        "round dense weights with error compensation on it."
    ),
)
@click.option(
    "--dump-ir-after",
    type=click.Choice([*get_all_passes(), "all"]),
    default=None,
    help="Print the IR after this pass (or 'all').",
)
@click.option(
    "--record-state",
    is_flag=True,
    help="Also write every population's u and v on --inputs into vectors.npz (for verify).",
)
@time_first_option
@json_option
@max_memory_option
def compile(
    model: Path,
    target: str,
    output: Path | None,
    force: bool,
    dt: float | None,
    reset: str | None,
    exporter: str | None,
    trust_pickle: bool,
    inputs: Path | None,
    calibrate: Path | None,
    passes: str | None,
    dump_ir_after: str | None,
    record_state: bool,
    time_first: bool,
    as_json: bool,
) -> None:
    """Compile MODEL for a target; writes artefacts and report.json atomically."""
    if record_state and inputs is None:
        raise UsageError("--record-state records the run on --inputs; give --inputs")
    out = output or model.with_name(f"{model.stem}.{load_target(target).name}")
    read: list[str] = []  # how the input files were read, for the text summary

    start = time.perf_counter()

    def dump(name: str, ir: object) -> None:
        # long compiles (10^8 synapses: a minute) show which pass is done; a log, once slow
        seconds = time.perf_counter() - start
        if _interactive() or seconds >= _LOG_EVERY_S:
            click.echo(f"{name} done ({seconds:.1f} s)", err=True)
        if dump_ir_after in (name, "all"):
            click.echo(f"--- IR after {name} ---\n{_describe(ir)}", err=True)

    x, y = api.read_labeled_inputs(inputs) if inputs else (None, None)
    result = api.compile(
        model,
        target,
        out_dir=out,
        dt=dt,
        reset=ResetMode(reset) if reset else None,
        trust_pickle=trust_pickle,
        inputs=x,
        labels=y,
        calibrate=api.read_inputs(calibrate) if calibrate else None,
        passes=passes,
        dump_after=dump,
        progress=_Progress("simulating", ""),
        force=force,
        reads=[p for p in (inputs, calibrate) if p is not None],
        record_state=record_state,
        exporter=exporter,
        time_first=time_first,
        note=read.append,
    )
    click.echo(to_json(result.report) if as_json else "\n".join([summary(result.report), *read]))
    _warn_silent(result.report["agreement"])
    if not as_json:
        click.echo(f"\nwrote {out}/: {', '.join(f.name for f in result.files)}")


@cli.command()
@click.argument("model", type=MODEL)
@target_option
@click.option(
    "--inputs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Input arrays (.npz), [batch, time, *shape] per Input node, or a vectors.npz.",
)
@click.option(
    "--float", "use_float", is_flag=True, help="Run the float reference instead of integers."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the inputs and outputs to this .npz, named like vectors.npz.",
)
@click.option("--force", is_flag=True, help="Let -o replace an existing file.")
@click.option(
    "--expect",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Vectors (.npz, e.g. a compile's vectors.npz) the outputs must equal; exit 6 if not.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the spike counts as JSON.")
@click.option(
    "--align",
    is_flag=True,
    help=(
        "Shift each output left by its latency (report.json 'latency'), so that its step t "
        "answers the source model's step t: the run goes on for that many extra steps of zero "
        "input, and the outputs keep all T steps (populations, u and v: T + latency)."
    ),
)
@time_first_option
@dt_option
@reset_option
@exporter_option
@trust_option
@max_memory_option
@click.pass_context
def simulate(
    ctx: click.Context,
    model: Path,
    target: str,
    inputs: Path,
    use_float: bool,
    output: Path | None,
    force: bool,
    expect: Path | None,
    as_json: bool,
    align: bool,
    time_first: bool,
    dt: float | None,
    reset: str | None,
    exporter: str | None,
    trust_pickle: bool,
) -> None:
    """Run MODEL (a model file or a compile output folder) on inputs; print spike counts.

    The target's backend runs it: `sim` the bit-accurate simulator, the Loihi targets Lava's
    fixed-point CPU simulation (one Lava run per sample), the fpga targets the RTL in Icarus.
    """
    if output is not None:
        reads = [model, inputs, *([expect] if expect is not None else [])]
        output = outdir.check_file(output, suffix=".npz", reads=reads, force=force)
    if model.is_dir() or model.suffix == ".npz":
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("dt", "reset", "exporter", "trust_pickle")
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            raise UsageError(
                f"{' and '.join(given)} would be ignored: {model} is already compiled "
                "(they apply to model files)"
            )
        net = api.load_program(model)
        latency = _folder_latency(model) if align else None
        x, lines = api.arrange_inputs(api.read_inputs(inputs), net, time_first=time_first)
    else:
        graph = api.load(
            model,
            reset=ResetMode(reset) if reset else None,
            dt=dt,
            trust_pickle=trust_pickle,
            exporter=exporter,
        )
        dt = api.graph_dt(graph, dt)
        x, lines = api.arrange_inputs(api.read_inputs(inputs), graph, time_first=time_first)
        # graded payloads size the registers, as in compile
        float_net, net = api.lower_and_quantize(graph, load_target(target), dt=dt, inputs=x)
        net = float_net if use_float else net
        latency = api.latency(graph, dt) if align else None
    expected = api.read_vectors(expect) if expect is not None else None
    trace = api.simulate(
        net,
        x,
        target=target,
        fixed=not use_float,
        record_state=expected is not None and verification.records_state(expected),
        progress=_Progress("simulating", ""),
        align=latency,
    )
    backend = "sim (float reference)" if use_float else load_target(target).backend
    counts = {
        name: {
            "type": net.populations[name].node_type,
            "neurons": net.populations[name].size,
            # events, a spike of any level counts once; None for a voltage output
            "spikes": int(np.count_nonzero(rec)) if net.populations[name].spiking else None,
        }
        for name, rec in trace.populations.items()
    }
    check = None
    if expected is not None:
        checks = verification.compare(expected, verification.vectors(x, trace))
        check = verification.Verification(str(expect), target, checks)
    if as_json:
        result = {"backend": backend, "target": target, "populations": counts}
        click.echo(to_json({**result, "expect": check and check.to_dict()}))
    else:
        click.echo("\n".join([f"ran on target {target} with the {backend} backend", *lines]))
        rows = [
            [k, c["type"], c["neurons"], "(voltage)" if c["spikes"] is None else c["spikes"]]
            for k, c in counts.items()
        ]
        click.echo(table(["population", "type", "neurons", "spikes"], rows))
    if output is not None:
        _save_npz(output, verification.vectors(x, trace))
        if not as_json:
            click.echo(f"wrote {output}")
    if check is not None:
        _finish_verification(check, as_json=as_json)


def _folder_latency(model: Path) -> dict[str, int]:
    """Each output's latency in steps, from the compile output folder's report.json."""
    if not model.is_dir():
        raise UsageError(
            f"--align needs the outputs' latency, which {model} does not hold: give its "
            "compile output folder or the model file"
        )
    latency = api.read_report(model).get("latency")
    if latency is None:
        raise InputFileError(
            f"{model}/report.json has no latency (written by an older snn-deploy): compile "
            "the model again for --align"
        )
    return {str(k): int(v) for k, v in latency.items()}


def _save_npz(path: Path, arrays: dict[str, Any]) -> None:
    outdir.write_file(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def _finish_verification(result: verification.Verification, *, as_json: bool) -> None:
    """Print each compared array (unless ``--json`` printed it); raise on a mismatch."""
    if not as_json:
        click.echo("\n".join(c.describe() for c in result.checks))
    if not result.passed:
        raise MismatchError(result.summary())


ray_option = click.option(
    "--ray",
    default=None,
    metavar="ADDRESS",
    help="Run on a Ray cluster: 'auto' (the one started on this machine) or HOST:PORT.",
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes (with --ray: tasks at once; default: the cluster's CPUs).",
)
shard_size_option = click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=evaluation_api.SHARD_SIZE,
    show_default=True,
    help="Samples per shard (the unit of work and of resumption).",
)

dataset_option = click.option(
    "--inputs",
    "data",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="The data set: a folder of .npz shards, a folder of .npy arrays, or an .npz file.",
)
labels_option = click.option(
    "--labels", default=None, help="Name of the labels array [batch] in the data."
)


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@dataset_option
@labels_option
@time_first_option
@click.option(
    "--target",
    "-t",
    type=click.Choice(api.VERIFY_TARGETS),
    default=None,
    help=(
        "Where to run: sim, loihi-sim (Lava), rtl (Icarus) or xylosim (SynSense's Xylo "
        "simulator). Default: the folder's backend."
    ),
)
@click.option("--verify", is_flag=True, help="Compare every output value with sim; exit 6.")
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, help="Run the first N steps only."
)
@shard_size_option
@workers_option
@ray_option
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder (default: <FOLDER>.evaluate-<backend>/); the same run resumes.",
)
@click.option("--force", is_flag=True, help="Replace a results folder of another run or not ours.")
@json_option
@max_memory_option
def evaluate(
    folder: Path,
    data: Path,
    labels: str | None,
    time_first: bool,
    target: str | None,
    verify: bool,
    steps: int | None,
    shard_size: int,
    workers: int | None,
    ray: str | None,
    output: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Evaluate a compile output FOLDER on a whole data set: accuracy, agreement, energy.

    The set runs in shards (on --workers processes or a --ray cluster); each shard's result
    is kept in the results folder, so an interrupted run resumes where it stopped.
    """
    backend = api.replay_backend(folder, api.read_report(folder), target)
    results = output or folder.with_name(f"{folder.name}.evaluate-{backend}")
    engine = open_engine(workers, ray)
    try:
        result = evaluation_api.evaluate(
            folder,
            data,
            results=results,
            target=backend,
            labels=labels,
            steps=steps,
            verify=verify,
            shard_size=shard_size,
            engine=engine,
            force=force,
            progress=_Progress("evaluate", "samples"),
            time_first=time_first,
        )
    finally:
        engine.close()
    click.echo(to_json(result) if as_json else evaluation.summary(result))
    _warn_silent(result["agreement"])
    if not as_json:
        click.echo(f"wrote {results}/{evaluation_api.RESULT}")
    evaluation_api.check_verified(result)


def _list(text: str | None, kind: Callable[[str], Any] = str, sep: str = ",") -> list[Any] | None:
    if text is None:
        return None
    try:
        return [kind(x.strip()) for x in text.split(sep) if x.strip()]
    except ValueError as exc:
        raise UsageError(f"{text!r}: {exc}") from exc


@cli.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--targets", required=True, help="Comma-separated targets, e.g. sim,loihi2.")
@click.option(
    "--passes",
    default=None,
    help="Pipelines to compare, separated by ';' (e.g. 'lower,quantize,map;lower,quantize,map').",
)
@click.option("--steps", default=None, help="Comma-separated step counts (the first N steps).")
@dataset_option
@labels_option
@shard_size_option
@workers_option
@ray_option
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: <model stem>.sweep/).",
)
@click.option("--force", is_flag=True, help="Replace an output folder snn-deploy did not write.")
@json_option
@max_memory_option
def sweep(
    model: Path,
    targets: str,
    passes: str | None,
    steps: str | None,
    data: Path,
    labels: str | None,
    shard_size: int,
    workers: int | None,
    ray: str | None,
    output: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Compile MODEL for every configuration and compare them on a data set (on sim).

    Writes a compile folder per configuration and the table sweep.txt, sweep.json, sweep.html.
    """
    out = output or model.with_name(f"{model.stem}.sweep")
    engine = open_engine(workers, ray)
    try:
        result = evaluation_api.sweep(
            model,
            data,
            out=out,
            targets=_list(targets) or [],
            passes=_list(passes, sep=";"),
            steps=_list(steps, int),
            labels=labels,
            shard_size=shard_size,
            engine=engine,
            force=force,
            progress=_Progress("sweep", "samples"),
        )
    finally:
        engine.close()
    rows = result["configurations"]
    click.echo(to_json({"configurations": rows}) if as_json else evaluation.sweep_text(rows))
    if not as_json:
        click.echo(f"wrote {out}/: sweep.txt, sweep.json, sweep.html")


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--target",
    "-t",
    type=click.Choice(api.VERIFY_TARGETS),
    default=None,
    help=(
        "sim: the bit-accurate simulator (any folder); loihi-sim: Lava; rtl: the folder's "
        "Verilog in Icarus (fpga folders); xylosim: SynSense's Xylo simulator (xylo folders). "
        "Default: the backend the folder was compiled for."
    ),
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a JUnit XML report (one testcase per compared array).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(folder: Path, target: str | None, junit: Path | None, as_json: bool) -> None:
    """Replay FOLDER/vectors.npz and compare every output exactly; exit 6 on a mismatch."""
    result = api.verify(folder, target=target, progress=_Progress("verifying", ""))
    if junit is not None:
        try:
            junit.write_text(result.junit_xml())
        except OSError as exc:
            raise InputFileError(f"cannot write {junit}: {exc.strerror or exc}") from exc
    if as_json:
        click.echo(to_json(result.to_dict()))
    _finish_verification(result, as_json=as_json)
    if not as_json:
        click.echo(result.summary())


@cli.command()
@click.argument("model", type=MODEL)
@target_option
@dt_option
@reset_option
@exporter_option
@trust_option
@max_memory_option
@json_option
def check(
    model: Path,
    target: str,
    dt: float | None,
    reset: str | None,
    exporter: str | None,
    trust_pickle: bool,
    as_json: bool,
) -> None:
    """Run the design rules for MODEL on a target; exit 5 listing every violation.

    The same rules as compile, the backend's included (an fpga target's board capacity, by
    the analytical estimate), with nothing written.
    """
    from snn_deploy.target import cost

    tgt = load_target(target)
    graph = api.load(
        model,
        reset=ResetMode(reset) if reset else None,
        dt=dt,
        trust_pickle=trust_pickle,
        exporter=exporter,
    )
    result: dict[str, Any] = {"model": model.name, "target": tgt.name}
    try:
        _, net = api.lower_and_quantize(graph, tgt, dt=dt)
        api.lower_for_target(net, tgt)
    except DesignRuleError as exc:
        if not as_json:
            raise
        violations = [dataclasses.asdict(v) for v in exc.violations]
        click.echo(to_json({**result, "violations": violations, "cores": None, "chips": None}))
        raise DesignRuleError(
            f"{len(violations)} design-rule violation(s) for target {tgt.name!r} (listed in the "
            "JSON output)"
        ) from exc
    cores = {(r.chip, r.core) for p in net.populations.values() for r in p.placement or ()}
    chips = {chip for chip, _ in cores}
    units = sum(cost.product_cores(net, tgt.limits).values())
    if as_json:
        result.update(violations=[], cores=len(cores) + units, chips=len(chips))
        click.echo(to_json({**result, "product_unit_cores": units}))
        return
    click.echo(
        f"{model.name}: no design-rule violations for target {tgt.name}; "
        f"{len(cores) + units} cores on {len(chips)} chips"
        + (f" ({units} of them product units' own)" if units else "")
    )


@cli.command()
@click.argument(
    "folders",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@json_option
@click.option(
    "--compare",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Another compile output folder: list every figure and file that differs from it.",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With several FOLDERS: also write the side-by-side table as an HTML page.",
)
@click.option("--force", is_flag=True, help="Replace an existing --html file.")
@click.option("--max-cores", type=click.IntRange(min=0), help="Fail (exit 3) above N cores.")
@click.option(
    "--max-energy-uj", type=_Finite(min=0), help="Fail (exit 3) above X uJ per inference."
)
@click.option(
    "--min-agreement",
    type=_Finite(0, 1),
    help=(
        "Fail (exit 3) if an output's float-vs-quantized prediction agreement is below A, or a "
        "population is silent or saturated in the float reference."
    ),
)
@click.option(
    "--min-spike-f1",
    type=_Finite(0, 1),
    help="Fail (exit 3) if a population's float-vs-quantized spike-train F1 is below F.",
)
def report(
    folders: tuple[Path, ...],
    as_json: bool,
    compare: Path | None,
    html_out: Path | None,
    force: bool,
    max_cores: int | None,
    max_energy_uj: float | None,
    min_agreement: float | None,
    min_spike_f1: float | None,
) -> None:
    """Print the report of a compile output FOLDER; exit 3 if a budget is broken.

    With several FOLDERS, print their figures side by side (--html PATH: also as a page) and
    check the budgets of each. With --compare OLD, print what changed from OLD to FOLDER
    instead (exit 0 either way).
    """
    budgets = (max_cores, max_energy_uj, min_agreement, min_spike_f1)
    if compare is not None:
        if len(folders) > 1 or html_out is not None:
            raise UsageError("--compare takes one FOLDER and no --html")
        if budgets != (None,) * 4:
            raise UsageError("--compare checks no budget; run the budgets without --compare")
        _changes(compare, folders[0], as_json=as_json)
        return
    if len(folders) == 1 and html_out is not None:
        raise UsageError("--html needs two or more FOLDERS (one folder's page is its report.html)")
    if html_out is not None:
        html_out = outdir.check_file(html_out, suffix=".html", force=force, option="--html")
    reports = {folder: api.read_report(folder) for folder in folders}
    if len(folders) == 1:
        data = reports[folders[0]]
        text = _rendered(folders[0], data, to_json if as_json else summary)
    else:
        columns = [_rendered(f, r, functools.partial(figures, f.name)) for f, r in reports.items()]
        text = to_json(columns) if as_json else table(*side_by_side(columns), missing=MISSING)
        if html_out is not None:
            page = side_by_side_html(columns)
            outdir.write_file(html_out, lambda tmp: _write_text(tmp, page))
    broken = [
        f"{folder}: {b}" if len(folders) > 1 else b
        for folder, data in reports.items()
        for b in check_budgets(data, *budgets)
    ]
    click.echo(text)
    if broken:
        raise BudgetError(f"budget broken: {'; '.join(broken)}")


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _changes(old: Path, new: Path, *, as_json: bool) -> None:
    """``report NEW --compare OLD``: every figure and file that differs."""
    diff = changes(api.read_report(old), api.read_report(new))
    if as_json:
        click.echo(to_json(diff))
        return
    rows = [[d["key"], _short(d["old"]), _short(d["new"])] for d in diff]
    if rows:
        click.echo(table(["changed", str(old), str(new)], rows))
    click.echo(f"{len(diff)} differences between {old} and {new}")


def _rendered(folder: Path, data: dict[str, Any], render: Callable[[dict[str, Any]], _T]) -> _T:
    """``render(data)``; a report it cannot read (a tampered one) is an input error."""
    try:
        return render(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputFileError(
            f"{folder / 'report.json'}: malformed report ({type(exc).__name__}: {exc}); "
            "compile again"
        ) from exc


def _warn_silent(agreement: dict[str, Any] | None) -> None:
    """Warn on stderr about outputs silent in the float reference on every sample."""
    for name, out in (agreement or {}).get("outputs", {}).items():
        if out["float_active_samples"] == 0:
            click.echo(
                f"warning: output {name!r} is silent in the float reference on every sample: "
                "its prediction agreement says nothing",
                err=True,
            )
    for name, pop in (agreement or {}).get("populations", {}).items():
        if pop.get("flag") is not None:
            click.echo(
                f"warning: population {name!r} is {pop['flag']} in the float reference (spike "
                f"rate {pop['float_rate']:.3g}): its spike agreement says nothing",
                err=True,
            )


def _short(value: Any) -> str:
    text = "-" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


@cli.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--calibrate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Calibration inputs (.npz, one array [batch, *shape], values >= 0).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The SNN as a .nir file (default: <model stem>.nir).",
)
@click.option("--force", is_flag=True, help="Let -o replace an existing file.")
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Time steps of the rate code used to measure agreement.",
)
@click.option(
    "--percentile",
    type=_Finite(0, 100),
    default=99.9,
    show_default=True,
    help="Activation percentile that sets each layer's threshold (balancing).",
)
@max_memory_option
@json_option
def convert(
    model: Path,
    calibrate: Path,
    output: Path | None,
    force: bool,
    steps: int,
    percentile: float,
    as_json: bool,
) -> None:
    """Convert a ReLU ANN (ONNX) to an IF SNN (.nir) by data-based threshold balancing."""
    import nir

    out = outdir.check_file(
        output or model.with_suffix(".nir"), suffix=".nir", reads=[model, calibrate], force=force
    )
    graph, report = api.convert(
        model, api.read_inputs(calibrate), steps=steps, percentile=percentile
    )
    outdir.write_file(out, lambda tmp: nir.write(tmp, graph))
    _warn_silent(report["quantized"])
    if as_json:
        click.echo(to_json({**report, "output": str(out)}))
        return
    click.echo(
        f"{report['samples']} samples, {steps} steps: SNN vs ANN prediction agreement "
        f"{report['snn_vs_ann_prediction_agreement']:.4g}"
    )
    for name, out_agreement in report["quantized"]["outputs"].items():
        click.echo(
            f"output {name}: quantized vs float prediction agreement "
            f"{out_agreement['prediction_agreement']:.4g}"
        )
    click.echo(f"wrote {out}")


@cli.command()
@json_option
def targets(as_json: bool) -> None:
    """List the built-in targets."""
    found = [load_target(name) for name in available()]
    if as_json:
        keys = ("name", "backend", "description", "path")
        click.echo(to_json([{k: str(getattr(t, k)) for k in keys} for t in found]))
        return
    rows = [[t.name, t.backend, t.description] for t in found]
    click.echo(table(["target", "backend", "description"], rows))


@cli.command()
@click.argument("model", type=MODEL)
@reset_option
@exporter_option
@trust_option
@max_memory_option
@json_option
def inspect(
    model: Path, reset: str | None, exporter: str | None, trust_pickle: bool, as_json: bool
) -> None:
    """Print MODEL's graph: nodes, shapes and edges."""
    graph = api.load(
        model,
        reset=ResetMode(reset) if reset else None,
        trust_pickle=trust_pickle,
        exporter=exporter,
    )
    if as_json:
        nodes = [_node_json(graph, k) for k in graph.nodes]
        click.echo(to_json({"model": model.name, "nodes": nodes}))
        return
    click.echo(_describe(graph))


def _node_json(graph: Graph, name: str) -> dict[str, Any]:
    node = graph.nodes[name]
    reset = getattr(node, "reset", None)
    return {
        "name": name,
        "type": type(node).__name__,
        "in": list(node.in_shape),
        "out": list(node.out_shape),
        "successors": list(graph.successors(name)),
        "reset": None if reset is None else reset.value,
    }


def _describe(ir: object) -> str:
    if isinstance(ir, Graph):
        nodes = [
            [k, type(v).__name__, list(v.in_shape), list(v.out_shape), ", ".join(ir.successors(k))]
            for k, v in ir.nodes.items()
        ]
        resets = [
            f"{k}={v.reset.value}"
            for k, v in ir.nodes.items()
            if isinstance(v, n.NEURONS) and hasattr(v, "reset")
        ]
        text = table(["node", "type", "in", "out", "->"], nodes)
        return text + (f"\nreset: {', '.join(resets)}" if resets else "")
    assert isinstance(ir, Net)
    rows = [
        [p.name, p.src, p.dst, p.delay, p.weight.nnz, None if p.fixed is None else p.fixed.exp]
        for p in ir.projections
    ]
    pops = [
        [p.name, p.node_type, p.size, None if p.fixed is None else p.fixed.scale]
        for p in ir.populations.values()
    ]
    return (
        table(["population", "type", "neurons", "scale"], pops)
        + "\n\n"
        + table(["projection", "src", "dst", "delay", "synapses", "exp"], rows)
    )
