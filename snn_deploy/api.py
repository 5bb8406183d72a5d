"""The public API the CLI calls: ``load``, ``compile``, ``simulate``, ``verify`` and readers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import nir
import numpy as np
import numpy.typing as npt

from snn_deploy import __version__, outdir
from snn_deploy.backends import get_all_backends
from snn_deploy.backends.base import Progress, Trace, check_inputs
from snn_deploy.backends.fpga.run import simulate_rtl
from snn_deploy.backends.sim.run import simulate as run_sim
from snn_deploy.errors import (
    InputFileError,
    PassError,
    SnnDeployError,
    TargetError,
    UsageError,
)
from snn_deploy.frontends import exporters, get_all_frontends
from snn_deploy.frontends import nir as nir_frontend
from snn_deploy.ir import nodes as n
from snn_deploy.ir import serialize
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import DEFAULT_DT, Attention, Net
from snn_deploy.ir.types import ResetMode
from snn_deploy.limits import check_array, check_memory, read_npz
from snn_deploy.passes import pipeline
from snn_deploy.passes.base import PassContext
from snn_deploy.passes.calibration import measure
from snn_deploy.passes.quantize import input_ranges
from snn_deploy.reports.decision import DECISION_RULE, NO_DECISION, confusion, decide
from snn_deploy.reports.energy import (
    activity,
    energy,
    paper_energy,
    trace_summary,
)
from snn_deploy.reports.html import render_html
from snn_deploy.reports.placement import placement, utilization
from snn_deploy.reports.render import to_json
from snn_deploy.reports.resources import (
    activation_histogram,
    quantization,
    resources,
    weight_histograms,
)
from snn_deploy.reports.verification import PREFIXES, Verification, compare, records_state, vectors
from snn_deploy.target.load import load_target
from snn_deploy.target.rules import check_design_rules
from snn_deploy.target.schema import Target

if TYPE_CHECKING:
    import torch

REPORT_SCHEMA = "snn-deploy-report/1"
VERIFY_TARGETS = ("sim", "loihi-sim", "rtl", "xylosim")
"""Where ``verify`` replays a folder: the simulator, Lava, or the folder's RTL in Icarus."""
_VERIFY_DEFAULT = {  # compiled backend -> run
    "sim": "sim",
    "lava": "loihi-sim",
    "fpga": "rtl",
    "xylo": "xylosim",
}


@dataclass(frozen=True, slots=True)
class CompileResult:
    """What ``compile`` produced: the float and quantized nets, the report, written files."""

    graph: Graph
    float_net: Net
    net: Net
    report: dict[str, Any]
    files: tuple[Path, ...]


Model: TypeAlias = "str | Path | nir.NIRGraph | torch.nn.Module"
"""What ``load`` and ``compile`` take: a model file, a ``nir.NIRGraph`` or a live
``torch.nn.Module`` (torch is imported only when a module is given)."""


def graph_dt(graph: Graph, dt: float | None = None) -> float:
    """The step to lower ``graph`` with: ``dt`` when given, else the step its time constants
    were written for (``Graph.dt``: a PyTorch model's conversion step, a checkpoint's ``"dt"``,
    docs/FRONTENDS.md §1), else ``DEFAULT_DT``. So a checkpoint of NIR bytes written at 10 ms
    steps keeps its per-step dynamics with no flag."""
    if dt is not None:
        return dt
    return DEFAULT_DT if graph.dt is None else graph.dt


def load(
    path: Model,
    *,
    reset: ResetMode | None = None,
    dt: float | None = None,
    trust_pickle: bool = False,
    exporter: str | None = None,
    input_shape: Sequence[int] | None = None,
) -> Graph:
    """Load a model into a verified graph; a file's frontend is chosen by its suffix.

    Args:
        path: a model file (``.nir``, ``.net``, ``.pt``/``.pth``, ``.onnx``:
            docs/FRONTENDS.md), an in-memory ``nir.NIRGraph``, or a live ``torch.nn.Module`` of
            snnTorch, Norse, SpikingJelly, Sinabs or ``snn_deploy.nn`` layers (a ``Sequential``
            chain, or model code traced with ``torch.fx``: docs/FRONTENDS.md §6).
        reset: override the reset mode of every spiking neuron.
        dt: the compile time step (default: a checkpoint's ``dt``, else ``DEFAULT_DT``); PyTorch
            models and NIR files read with an ``exporter`` profile are converted so that their
            per-step dynamics hold exactly at it (``Graph.dt`` keeps it; ``graph_dt``).
        trust_pickle: allow a pickled ``torch.nn.Module`` (runs code from the file).
        exporter: the framework whose NIR exporter wrote a ``.nir`` file (``snntorch``,
            ``norse``, ...; ``NAME{dt=SECONDS}`` for its time step; docs/FRONTENDS.md §7);
            ``lava-dl`` for a ``.net`` file, read as it is.
        input_shape: per-sample input shape of a live module (without batch and time);
            needed unless it starts with a ``Linear``.

    Raises:
        UsageError: ``exporter`` given for a file it does not apply to, or ``input_shape``
            for a model that is not a live module.
    """
    if not isinstance(path, str | Path):
        return _load_live(path, reset=reset, dt=dt, exporter=exporter, input_shape=input_shape)
    if input_shape is not None:
        raise UsageError(
            "input_shape applies to a live torch.nn.Module; a file declares its own shapes"
        )
    path = Path(path)
    frontends = get_all_frontends()
    if path.suffix not in frontends:
        raise InputFileError(
            f"{path}: unsupported model format {path.suffix!r}; "
            f"supported: {', '.join(sorted(frontends))}"
        )
    options: dict[str, Any] = {"reset": reset}
    if path.suffix in (".pt", ".pth"):
        options.update(dt=dt, trust_pickle=trust_pickle)
    if exporter is not None and not (path.suffix == ".net" and exporter == "lava-dl"):
        if path.suffix != ".nir":
            raise UsageError(
                f"--exporter {exporter} applies to .nir files (and lava-dl to .net); {path} is "
                "read from the framework's own modules, whose conventions the converter knows"
            )
        options.update(exporter=exporter, dt=DEFAULT_DT if dt is None else dt)
    return frontends[path.suffix]()(path, **options)  # type: ignore[no-any-return]


