"""Evaluate a compiled network on a whole data set, in shards, on an engine (``snn-deploy
evaluate``), and compare compile configurations (``snn-deploy sweep``).

**Data layout** (``open_dataset``). ``DATA`` is one of:

* a folder of ``.npz`` files, read in name order, each holding one array per Input node
  (``[batch, time, *shape]``, named like the node; any name for a single-input net) and
  optionally a labels array ``[batch]`` (``--labels KEY``); every file is read whole when a
  shard of it runs, so files of about ``shard_size`` samples keep memory bounded;
* a folder of ``.npy`` files, one per input and one for the labels (``input.npy``,
  ``labels.npy``), memory-mapped: a shard reads only its own samples;
* a single ``.npz`` file (small sets: it is read whole for each of its shards).

With ``time_first`` (``--time-first``) the inputs are ``[time, batch, *shape]``: every array
of three or more axes has its samples on axis 1 and is transposed for the run; arrays of one
or two axes (the labels) keep theirs on axis 0. How a shard's inputs are read, and which
readings are refused, is ``api.arrange_inputs`` (with ``--steps`` as the steps a run needs).

Each file is cut into shards of ``shard_size`` samples in order. A shard is the unit of work
and of resumption: its exact counts (``reports.evaluation.shard_stats``) are written to
``RESULTS/shards/<index>.json`` as it finishes, and a run on a results folder that holds the
same run (``run.json``: program, backend, options, shard list) computes only the missing
shards. The figures are made from the counts of every shard in shard order, so the JSON is
the same, byte for byte, for any engine, number of workers and order of completion.

**What a task gets.** The compile output folder as bytes (``Deployment``: every file but the
test vectors and the HTML report), shared once per engine (Ray: once per node); each worker
writes it to a private temporary folder once and keeps the loaded net for later shards. Local
workers read their shard from the data files; on Ray the driver reads each shard and ships
its arrays with the task, so the nodes need no shared file system.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy import __version__, api, outdir
from snn_deploy.backends.base import check_inputs
from snn_deploy.backends.sim.run import simulate as run_sim
from snn_deploy.engine import Engine, InProcess, set_threads
from snn_deploy.errors import InputFileError, MismatchError, UsageError
from snn_deploy.frontends import nir as nir_frontend
from snn_deploy.ir.net import Net
from snn_deploy.limits import check_array, read_npz
from snn_deploy.passes import pipeline
from snn_deploy.passes.base import PassContext
from snn_deploy.reports import evaluation
from snn_deploy.reports.render import to_json
from snn_deploy.target.load import load_target
from snn_deploy.target.schema import Target

SHARD_SIZE = 1024
"""Samples per shard unless ``--shard-size`` says otherwise."""
RUN = "run.json"
RESULT = "evaluation.json"
SHARDS = "shards"
_LEFT_OUT = {"vectors.npz", "report.html", outdir.MANIFEST}
"""Files of a compile output folder a task does not need."""

Progress = Callable[[int, int], None]
"""Called as ``progress(samples_done, samples)``; first with the samples of resumed shards."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Samples ``start:stop`` of one data file (or of the ``.npy`` folder)."""

    index: int
    path: str
    start: int
    stop: int
    offset: int
    """The index of the shard's first sample in the whole set."""
    time_first: bool = False
    """The inputs are ``[time, batch, *shape]``: samples on axis 1 (module docstring)."""

    @property
    def name(self) -> str:
        """``file[start:stop]``, for messages."""
        return f"{Path(self.path).name}[{self.start}:{self.stop}]"