def _load_live(
    model: Any,
    *,
    reset: ResetMode | None,
    dt: float | None,
    exporter: str | None,
    input_shape: Sequence[int] | None,
) -> Graph:
    """A ``nir.NIRGraph`` or a live ``torch.nn.Module`` -> verified graph."""
    if isinstance(model, nir.NIRGraph):
        if input_shape is not None:
            raise UsageError("input_shape applies to a live torch.nn.Module, not a NIR graph")
        return nir_frontend.load(
            model, reset=reset, exporter=exporter, dt=DEFAULT_DT if dt is None else dt
        )
    if exporter is not None:
        raise UsageError(
            f"exporter {exporter!r} applies to .nir files; a live module is read from its own "
            "modules, whose conventions the converter knows"
        )
    import torch

    from snn_deploy.frontends import torch as torch_frontend

    if not isinstance(model, torch.nn.Module):
        raise UsageError(
            f"a model is a file path, a nir.NIRGraph or a torch.nn.Module; got "
            f"{type(model).__name__}"
        )
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    return torch_frontend.load(model, reset=reset, dt=dt, input_shape=shape)


def save(
    model: torch.nn.Module,
    path: str | Path,
    *,
    dt: float | None = None,
    input_shape: Sequence[int] | None = None,
) -> Path:
    """Write a live ``torch.nn.Sequential`` SNN as a safe checkpoint (docs/FRONTENDS.md §1).

    The file is ``{"architecture": [[class, kwargs], ...], "names": [...], "state_dict": ...}``
    (plus ``dt`` and ``input_shape`` when given), read back without running code. Every
    constructor argument is read from the module (``reset_mechanism``, ``reset_delay``,
    ``bias``, ``dtype``, ...), and the checkpoint is rebuilt and converted before it is
    written: if the rebuilt model converts to a different graph, nothing is written.

    Args:
        model: a (nested) ``Sequential`` of supported modules (``frontends.torch.supported``).
        path: the ``.pt``/``.pth`` file to write.
        dt: the time step to compile it with, stored in the file.
        input_shape: per-sample input shape, stored in the file; needed at compile time
            unless the model starts with a ``Linear``.

    Returns:
        The path written.

    Raises:
        UsageError: ``path`` is not a ``.pt``/``.pth`` file.
        UnsupportedOpError: a module has no converter, the model is not a ``Sequential``, or a
            constructor argument cannot be stored safely.
    """
    import torch

    from snn_deploy.frontends import torch as torch_frontend

    path = Path(path)
    if path.suffix not in (".pt", ".pth"):
        raise UsageError(f"{path}: a checkpoint is a .pt or .pth file")
    shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    ckpt = torch_frontend.checkpoint(model, dt=dt, input_shape=shape)
    torch.save(ckpt, path)
    return path


def convert(
    model: Path,
    calibrate: Mapping[str, npt.ArrayLike],
    *,
    steps: int = 64,
    percentile: float = 99.9,
    target: str | Path = "sim",
) -> tuple[nir.NIRGraph, dict[str, Any]]:
    """Convert a ReLU ANN (ONNX) to an IF SNN by threshold balancing on calibration inputs.

    Returns the NIR graph and a report: the SNN's agreement with the ANN (same prediction by
    ``reports.decision.decide`` on the calibration inputs, rate-coded over ``steps`` steps) and
    the quantized run's agreement with the float SNN.
    """
    from snn_deploy.frontends import onnx

    if len(calibrate) != 1:
        raise InputFileError(
            f"convert takes one calibration array [batch, *shape]; got {sorted(calibrate)}"
        )
    (x,) = calibrate.values()
    conversion = onnx.convert(model, np.asarray(x, dtype=np.float64), percentile=percentile)
    float_net, net = lower_and_quantize(
        nir_frontend.load(conversion.nir_graph), load_target(target)
    )
    spikes = conversion.encode(np.asarray(x, dtype=np.float64), steps)
    float_trace = run_sim(float_net, {"input": spikes}, fixed=False)
    trace = run_sim(net, {"input": spikes}, fixed=True)
    (out,) = float_trace.outputs
    snn_pred = decide(float_trace.outputs[out].sum(axis=1))
    ann_pred = decide(conversion.ann_outputs.reshape(len(snn_pred), -1))
    report = {
        "samples": len(snn_pred),
        "steps": steps,
        "percentile": percentile,
        "snn_vs_ann_prediction_agreement": float(np.mean(snn_pred == ann_pred)),
        "quantized": agreement(float_trace, trace, net),
    }
    return conversion.nir_graph, report


LABELS = "labels"
"""The name of the labels array (``[batch]`` class indices) in an ``--inputs`` file."""


def read_inputs(path: str | Path) -> dict[str, npt.NDArray[np.float64]]:
    """Read an ``.npz`` of input arrays (``[batch, time, *shape]``, keyed by Input name), or
    the inputs ``input.<name>`` of a vectors file (``vectors.npz``, ``simulate -o``); a
    ``labels`` array is not an input and is left out (``read_labeled_inputs``).

    Raises:
        InputFileError: not an ``.npz`` of boolean, integer or finite float arrays.
        ResourceLimitError: the arrays' declared sizes exceed ``limits.max_memory()``.
    """
    return read_labeled_inputs(path)[0]


def read_labeled_inputs(
    path: str | Path,
) -> tuple[dict[str, npt.NDArray[np.float64]], npt.NDArray[Any] | None]:
    """``read_inputs`` and the file's ``labels`` array as stored (None without one), for
    ``compile``'s accuracy against labels, which checks it (``check_labels``).

    Raises:
        InputFileError: not an ``.npz`` of boolean, integer or finite float arrays.
        ResourceLimitError: the arrays' declared sizes exceed ``limits.max_memory()``.
    """
    path = Path(path)
    arrays = read_npz(path)
    if _is_vectors(arrays):
        arrays = {k.removeprefix("input."): v for k, v in arrays.items() if k.startswith("input.")}
    labels = arrays.pop(LABELS, None)
    inputs = {
        k: check_array(path, k, v, kinds="biuf").astype(np.float64) for k, v in arrays.items()
    }
    return inputs, labels