def open_dataset(
    data: str | Path, shard_size: int = SHARD_SIZE, *, time_first: bool = False
) -> list[Shard]:
    """The shards of a data set (layouts in the module docstring), from file headers only.

    Raises:
        UsageError: ``shard_size`` below 1.
        InputFileError: no data files, mixed layouts, arrays of unequal sample counts.
    """
    if shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1; got {shard_size}")
    data = Path(data)
    if data.is_dir():
        npz, npy = sorted(data.glob("*.npz")), sorted(data.glob("*.npy"))
        if npz and npy:
            raise InputFileError(f"{data} holds both .npz and .npy files; use one layout")
        if not (npz or npy):
            raise InputFileError(f"{data} holds no .npz or .npy files")
        sizes = [(str(f), _npz_shapes(f)) for f in npz] or [
            (str(data), {f.stem: _npy_shape(f) for f in npy})
        ]
    elif data.suffix == ".npz" and data.is_file():
        sizes = [(str(data), _npz_shapes(data))]
    else:
        raise InputFileError(f"{data}: give a folder of .npz or .npy files, or an .npz file")
    steps = {
        s[1 - _sample_axis(s, time_first)]
        for _, shapes in sizes
        for s in shapes.values()
        if len(s) >= 2
    }
    if len(steps) > 1:
        raise InputFileError(
            f"{data}: the arrays have different numbers of time steps "
            f"(axis {0 if time_first else 1}): {sorted(steps)}"
        )
    shards: list[Shard] = []
    offset = 0
    for path, shapes in sizes:
        samples = _samples(Path(path), shapes, time_first)
        for start in range(0, samples, shard_size):
            stop = min(samples, start + shard_size)
            shards.append(Shard(len(shards), path, start, stop, offset, time_first))
            offset += stop - start
    return shards


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    try:
        with zipfile.ZipFile(path) as zf:
            shapes = {}
            for info in zf.infolist():
                with zf.open(info) as f:
                    shapes[info.filename.removesuffix(".npy")] = _header(f)
            return shapes
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputFileError(f"{path} is not a readable .npz file: {exc}") from exc


def _npy_shape(path: Path) -> tuple[int, ...]:
    try:
        with path.open("rb") as f:
            return _header(f)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path} is not a readable .npy file: {exc}") from exc


def _header(f: Any) -> tuple[int, ...]:
    version = np.lib.format.read_magic(f)  # type: ignore[no-untyped-call]
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, _ = read(f)  # type: ignore[no-untyped-call]
    return tuple(shape)


def _sample_axis(shape: tuple[int, ...], time_first: bool) -> int:
    """The axis of an array's samples: 1 for a time-first input (three or more axes), else 0."""
    return 1 if time_first and len(shape) >= 3 else 0


def _samples(path: Path, shapes: Mapping[str, tuple[int, ...]], time_first: bool) -> int:
    counts = {k: s[_sample_axis(s, time_first)] if s else None for k, s in shapes.items()}
    if not counts or None in counts.values() or len(set(counts.values())) != 1:
        raise InputFileError(
            f"{path}: every array needs the same number of samples on its "
            f"{'sample' if time_first else 'first'} axis; "
            f"found {', '.join(f'{k} {list(s)}' for k, s in shapes.items()) or 'no arrays'}"
        )
    return int(next(iter(counts.values())))  # type: ignore[arg-type]


def read_shard(shard: Shard) -> dict[str, npt.NDArray[Any]]:
    """The arrays of one shard (checked: boolean, integer or finite float)."""
    path = Path(shard.path)
    if path.is_dir():
        arrays = {}
        for f in sorted(path.glob("*.npy")):
            try:
                arrays[f.stem] = np.array(_rows(np.load(f, mmap_mode="r"), shard))
            except (OSError, ValueError) as exc:
                raise InputFileError(f"{f} is not a readable .npy file: {exc}") from exc
    else:
        arrays = {k: _rows(v, shard) for k, v in read_npz(path).items()}
    return {k: check_array(shard.name, k, v, kinds="biuf") for k, v in arrays.items()}


def _rows(array: npt.NDArray[Any], shard: Shard) -> npt.NDArray[Any]:
    """The shard's samples of ``array``, on its sample axis (``_sample_axis``)."""
    rows = slice(shard.start, shard.stop)
    return array[:, rows] if _sample_axis(array.shape, shard.time_first) else array[rows]


@dataclass(frozen=True, slots=True)
class Deployment:
    """A compile output folder as bytes, for tasks that may run on another machine."""

    sha256: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def read(cls, folder: Path) -> Deployment:
        """The files of ``folder`` a task needs (all but vectors, HTML report and manifest)."""
        files = tuple(
            (f.relative_to(folder).as_posix(), f.read_bytes())
            for f in sorted(folder.rglob("*"))
            if f.is_file() and f.name not in _LEFT_OUT
        )
        h = hashlib.sha256()
        for name, data in files:
            h.update(f"{name}\0{len(data)}\0".encode())
            h.update(data)
        return cls(h.hexdigest(), files)


@dataclass(frozen=True, slots=True)
class Job:
    """What every shard of one evaluation runs with (small: sent with every task)."""

    backend: str
    labels: str | None
    steps: int | None
    verify: bool
    threads: int | None


@dataclass(frozen=True, slots=True)
class _Loaded:
    folder: Path
    report: dict[str, Any]
    net: Net
    float_net: Net
    target: Target


_CACHE: dict[str, _Loaded] = {}
"""Per process: the deployments already unpacked and loaded, by sha256."""


def _load(deployment: Deployment) -> _Loaded:
    if deployment.sha256 in _CACHE:
        return _CACHE[deployment.sha256]
    folder = Path(tempfile.mkdtemp(prefix="snn-deploy-eval."))
    atexit.register(shutil.rmtree, folder, True)
    for name, data in deployment.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    report = api.read_report(folder)
    target = load_target(str(report["target"]))
    # our own dump of the float graph: no exporter's conventions to guess
    graph = nir_frontend.load(folder / "graph.nir", detect_exporter=False)
    lower = pipeline.parse(f"lower{{dt={float(report['dt'])!r}}}")
    float_net = pipeline.run(graph, lower, PassContext(target=target))
    assert isinstance(float_net, Net)
    loaded = _Loaded(folder, report, api.load_program(folder), float_net, target)
    _CACHE[deployment.sha256] = loaded
    return loaded


def run_shard(
    job: Job,
    deployment: Deployment,
    shard: Shard,
    arrays: dict[str, npt.NDArray[Any]] | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one shard (a task): the program on ``job.backend``, the float reference and, with
    ``job.verify``, ``sim``; return the shard's record (``shard_stats`` and the arrays' hash).

    ``progress`` (a task run in this process) is passed to the backend: Lava, Icarus and
    xylosim call it as ``progress(samples_done, shard_samples)`` after each sample.
    """
    if job.threads is not None:
        set_threads(job.threads)
    d = _load(deployment)
    arrays = read_shard(shard) if arrays is None else arrays
    inputs, labels = _split(arrays, d.net, job.labels, shard)
    inputs, _ = api.arrange_inputs(
        inputs, d.net, time_first=shard.time_first, steps=job.steps, given=shard.name
    )
    if job.steps is not None:
        steps = next(iter(inputs.values())).shape[1]
        if steps < job.steps:
            raise InputFileError(
                f"{shard.name}: {steps} time steps, fewer than --steps {job.steps}"
            )
        inputs = {k: v[:, : job.steps] for k, v in inputs.items()}
    data = check_inputs(d.net, inputs)
    trace = api.replay(d.folder, d.report, job.backend, d.net, inputs, progress=progress)
    reference = None
    if job.verify:
        reference = trace if job.backend == "sim" else run_sim(d.net, inputs)
    stats = evaluation.shard_stats(
        d.net,
        data,
        trace,
        run_sim(d.float_net, inputs, fixed=False),
        labels=labels,
        target=d.target,
        reference=reference,
        offset=shard.offset,
    )
    return {
        "shard": shard.index,
        "source": shard.name,
        "sha256": _arrays_sha256(arrays),
        "steps": int(next(iter(data.values())).shape[1]),
        "stats": stats,
    }


def _arrays_sha256(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    """sha256 over each array in name order: name, dtype, shape, C-order bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _split(
    arrays: Mapping[str, npt.NDArray[Any]], net: Net, labels: str | None, shard: Shard
) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.int64] | None]:
    """The input arrays (named like the net's inputs; any one for a single-input net) and the
    labels of a shard."""
    rest = dict(arrays)
    y = None
    if labels is not None:
        if labels not in rest:
            raise InputFileError(
                f"{shard.name}: no labels array {labels!r}; arrays: {sorted(arrays)}"
            )
        y = check_array(
            shard.name, labels, rest.pop(labels), kinds="iu", shape=(shard.stop - shard.start,)
        ).astype(np.int64)
    named = {k: rest[k] for k in net.inputs if k in rest}
    if not named and len(net.inputs) == 1 and len(rest) == 1:
        named = {next(iter(net.inputs)): next(iter(rest.values()))}
    if len(named) != len(net.inputs):
        raise InputFileError(
            f"{shard.name}: expected arrays named {sorted(net.inputs)}"
            + (f" and the labels {labels!r}" if labels else "")
            + f"; found {sorted(arrays)}"
        )
    return named, y