def check_labels(labels: npt.ArrayLike, net: Net, batch: int) -> npt.NDArray[np.int64]:
    """The labels as int64 after checking them against the run: shape ``[batch]``, integer
    class indices, each within every output's size.

    Raises:
        InputFileError: a labels array of another shape or dtype, or a class out of range.
    """
    y = np.asarray(labels)
    if y.shape != (batch,):
        raise InputFileError(
            f"labels have shape {list(y.shape)}; expected [{batch}], one class per sample of "
            "the inputs"
        )
    if y.dtype.kind not in "iu":
        raise InputFileError(f"labels have dtype {y.dtype}; expected integer class indices")
    for name, pop in net.outputs.items():
        classes = net.size_of(pop)
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise InputFileError(
                f"label {int(y[bad[0]])} of sample {int(bad[0])} is not a class of output "
                f"{name!r} (0..{classes - 1}); {bad.size} such label(s)"
            )
    return y.astype(np.int64)


def arrange_inputs(
    inputs: Mapping[str, npt.ArrayLike],
    model: Net | Graph,
    *,
    time_first: bool = False,
    steps: int | None = None,
    given: str = "inputs",
) -> tuple[dict[str, npt.NDArray[Any]], list[str]]:
    """Input arrays in the ``[batch, time, *shape]`` layout every run takes, and one line per
    array saying how it was read, e.g. ``inputs: 'input' [96, 100, 64] read as 96 samples x
    100 steps x (64,)``.

    An array ``[a, b, *shape]`` (``shape``: its Input's per-sample shape) is ``a`` samples of
    ``b`` steps; with ``time_first`` it is ``[time, batch, *shape]`` (snnTorch's and Norse's
    layout) and is transposed. ``[time, *shape]`` is one sample. Arrays of another shape are
    returned as they are, for ``check_inputs`` to refuse.

    The two leading axes cannot be told apart in general; a reading is refused only when it
    has fewer steps than the run needs and the other reading has enough: the run needs the
    clip length of a whole-clip attention unit (its ``steps``; it reads nothing before them)
    and ``steps`` (``evaluate --steps``). Any other array is read as said, square ones too.

    Args:
        inputs: arrays by name, as in an inputs file.
        model: the graph or net whose Input shapes and clip length apply.
        time_first: read ``[time, batch, *shape]``.
        steps: the steps the run takes from every sample (``evaluate --steps``).
        given: the option the arrays came from, for the lines and messages.

    Raises:
        InputFileError: an array whose reading has too few steps while the other has enough.
    """
    if isinstance(model, Net):
        shapes = dict(model.inputs)
        units: list[Any] = list(model.products.values())
    else:
        shapes = {k: v.out_shape for k, v in model.nodes.items() if isinstance(v, n.Input)}
        units = list(model.nodes.values())
    needs = [
        (u.steps, "the clip its whole-clip attention reads")
        for u in units
        if isinstance(u, Attention | n.Attention) and not u.causal
    ]
    need, why = max([*needs, *([(steps, "--steps")] if steps else [])], default=(0, ""))
    arrays: dict[str, npt.NDArray[Any]] = {}
    lines = []
    for key, value in inputs.items():
        arrays[key] = arr = np.asarray(value)
        shape = next(iter(shapes.values())) if len(shapes) == 1 else shapes.get(key)
        if shape is None or arr.shape[-len(shape) :] != shape or arr.ndim < len(shape) + 1:
            continue  # not an input of the model: check_inputs says what is wrong
        layout = ""
        batch, time = 1, arr.shape[0]
        if arr.ndim == len(shape) + 2:
            if time_first:
                arrays[key] = arr = np.swapaxes(arr, 0, 1)
                layout = " (--time-first)"
            batch, time = arr.shape[:2]
        if time < need <= batch:
            fix = "drop --time-first" if time_first else "pass --time-first"
            raise InputFileError(
                f"{given} array {key!r} {list(np.shape(value))}: read as {batch} samples x "
                f"{time} steps, fewer than the {need} steps of {why}; if it is the other way "
                f"round, {fix}, else give [batch, time, ...] with more steps"
            )
        lines.append(
            f"{given}: {key!r} {list(np.shape(value))} read as {batch} samples x {time} steps "
            f"x {shape}{layout}"
        )
    return arrays, lines