def evaluate(
    folder: str | Path,
    data: str | Path,
    *,
    results: str | Path,
    target: str | None = None,
    labels: str | None = None,
    steps: int | None = None,
    verify: bool = False,
    shard_size: int = SHARD_SIZE,
    engine: Engine | None = None,
    force: bool = False,
    progress: Progress | None = None,
    time_first: bool = False,
) -> dict[str, Any]:
    """Evaluate a compile output folder on a data set, shard by shard; resumable.

    Args:
        folder: a folder written by ``compile``.
        data: the data set (layouts: module docstring).
        results: the folder of per-shard results and ``evaluation.json``; a folder holding
            the same run is resumed (``snn_deploy.outdir`` rules otherwise).
        target: ``sim``, ``loihi-sim``, ``rtl`` or ``xylosim`` (``api.replay_backend``);
            default: the backend the folder was compiled for.
        labels: the name of the labels array (``[batch]`` class indices) in the data.
        steps: run only the first ``steps`` time steps of every sample.
        verify: also run ``sim`` and compare every output value of ``target`` with it.
        shard_size: samples per shard.
        engine: where the shards run (``engine.open_engine``); default: this process.
        force: replace a results folder snn-deploy did not write, or one of another run.
        progress: called as shards finish and, when they run in this process (no
            ``engine``, or ``InProcess``) on ``loihi-sim``, ``rtl`` or ``xylosim``, after
            each sample of a shard too.
        time_first: the inputs are ``[time, batch, *shape]`` (module docstring).

    Returns:
        The evaluation (``reports.evaluation.finish`` plus what was run), as written to
        ``results/evaluation.json``.

    Raises:
        UsageError: ``--verify`` on ``sim`` (it would compare ``sim`` with itself).
        InputFileError: unusable data, or a results folder of another run without ``force``.
    """
    out = Path(folder)
    compiled = api.read_report(out)
    backend = api.replay_backend(out, compiled, target)
    if verify and backend == "sim":
        raise UsageError(
            "--verify compares the backend with sim: give --target loihi-sim, rtl or xylosim"
        )
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be at least 1; got {steps}")
    shards = open_dataset(data, shard_size, time_first=time_first)
    deployment = Deployment.read(out)
    files = [out / name for name, _ in deployment.files]
    reads = [*files, *_data_files(shards)]
    run = {
        "schema": evaluation.SCHEMA,
        "snn_deploy_version": __version__,
        "program_sha256": deployment.sha256,
        "backend": backend,
        "labels": labels,
        "steps": steps,
        "verify": verify,
        "time_first": time_first,
        "shards": [[Path(s.path).name, _bytes(s.path), s.start, s.stop] for s in shards],
    }
    where = _prepare(Path(results), run, reads=reads, force=force)
    done = {i: rec for i, rec in _finished(where).items() if i < len(shards)}
    total = sum(s.stop - s.start for s in shards)
    if progress is not None:
        progress(sum(shards[i].stop - shards[i].start for i in done), total)
    runner: Engine = engine or InProcess()
    job = Job(backend, labels, steps, verify, runner.threads)
    shared = runner.share(deployment)

    finished = sum(shards[i].stop - shards[i].start for i in done)

    def within(shard: Shard) -> Progress | None:
        """The shard's per-sample progress, when it runs here (one task at a time) on a
        backend that reports samples (``sim`` reports time steps, and is fast)."""
        tell = progress
        if tell is None or backend == "sim" or not isinstance(runner, InProcess):
            return None

        def report(samples: int, _: int) -> None:
            if samples < shard.stop - shard.start:  # the last: when its record is written
                tell(finished + samples, total)

        return report

    def tasks() -> Iterator[tuple[Any, ...]]:
        for s in shards:
            if s.index not in done:
                yield job, shared, s, read_shard(s) if runner.ships_data else None, within(s)

    for record in runner.imap(run_shard, tasks()):
        text = to_json(record)
        _write(where / SHARDS / f"{record['shard']:06d}.json", text + "\n")
        done[record["shard"]] = json.loads(text)  # as a resumed run reads it: keys sorted
        finished += shards[record["shard"]].stop - shards[record["shard"]].start
        if progress is not None:
            progress(finished, total)
    records = [done[i] for i in range(len(shards))]
    result = _result(compiled, run, records, out)
    _write(where / RESULT, to_json(result) + "\n")
    _manifest(where, final=True)
    return result


def _data_files(shards: list[Shard]) -> list[Path]:
    """The files a data set's shards read, each once."""
    paths = dict.fromkeys(Path(s.path) for s in shards)
    return [f for p in paths for f in (sorted(p.glob("*.npy")) if p.is_dir() else [p])]


def _bytes(path: str) -> int:
    p = Path(path)
    files = sorted(p.glob("*.npy")) if p.is_dir() else [p]
    return sum(f.stat().st_size for f in files)


def _result(
    compiled: Mapping[str, Any], run: Mapping[str, Any], records: list[dict[str, Any]], out: Path
) -> dict[str, Any]:
    h = hashlib.sha256()
    for r in records:
        h.update(bytes.fromhex(r["sha256"]))
    placement = compiled.get("placement")
    figures = evaluation.finish(
        evaluation.merge([r["stats"] for r in records]),
        load_target(str(compiled["target"])),
        placement["cores_used"] if placement else None,
        saturated_rate=api.SATURATED_RATE,
        notes=compiled.get("backend_notes"),
    )
    return {
        "schema": evaluation.SCHEMA,
        "snn_deploy_version": __version__,
        "folder": str(out),
        "model": compiled.get("model"),
        "target": compiled.get("target"),
        "backend": run["backend"],
        "program_sha256": run["program_sha256"],
        "data_sha256": h.hexdigest(),
        "shards": len(records),
        "steps": records[0]["steps"],
        "labels": run["labels"],
        "cores": placement["cores_used"] if placement else None,
        "latency": compiled.get("latency"),
        **figures,
    }


def _prepare(results: Path, run: Mapping[str, Any], *, reads: list[Path], force: bool) -> Path:
    """The results folder, ready: checked by ``outdir.check``, resumed if it holds ``run``,
    else emptied (``force``) or created, with ``run.json`` and a manifest."""
    where = outdir.check(results, reads=reads, force=force)
    if where.exists() and any(where.iterdir()):
        previous = _read_json(where / RUN)
        if previous == json.loads(to_json(run)):
            return where
        if previous is not None and not force:
            differ = sorted(k for k in run if previous.get(k) != run[k])
            raise InputFileError(
                f"{results} holds the results of another run (different {', '.join(differ)}); "
                "pass --force to start afresh, or choose another folder with -o"
            )
        shutil.rmtree(where)
    (where / SHARDS).mkdir(parents=True, exist_ok=True)
    _write(where / RUN, to_json(run) + "\n")
    _manifest(where, final=False)
    return where