def read_vectors(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """Read a vectors file: ``input.<name>``, ``output.<name>`` and optionally ``u.<population>``,
    ``v.<population>`` arrays (``snn_deploy.reports.verification``).

    Raises:
        InputFileError: not such a file, or an array is not boolean, integer or finite float.
        ResourceLimitError: the arrays' declared sizes exceed ``limits.max_memory()``.
    """
    path = Path(path)
    arrays = read_npz(path)
    if not _is_vectors(arrays) or not any(k.startswith("output.") for k in arrays):
        raise InputFileError(
            f"{path} is not a vectors file: expected arrays input.<name> and output.<name> "
            f"(as compile --inputs writes vectors.npz); found {sorted(arrays)}"
        )
    return {k: check_array(path, k, v, kinds="biuf") for k, v in arrays.items()}


def _is_vectors(arrays: Mapping[str, object]) -> bool:
    return any(k.startswith("input.") for k in arrays) and all(
        k.startswith(PREFIXES) for k in arrays
    )


BYTES_PER_SYNAPSE = 57
"""Peak compile memory per synapse, measured from 10^4 to 10^8 synapses (docs/PERFORMANCE.md)."""
BYTES_PER_NEURON = 256
"""Compile memory per neuron: nine float and integer parameter arrays of 8 bytes, the state and
the quantizer's temporaries, rounded up."""


def _check_compile_memory(graph: Graph) -> None:
    """Refuse a graph whose lowered network would exceed ``limits.max_memory()``."""
    neurons = sum(math.prod(v.out_shape) for v in graph.nodes.values() if isinstance(v, n.NEURONS))
    synapses = sum(_synapses(v) for v in graph.nodes.values() if isinstance(v, n.SYNAPSES))
    check_memory(
        "compile",
        f"the network of {neurons} neurons and {synapses} synapses",
        neurons * BYTES_PER_NEURON + synapses * BYTES_PER_SYNAPSE,
    )


def _synapses(node: n.Node) -> int:
    """The weights ``lower`` makes of a synapse node: one per (output, input) pair it joins."""
    out = math.prod(node.out_shape)
    if isinstance(node, (n.Affine, n.Linear)):
        return int(node.weight.size)
    if isinstance(node, (n.Conv1d, n.Conv2d)):
        return out * math.prod(node.weight.shape[1:])
    if isinstance(node, n.SumPool2d):
        return out * math.prod(node.kernel_size)
    return out  # one to one: Scale, Flatten, Delay


def _check_run_memory(net: Net, inputs: Mapping[str, npt.ArrayLike], traces: int) -> None:
    """Refuse a run whose ``traces`` recordings (``batch x time x neurons`` of 8 bytes each, for
    every population and input) would exceed ``limits.max_memory()``."""
    sizes = [net.size_of(k) for k in net.inputs]
    rows = sum(int(np.size(v)) for v in inputs.values()) // max(1, min(sizes, default=1))
    neurons = sum(p.size for p in net.populations.values()) + sum(sizes)
    check_memory(
        "simulate",
        f"{traces} recording(s) of shape [batch x time = {rows}, {neurons} neurons and inputs]",
        traces * rows * neurons * 8,
    )


def lower_and_quantize(
    graph: Graph,
    target: Target,
    *,
    dt: float | None = None,
    passes: str | None = None,
    calibrate: Mapping[str, npt.ArrayLike] | None = None,
    dump_after: Any = None,
    inputs: Mapping[str, npt.ArrayLike] | None = None,
) -> tuple[Net, Net]:
    """Run the pipeline; return the float net (after ``lower``) and the quantized net.

    ``dt`` (default ``graph_dt``: the step the graph's time constants were written for, else
    ``DEFAULT_DT``) discretises the NIR neurons.

    With ``calibrate`` inputs the float net is simulated on them first, and the default
    pipeline quantizes with ``method=calibrate``: the current register (which wraps) is sized
    by the largest |u| observed instead of the worst case (the voltage saturates), and dense
    projections round with error compensation on the observed activity.

    Inputs are taken as binary spikes (|x| <= 1) unless the model declares a range (NIR
    metadata ``snn_deploy.input_max``) or ``calibrate`` or the sample ``inputs`` hold larger
    (graded) payloads: then the worst case is sized for that range or the largest |value| seen
    (``quantize.input_ranges``; ``compile`` reports it).
    """
    _check_compile_memory(graph)
    dt = graph_dt(graph, dt)
    steps = pipeline.parse(passes or default_pipeline(dt, calibrated=calibrate is not None))
    float_net = pipeline.run(graph, steps[:1], PassContext(target=target), dump_after=dump_after)
    assert isinstance(float_net, Net)
    calibration = None
    if calibrate is not None:
        _check_run_memory(float_net, calibrate, traces=3)  # spikes, u and v
        x = check_inputs(float_net, calibrate)
        run = run_sim(float_net, x, fixed=False, record_state=True)
        calibration = measure(float_net, {**run.populations, **run.products, **x}, run.u)
    ranges = input_ranges(float_net, _observed(float_net, calibrate, inputs), _declared(graph))
    ctx = PassContext(
        target=target,
        calibration=calibration,
        input_max={k: float(r["max_abs"]) for k, r in ranges.items()},
    )
    net = pipeline.run(float_net, steps[1:], ctx, dump_after=dump_after, before=["lower"])
    if not (isinstance(net, Net) and net.quantized):
        raise PassError(
            f"the pipeline {passes!r} leaves a float net, and targets run quantized nets: add "
            "quantize after lower"
        )
    return float_net, net


def default_pipeline(dt: float, *, calibrated: bool) -> str:
    """The pipeline ``compile`` runs without ``passes``: ``report.json``'s ``pipeline``.

    Examples:
        >>> default_pipeline(1e-4, calibrated=True)
        'lower{dt=0.0001},quantize{method=calibrate},map'
    """
    method = "{method=calibrate}" if calibrated else ""
    return f"lower{{dt={dt!r}}},quantize{method},map"


def _observed(
    net: Net,
    calibrate: Mapping[str, npt.ArrayLike] | None,
    inputs: Mapping[str, npt.ArrayLike] | None,
) -> dict[str, dict[str, npt.NDArray[np.float64]]]:
    """The data a compile was given, by the option it came from, for ``input_ranges``."""
    given = (("--calibrate", calibrate), ("--inputs", inputs))
    return {k: check_inputs(net, v) for k, v in given if v is not None}


def _declared(graph: Graph) -> dict[str, float]:
    """The payload ranges the model's Input nodes declare (``snn_deploy.input_max``)."""
    return {
        k: v.payload_max
        for k, v in graph.nodes.items()
        if isinstance(v, n.Input) and v.payload_max is not None
    }


def agreement(float_trace: Trace, trace: Trace, net: Net) -> dict[str, Any]:
    """How closely the quantized run follows the float reference on the same inputs.

    Per spiking population: the fraction of (sample, step, neuron) spike slots that agree (in
    value, for multi-level spikes), and the spike counts (events: a spike of any level counts
    once, as in the energy report). Slot agreement is inflated by sparsity (two silent runs
    agree on every slot), so each population also has spike-weighted figures and flags
    (``spike_metrics``). Per output: the fraction of samples with the same
    prediction (``reports.decision.decide`` on the sum over time of spikes, i.e. of spike
    levels, or of voltage; ``decision_rule`` states it), how many samples have any float output
    activity (``float_active_samples``), and how many are undecided (every output equal, e.g.
    silent) in the float and the quantized run: two undecided read-outs agree.
    """
    pops = {}
    for name, pop in net.populations.items():
        if pop.spiking:
            f, q = float_trace.populations[name], trace.populations[name]
            pops[name] = {
                "spike_agreement": float(np.mean(f == q)),
                "float_spikes": int(np.count_nonzero(f)),
                "quantized_spikes": int(np.count_nonzero(q)),
                **spike_metrics(f, q),
            }
    outputs = {}
    for name, (f, pf, pq) in _predictions(float_trace, trace, net).items():
        outputs[name] = {
            "prediction_agreement": float(np.mean(pq == pf)),
            "float_active_samples": int(np.count_nonzero(np.any(f != 0, axis=-1))),
            "float_undecided_samples": int(np.count_nonzero(pf == NO_DECISION)),
            "quantized_undecided_samples": int(np.count_nonzero(pq == NO_DECISION)),
        }
    return {"decision_rule": DECISION_RULE, "populations": pops, "outputs": outputs}


def _predictions(
    float_trace: Trace, trace: Trace, net: Net
) -> dict[str, tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per output: the float read-out summed over time and the float and quantized
    predictions (``decide``; a quantized voltage read-out is dequantized first)."""
    out = {}
    for name, rec in trace.outputs.items():
        pop = net.populations[net.outputs[name]]
        scale = 1.0 if pop.fixed is None or pop.spiking else pop.fixed.scale
        f = float_trace.outputs[name].sum(axis=1)
        out[name] = (f, decide(f), decide(rec.sum(axis=1) / scale))
    return out


def accuracy(
    float_trace: Trace, trace: Trace, net: Net, labels: npt.NDArray[np.int64]
) -> dict[str, Any]:
    """Accuracy against labels of the quantized run and the float reference, per output.

    The prediction is ``agreement``'s (``reports.decision.decide``); an undecided read-out
    matches no label. ``confusion`` is the quantized run's: row = label, column = predicted
    class, the last column undecided (``reports.decision.confusion``).

    Args:
        float_trace: the float reference's run.
        trace: the quantized run on the same inputs.
        net: the quantized net.
        labels: ``check_labels``'s class of each sample.
    """
    outputs = {}
    for name, (_, pf, pq) in _predictions(float_trace, trace, net).items():
        classes = net.size_of(net.outputs[name])
        matrix = confusion(labels, pq, classes)
        outputs[name] = {
            "classes": classes,
            "quantized": float(np.trace(matrix)) / labels.size,
            "float": float(np.mean(pf == labels)),
            "quantized_correct": int(np.trace(matrix)),
            "float_correct": int(np.sum(pf == labels)),
            "confusion": matrix.tolist(),
        }
    return {
        "decision_rule": DECISION_RULE,
        "samples": int(labels.size),
        "confusion_axes": "rows: label; columns: quantized prediction, last column undecided",
        "outputs": outputs,
    }


SATURATED_RATE = 0.95
"""A population whose float run spikes in at least this fraction of its (sample, step, neuron)
slots is flagged ``saturated``: its agreement, like a silent one's, says little."""


def spike_metrics(f: npt.NDArray[Any], q: npt.NDArray[Any]) -> dict[str, Any]:
    """Spike-weighted agreement of a reference run ``f`` and a run ``q`` (``[batch, time, ...]``).

    ``spike_f1``: 2·|both spike| / (|f spikes| + |q spikes|) over slots (None if neither
    spikes); ``spike_count_correlation``: Pearson correlation of the per-(sample, neuron) spike
    counts (None where either is constant); ``float_rate``: the fraction of slots where ``f``
    spikes; ``flag``: ``silent`` (``f`` never spikes), ``saturated`` (``float_rate >=
    SATURATED_RATE``) or None.

    Examples:
        >>> f = np.array([[[1, 0], [0, 1], [1, 0]]]); q = np.array([[[1, 0], [0, 0], [1, 1]]])
        >>> m = spike_metrics(f, q); round(m["spike_f1"], 4), m["flag"]
        (0.6667, None)
        >>> spike_metrics(np.zeros((1, 3, 2)), np.zeros((1, 3, 2)))["flag"]
        'silent'
    """
    fs, qs = np.asarray(f) != 0, np.asarray(q) != 0
    total = int(fs.sum() + qs.sum())
    f1 = 2.0 * float(np.sum(fs & qs)) / total if total else None
    fc = fs.sum(axis=1).reshape(-1).astype(np.float64)
    qc = qs.sum(axis=1).reshape(-1).astype(np.float64)
    corr = None
    if fc.std() > 0 and qc.std() > 0:
        corr = float(np.corrcoef(fc, qc)[0, 1])
    rate = float(fs.mean()) if fs.size else 0.0
    flag = "silent" if rate == 0 else "saturated" if rate >= SATURATED_RATE else None
    return {"spike_f1": f1, "spike_count_correlation": corr, "float_rate": rate, "flag": flag}


def compile(
    model: Model,
    target: str | Path = "sim",
    *,
    out_dir: str | Path | None = None,
    dt: float | None = None,
    reset: ResetMode | None = None,
    trust_pickle: bool = False,
    inputs: Mapping[str, npt.ArrayLike] | None = None,
    labels: npt.ArrayLike | None = None,
    calibrate: Mapping[str, npt.ArrayLike] | None = None,
    passes: str | None = None,
    dump_after: Any = None,
    progress: Progress | None = None,
    force: bool = False,
    reads: Sequence[str | Path] = (),
    record_state: bool = False,
    exporter: str | None = None,
    input_shape: Sequence[int] | None = None,
    time_first: bool = False,
    note: Callable[[str], None] | None = None,
) -> CompileResult:
    """Compile ``model`` for ``target``; write artefacts to ``out_dir`` all at once, or nothing.

    Loads the model (``load``), runs the pipeline ``lower{dt},quantize,map`` (or ``passes``),
    checks the target's design rules, lowers it for the target's backend and reports resources,
    placement and quantization; with ``inputs``, also runs it and the float reference.

    Args:
        model: a model file (``.nir``, ``.net``, ``.pt``/``.pth``, ``.onnx``), a
            ``nir.NIRGraph`` or a live ``torch.nn.Module`` (see ``load``).
        target: a built-in target name (``snn-deploy targets``) or a TOML path.
        out_dir: where to write, all at once when the whole compile succeeded; an existing
            folder is replaced only if snn-deploy wrote it (``snn_deploy.outdir``).
        dt: seconds per time step for discretising continuous-time NIR neurons (default
            ``graph_dt``: a checkpoint's ``dt``, else ``DEFAULT_DT``).
        reset: override the reset mode of every spiking neuron.
        trust_pickle: allow a pickled PyTorch module (runs code from the file).
        inputs: sample inputs; when given, the program and the float reference run on them:
            the energy report counts the events, the report gives the float-vs-quantized
            agreement, and the inputs and outputs are written as test vectors.
        labels: the class of each sample of ``inputs`` (``[batch]`` integers): the report
            gives the accuracy of both runs against them and the quantized confusion matrix.
        calibrate: calibration inputs for the quantizer (see ``lower_and_quantize``).
        passes: a pipeline string replacing the default ``lower{dt=...},quantize,map``.
        dump_after: called with (pass name, IR) after each pass.
        progress: called as ``progress(done, total)`` while the program runs on ``inputs``.
        force: replace an existing ``out_dir`` that snn-deploy did not write.
        reads: other files this compile reads (inputs): no folder holding one is replaced.
        record_state: also write every population's ``u`` and ``v`` on ``inputs`` into the
            test vectors, so that ``verify`` compares the neuron state too.
        exporter: the framework whose NIR exporter wrote ``model`` (see ``load``).
        input_shape: per-sample input shape of a live module (see ``load``).
        time_first: ``inputs`` and ``calibrate`` are ``[time, batch, *shape]`` arrays
            (``arrange_inputs``).
        note: called with one line per input array saying how it was read.

    Returns:
        The graph, the float and quantized nets, the report (``report.json``'s content) and
        the files written.

    Raises:
        UsageError: ``labels`` without ``inputs``.
        InputFileError: bad inputs or labels (``check_labels``).

    Examples:
        >>> import snn_deploy as sd  # doctest: +SKIP
        >>> result = sd.compile(model, "sim", inputs={"input": x}, out_dir="out")  # doctest: +SKIP
        >>> sd.verify("out").passed  # doctest: +SKIP
        True
    """
    if labels is not None and inputs is None:
        raise UsageError("labels are the classes of the --inputs samples; give inputs too")
    source = Path(model) if isinstance(model, str | Path) else None
    target_file = [target] if Path(target).suffix == ".toml" else []
    files_read = [*([source] if source is not None else []), *target_file, *reads]
    if out_dir is not None:  # refuse before any work
        out_dir = outdir.check(out_dir, reads=files_read, force=force)
    tgt = load_target(target)
    graph = load(
        source if source is not None else model,
        reset=reset,
        dt=dt,
        trust_pickle=trust_pickle,
        exporter=exporter,
        input_shape=input_shape,
    )
    dt = graph_dt(graph, dt)
    lines: list[str] = []
    if inputs is not None:
        inputs, lines = arrange_inputs(inputs, graph, time_first=time_first)
    if calibrate is not None:
        calibrate, more = arrange_inputs(calibrate, graph, time_first=time_first, given="calibrate")
        lines += more
    for line in lines:
        if note is not None:
            note(line)
    float_net, net = lower_and_quantize(
        graph,
        tgt,
        dt=dt,
        passes=passes,
        calibrate=calibrate,
        dump_after=dump_after,
        inputs=inputs,
    )
    backend, program = lower_for_target(net, tgt)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "snn_deploy_version": __version__,
        "model": source.name if source is not None else type(model).__name__,
        "target": tgt.name,
        "backend": tgt.backend,
        "dt": net.dt,
        "pipeline": passes or default_pipeline(dt, calibrated=calibrate is not None),
        "provenance": provenance(
            source if source is not None else graph, tgt, inputs=inputs, calibrate=calibrate
        ),
        "latency": latency(graph, net.dt),
        "graph": {
            "nodes": len(graph.nodes),
            "edges": len(graph.edges),
            "node_types": dict(
                sorted(Counter(type(v).__name__ for v in graph.nodes.values()).items())
            ),
        },
        "resources": resources(net, tgt),
        "placement": utilization(net, tgt) if _placed(net) else None,
        "quantization": {
            **quantization(net),
            "inputs": input_ranges(
                float_net, _observed(float_net, calibrate, inputs), _declared(graph)
            ),
        },
        "weights": weight_histograms(net),
        "energy": None,
        "paper_energy": None,
        "activity": None,
        "agreement": None,
        "activations": None,
        "accuracy": None,
        "backend_notes": backend.notes(program),
    }
    trace = None
    if inputs is not None:
        _check_run_memory(net, inputs, traces=2)  # the program's and the float reference's
        data = check_inputs(net, inputs)  # [batch, time, size]: what the reports count
        batch = next(iter(data.values())).shape[0]
        y = None if labels is None else check_labels(labels, net, batch)
        trace = backend.run(program, inputs, record_state=record_state, progress=progress)
        counts = activity(net, trace, data, tgt)
        cores = report["placement"]["cores_used"] if report["placement"] else None
        report["energy"] = energy(counts, tgt, cores, report["backend_notes"])
        report["paper_energy"] = paper_energy(counts, tgt)
        report["activity"] = trace_summary(net, trace, data)
        float_trace = run_sim(float_net, inputs, fixed=False)
        report["agreement"] = agreement(float_trace, trace, net)
        report["activations"] = {
            k: activation_histogram(float_trace.populations[k], trace.populations[k])
            for k, p in net.populations.items()
            if p.spiking
        }
        if y is not None:
            report["accuracy"] = accuracy(float_trace, trace, net, y)
    files: tuple[Path, ...] = ()
    if out_dir is not None:
        files = tuple(
            outdir.write(
                out_dir,
                lambda d: _emit(d, backend, program, graph, net, report, inputs, trace),
                force=force,
            )
        )
    return CompileResult(graph=graph, float_net=float_net, net=net, report=report, files=files)


def lower_for_target(net: Net, target: Target) -> tuple[Any, Any]:
    """Check ``net`` against every design rule of ``target`` and lower it for the target's
    backend: what ``compile`` does before it runs or writes anything, and all ``check`` does.

    The target's rules run first (``target.rules.check_design_rules``), then the backend's
    ``lower``, which checks the backend's own (the fpga board's ``fpga-*`` rules, with the
    analytical resource estimate; the Lava backend's spike payload and product registers).

    Returns:
        The backend (its module) and its program.

    Raises:
        DesignRuleError: listing every violation of the first check that fails.
        TargetError: the target names an unknown backend.
    """
    check_design_rules(net, target)
    backend = _backend(target)
    return backend, backend.lower(net, target)


def latency(graph: Graph, dt: float) -> dict[str, int]:
    """Each Output's latency in steps against a delay-free source model: the projections (one
    step each, docs/SEMANTICS.md §1) plus ``Delay`` steps on the shortest path from an Input.
    Our output at step ``t + latency`` answers the source's at step ``t``."""
    neurons = {k for k, v in graph.nodes.items() if isinstance(v, n.NEURONS)}
    delays = {
        k: round(float(np.max(v.delay)) / dt)
        for k, v in graph.nodes.items()
        if isinstance(v, n.Delay)
    }
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, n.Input)]
    lag = exporters.lags(list(graph.edges), inputs, neurons, delays)
    return {k: lag[k] for k, v in graph.nodes.items() if isinstance(v, n.Output) and k in lag}