def _finished(where: Path) -> dict[int, dict[str, Any]]:
    """The shard records already written (a truncated or foreign file is simply redone)."""
    done = {}
    for f in sorted((where / SHARDS).glob("*.json")):
        record = _read_json(f)
        if record is not None and f.stem == f"{record.get('shard', -1):06d}":
            done[int(record["shard"])] = record
    return done


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _manifest(where: Path, *, final: bool) -> None:
    """``manifest.json``: while running, the shards folder as a whole; at the end every file."""
    files = [RUN, *(f"{SHARDS}/{f.name}" for f in sorted((where / SHARDS).glob("*.json")))]
    files = [*files, RESULT] if final else [RUN, f"{SHARDS}/"]
    text = json.dumps({"written_by": f"snn-deploy {__version__}", "files": files}, indent=2)
    _write(where / outdir.MANIFEST, text + "\n")


def check_verified(result: Mapping[str, Any]) -> None:
    """Raise ``MismatchError`` if ``--verify`` found a value that differs from ``sim``."""
    check = result.get("verify")
    if check is None or check["passed"]:
        return
    bad = {k: c for k, c in check["arrays"].items() if c["mismatches"] or c["problem"]}
    key, c = next(iter(bad.items()))
    f = c["first"]
    if f is None:
        raise MismatchError(f"{result['backend']} differs from sim; {key}: {c['problem']}")
    raise MismatchError(
        f"{result['backend']} differs from sim in {len(bad)} output(s); {key}: "
        f"{c['mismatches']} of {c['slots']} values, first at sample {f['sample']}, step "
        f"{f['step']}, neuron {f['neuron']}: sim {f['expected']}, {result['backend']} {f['got']}"
    )


def eta(done: int, total: int, seconds: float, resumed: int, unit: str = "samples") -> str:
    """``done/total unit, rate unit/s, ETA`` for progress lines (``unit`` may be empty).

    Examples:
        >>> eta(300, 1000, 10.0, 100)
        '300/1000 samples (30.0 %), 20.0 samples/s, ETA 35 s'
        >>> eta(30, 40, 3.0, 0, "")
        '30/40 (75.0 %), 10.0/s, ETA 1 s'
        >>> eta(1, 1, 0.0, 1)
        '1/1 samples (100.0 %), - samples/s, ETA -'
    """
    rate = (done - resumed) / seconds if seconds > 0 else math.nan
    left = (total - done) / rate if rate > 0 else math.nan
    when = "-" if math.isnan(left) else f"{left:.0f} s" if left < 120 else f"{left / 60:.1f} min"
    pct = 100.0 * done / total if total else 100.0
    name = f" {unit}" if unit else ""
    speed = "-" if math.isnan(rate) else f"{rate:.1f}"  # no time or no work yet
    return f"{done}/{total}{name} ({pct:.1f} %), {speed}{name}/s, ETA {when}"


def compile_task(
    index: int, model: str, data: bytes, target: str, passes: str | None
) -> tuple[int, Deployment, list[str]]:
    """Compile a model given as bytes (a task: the worker may lack the file) for ``target``;
    returns ``index``, the output folder's bytes and the warnings, for the driver to show."""
    with tempfile.TemporaryDirectory(prefix="snn-deploy-sweep.") as tmp:
        path = Path(tmp) / model
        path.write_bytes(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            api.compile(path, target, out_dir=Path(tmp) / "out", passes=passes)
        shown = [str(w.message).replace(str(path), model) for w in caught]
        return index, Deployment.read(Path(tmp) / "out"), shown


def sweep_shard(
    config: int, job: Job, deployment: Deployment, shard: Shard, arrays: Any
) -> tuple[int, dict[str, Any]]:
    """``run_shard`` for configuration ``config`` of a sweep (a task)."""
    record = run_shard(job, deployment, shard, arrays)
    return config, json.loads(to_json(record))


def sweep(
    model: str | Path,
    data: str | Path,
    *,
    out: str | Path,
    targets: list[str],
    passes: list[str | None] | None = None,
    steps: list[int | None] | None = None,
    labels: str | None = None,
    shard_size: int = SHARD_SIZE,
    engine: Engine | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compile ``model`` for every (target, pipeline, steps) configuration and evaluate each on
    ``data`` in the bit-accurate simulator (which every backend equals bit for bit: check one
    with ``evaluate --verify``); compiles and shards run as tasks on ``engine``.

    Writes ``out`` all at once (``snn_deploy.outdir``): one compile folder per configuration
    (named ``<target>[-p<i>][-t<steps>]``) with its ``evaluation.json``, and the comparison
    ``sweep.json``, ``sweep.txt`` and ``sweep.html``.

    Returns:
        ``{"configurations": [...rows...], "evaluations": {name: evaluation}}``.
    """
    model = Path(model)
    shards = open_dataset(data, shard_size)
    reads = [model, *_data_files(shards)]
    where = outdir.check(out, reads=reads, force=force)
    configs: list[dict[str, Any]] = [
        {"target": t, "passes": p, "steps": s}
        for t in targets
        for p in passes or [None]
        for s in steps or [None]
    ]
    names = [
        c["target"]
        + (f"-p{(passes or []).index(c['passes'])}" if len(passes or []) > 1 else "")
        + (f"-t{c['steps']}" if c["steps"] is not None else "")
        for c in configs
    ]
    for c in configs:
        load_target(c["target"])  # an unknown target fails before any work
    runner: Engine = engine or InProcess()
    blob = model.read_bytes()
    unique = sorted({(c["target"], c["passes"]) for c in configs}, key=str)
    tasks_ = [(i, model.name, blob, t, p) for i, (t, p) in enumerate(unique)]
    done, shown = {}, {}
    for i, deployment, messages in runner.imap(compile_task, tasks_):  # in any order
        done[i] = deployment
        shown.update(dict.fromkeys(messages))
    for message in shown:  # each once, however many configurations gave it
        warnings.warn(message, UserWarning, stacklevel=2)
    compiled = {key: done[i] for i, key in enumerate(unique)}
    shared = {key: runner.share(d) for key, d in compiled.items()}
    records: dict[int, dict[int, dict[str, Any]]] = {i: {} for i in range(len(configs))}
    total = len(configs) * sum(s.stop - s.start for s in shards)
    if progress is not None:
        progress(0, total)

    def tasks() -> Iterator[tuple[Any, ...]]:
        for s in shards:
            arrays = read_shard(s) if runner.ships_data else None
            for i, c in enumerate(configs):
                job = Job("sim", labels, c["steps"], False, runner.threads)
                yield i, job, shared[(c["target"], c["passes"])], s, arrays

    finished = 0
    for i, record in runner.imap(sweep_shard, tasks()):
        records[i][record["shard"]] = record
        finished += shards[record["shard"]].stop - shards[record["shard"]].start
        if progress is not None:
            progress(finished, total)
    evaluations = {}
    rows = []
    for i, (name, c) in enumerate(zip(names, configs, strict=True)):
        d = compiled[(c["target"], c["passes"])]
        report = json.loads(dict(d.files)["report.json"])
        run = {"backend": "sim", "program_sha256": d.sha256, "labels": labels}
        evaluations[name] = _result(
            report, run, [records[i][j] for j in range(len(shards))], Path(name)
        )
        rows.append(evaluation.sweep_row(name, c, evaluations[name]))

    def emit(tmp: Path) -> list[Path]:
        files = []
        for name, c in zip(names, configs, strict=True):
            for rel, blob in compiled[(c["target"], c["passes"])].files:
                (tmp / name / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name / rel).write_bytes(blob)
                files.append(tmp / name / rel)
            (tmp / name / RESULT).write_text(to_json(evaluations[name]) + "\n")
            files.append(tmp / name / RESULT)
        texts = {
            "sweep.json": to_json({"configurations": rows}) + "\n",
            "sweep.txt": evaluation.sweep_text(rows) + "\n",
            "sweep.html": evaluation.sweep_html(rows),
        }
        for file, text in texts.items():
            (tmp / file).write_text(text)
            files.append(tmp / file)
        return files

    outdir.write(where, emit, force=force)
    return {"configurations": rows, "evaluations": evaluations}