def provenance(
    model: Path | Graph,
    target: Target,
    *,
    inputs: Mapping[str, npt.ArrayLike] | None = None,
    calibrate: Mapping[str, npt.ArrayLike] | None = None,
) -> dict[str, Any]:
    """The sha256 of everything a compile read, so that ``report --compare`` can say which changed.

    Files (the model, the target file and its arithmetic in ``targets/formats/``) are hashed as
    bytes; a model given live (a module or NIR graph) is hashed as the graph it loaded to
    (``_graph_hash``). Inputs are hashed as arrays, so the same arrays give the same hash
    whether they came from an ``.npz`` or from Python: sha256 over each array in name order, as
    its name, dtype, shape and C-order bytes (``arrays_sha256``).
    """

    def arrays(data: Mapping[str, npt.ArrayLike] | None) -> dict[str, Any] | None:
        if data is None:
            return None
        h = hashlib.sha256()
        for name in sorted(data):
            a = np.ascontiguousarray(data[name])
            h.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
            h.update(a.tobytes())
        return {"names": sorted(data), "arrays_sha256": h.hexdigest()}

    def file(path: Path) -> dict[str, str]:
        with path.open("rb") as f:
            return {"path": path.name, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}

    return {
        "model": file(model) if isinstance(model, Path) else _graph_hash(model),
        "target": file(target.path),
        "target_numeric": file(target.numeric_path),
        "inputs": arrays(inputs),
        "calibrate": arrays(calibrate),
    }


def _graph_hash(graph: Graph) -> dict[str, str]:
    """A live model's provenance: sha256 over its loaded graph, node by node in name order
    (type, then each field: arrays as dtype, shape and C-order bytes, others as ``repr``),
    then the sorted edges."""
    h = hashlib.sha256()
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        h.update(f"{name}\0{type(node).__name__}\0".encode())
        for f in fields(node):
            value = getattr(node, f.name)
            if isinstance(value, np.ndarray):
                a = np.ascontiguousarray(value)
                h.update(f"{f.name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
                h.update(a.tobytes())
            else:
                h.update(f"{f.name}\0{value!r}\0".encode())
    h.update(repr(sorted(graph.edges)).encode())
    return {"path": "<live model>", "sha256": h.hexdigest()}


def _backend(target: Target) -> Any:
    backends = get_all_backends()
    if target.backend not in backends:
        raise TargetError(
            f"{target.path}: backend {target.backend!r} is unknown; known: {', '.join(backends)}"
        )
    return backends[target.backend]()


def read_report(folder: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a compile output folder, as strict JSON (no NaN or Infinity).

    Raises:
        InputFileError: no report, not JSON, or not an snn-deploy report.
    """
    path = Path(folder) / "report.json"
    if not path.is_file():
        raise InputFileError(f"{folder} has no report.json: is it a compile output folder?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_not_json)
    except (OSError, ValueError) as exc:  # ValueError: JSON or UTF-8 decoding
        raise InputFileError(f"{path} is not a readable JSON report: {exc}") from exc
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != REPORT_SCHEMA:
        raise InputFileError(
            f"{path}: schema is {schema!r}, not {REPORT_SCHEMA!r}: not an snn-deploy report"
        )
    return data  # type: ignore[no-any-return]


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _placed(net: Net) -> bool:
    return all(p.placement is not None for p in net.populations.values())


def _emit(
    d: Path,
    backend: Any,
    program: Any,
    graph: Graph,
    net: Net,
    report: dict[str, Any],
    inputs: Mapping[str, npt.ArrayLike] | None,
    trace: Trace | None,
) -> list[Path]:
    files: list[Path] = list(backend.emit(program, d))
    # the emitted files' own facts (the FPGA backend's Yosys synthesis) replace the estimate
    report["backend_notes"] = backend.notes(program, d)
    nir.write(d / "graph.nir", nir_frontend.dump(graph))
    files.append(d / "graph.nir")
    if _placed(net):
        text = to_json(placement(net)) + "\n"
        (d / "placement.json").write_text(text)
        files.append(d / "placement.json")
    if inputs is not None and trace is not None:
        np.savez_compressed(d / "vectors.npz", **vectors(inputs, trace))
        files.append(d / "vectors.npz")
    report["artefacts"] = [
        {
            "path": f.name,
            "bytes": f.stat().st_size,
            "sha256": hashlib.sha256(f.read_bytes()).hexdigest(),
        }
        for f in files
    ]
    (d / "report.json").write_text(to_json(report) + "\n")
    (d / "report.html").write_text(render_html(report))
    return [*files, d / "report.json", d / "report.html"]


def load_program(path: str | Path) -> Net:
    """Load a compiled network: a compile output folder or its ``network.npz``."""
    path = Path(path)
    return serialize.load(path / "network.npz" if path.is_dir() else path)


def simulate(
    net: Net | CompileResult | str | Path,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    target: str | Path = "sim",
    fixed: bool = True,
    record_state: bool = False,
    progress: Progress | None = None,
    align: Mapping[str, int] | None = None,
) -> Trace:
    """Run ``net`` on ``inputs`` with the target's backend (``sim``: bit-accurate simulator,
    ``loihi-sim``: Lava); ``fixed=False`` runs the float reference in the simulator.

    ``net`` is a compiled network, a ``compile`` result (its quantized net; its float net
    with ``fixed=False``) or a compile output folder (``load_program``). ``inputs`` are
    ``[batch, time, *shape]`` arrays keyed by Input name.

    ``align`` gives each Output's latency in steps (``latency``; a compile's
    ``report["latency"]``): the run goes on for the largest latency in extra steps of zero
    input, and each output is shifted left by its own latency, so that its step ``t`` answers
    the source model's step ``t`` for every one of the ``T`` input steps (outputs it does not
    name are not shifted). Populations, ``u`` and ``v`` keep our time base: ``T`` plus the
    largest latency steps.

    Examples:
        >>> trace = sd.simulate(result, x, align=result.report["latency"])  # doctest: +SKIP
    """
    if isinstance(net, CompileResult):
        net = net.net if fixed else net.float_net
    elif isinstance(net, str | Path):
        net = load_program(net)
    if align is not None:
        data = check_inputs(net, inputs)
        steps = next(iter(data.values())).shape[1]
        extra = max(align.values(), default=0)
        inputs = {
            k: np.pad(v, ((0, 0), (0, extra), (0, 0))).reshape(len(v), -1, *net.inputs[k])
            for k, v in data.items()
        }
        trace = simulate(
            net, inputs, target=target, fixed=fixed, record_state=record_state, progress=progress
        )
        outputs = {k: v[:, align.get(k, 0) :][:, :steps] for k, v in trace.outputs.items()}
        return dataclasses.replace(trace, outputs=outputs)
    _check_run_memory(net, inputs, traces=3 if record_state else 1)
    if not fixed:
        return run_sim(net, inputs, fixed=False, record_state=record_state, progress=progress)
    if not net.quantized:
        raise SnnDeployError("this network is not quantized; compile it first or use --float")
    tgt = load_target(target)
    backend = _backend(tgt)
    program = backend.lower(net, tgt)
    return backend.run(program, inputs, record_state=record_state, progress=progress)  # type: ignore[no-any-return]


def verify(
    out_dir: str | Path, *, target: str | None = None, progress: Progress | None = None
) -> Verification:
    """Replay a compile output folder's ``vectors.npz`` and compare every output exactly.

    The folder's inputs run on ``target``; each ``output.<name>`` (and ``u``/``v``, when
    ``compile`` recorded them) must equal the run's, slot for slot.

    Args:
        out_dir: a folder written by ``compile`` with ``inputs``.
        target: ``sim`` (the bit-accurate simulator; any folder, since ``network.npz`` is the
            specification), ``loihi-sim`` (Lava's fixed-point CPU simulation), ``rtl`` (the
            folder's own Verilog and memory files in Icarus Verilog; folders compiled for an
            fpga target) or ``xylosim`` (SynSense's Xylo simulator; folders compiled for a
            xylo target). Default: the backend the folder was compiled for.
        progress: called as ``progress(done, total)`` while the program runs.

    Returns:
        The comparison; ``passed`` is false on any difference.

    Raises:
        UsageError: an unknown ``target``, ``rtl`` for a folder not compiled for an fpga or
            ``xylosim`` for one not compiled for a xylo target.
        InputFileError: the folder lacks ``report.json``, ``network.npz`` or ``vectors.npz``.
    """
    out = Path(out_dir)
    compiled = read_report(out)
    run = replay_backend(out, compiled, target)
    if not (out / "vectors.npz").is_file():
        raise InputFileError(
            f"{out} has no vectors.npz: compile with --inputs to write test vectors"
        )
    expected = read_vectors(out / "vectors.npz")
    inputs = {k.removeprefix("input."): v for k, v in expected.items() if k.startswith("input.")}
    net = load_program(out)
    record = records_state(expected)
    trace = replay(out, compiled, run, net, inputs, record_state=record, progress=progress)
    checks = compare(expected, vectors(inputs, trace))
    return Verification(folder=str(out), target=run, checks=checks)


def replay_backend(out: Path, compiled: Mapping[str, Any], target: str | None) -> str:
    """Where a compile output folder runs (``verify``, ``evaluate``): ``target``, checked,
    or the backend the folder was compiled for (``compiled``: its ``report.json``).

    Raises:
        UsageError: an unknown ``target``, or ``rtl`` for a folder not compiled for an fpga.
    """
    backend = compiled.get("backend")
    run = target or _VERIFY_DEFAULT.get(str(backend), "sim")
    if run not in VERIFY_TARGETS:
        raise UsageError(f"verify runs on {', '.join(VERIFY_TARGETS)}; got {run!r}")
    if run == "rtl" and backend != "fpga":
        raise UsageError(
            f"--target rtl needs a folder compiled for an fpga target; {out} is for "
            f"{compiled.get('target')}"
        )
    if run == "xylosim" and backend != "xylo":
        raise UsageError(
            f"--target xylosim needs a folder compiled for a xylo target; {out} is for "
            f"{compiled.get('target')}"
        )
    return run


def replay(
    out: Path,
    compiled: Mapping[str, Any],
    run: str,
    net: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    record_state: bool = False,
    progress: Progress | None = None,
) -> Trace:
    """Run a compile output folder's ``net`` on ``inputs`` on ``run`` (``replay_backend``).

    ``rtl`` simulates the folder's own Verilog and memory files; Lava runs a Loihi folder
    with its own target, any other folder on ``loihi-sim``.
    """
    backend, compiled_for = compiled.get("backend"), str(compiled.get("target"))
    if run == "rtl":
        program = get_all_backends()["fpga"]().lower(net, load_target(compiled_for))
        return simulate_rtl(
            program, inputs, record_state=record_state, design=out, progress=progress
        )[0]
    if run == "xylosim":  # the folder's network.npz laid out again on the chip, on xylosim
        xylo = get_all_backends()["xylo"]()
        program = xylo.lower(net, load_target(compiled_for))
        trace: Trace = xylo.run(program, inputs, record_state=record_state, progress=progress)
        return trace
    lava = compiled_for if backend == "lava" else "loihi-sim"
    return simulate(
        net,
        inputs,
        target=lava if run == "loihi-sim" else "sim",
        record_state=record_state,
        progress=progress,
    )
