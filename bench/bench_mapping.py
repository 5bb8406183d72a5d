"""Benchmark of the ``map`` pass: cores used vs the lower bound, and time/memory vs scale.

Run: ``.venv/bin/python bench/bench_mapping.py [--max-synapses 1e8] [--out bench/results]``.
Prints two tables and writes ``mapping_quality.json`` and ``mapping_scale.json``.

* Quality: a suite of networks (dense MLPs, convolutional nets lowered from NIR, sparse
  random and locally connected recurrent nets) mapped onto loihi1 and loihi2; cores used vs
  ``max`` of the lower bounds of ``target.cost.core_lower_bounds``; for the uniform random
  net also ``random_fan_in_bound``, the cores any placement needs with high probability.
* Scale: (a) ``lower + quantize + map`` of dense MLPs built as NIR graphs, 1e4..1e7 synapses;
  (b) ``quantize + map`` of locally connected sparse nets built directly as a float ``Net``
  (NIR's ``Linear`` is dense, so a 1e8-synapse sparse net cannot go through ``lower``),
  1e4..1e8 synapses. Time is wall time; memory is the peak resident set size of a fresh
  child process per case (``ru_maxrss``), so one case never inflates the next.

The scale cases use Loihi 2 limits with ``chips`` raised to Hala Point's 1,152 chips (Intel's Hala
Point announcement, April 2024) so that the largest nets fit a system; that override lives here, not
in a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import nir
import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snn_deploy.frontends.nir import load as load_nir  # noqa: E402
from snn_deploy.ir.net import Net, Population, Projection  # noqa: E402
from snn_deploy.ir.types import ResetMode  # noqa: E402
from snn_deploy.passes.base import PassContext  # noqa: E402
from snn_deploy.passes.lower import lower  # noqa: E402
from snn_deploy.passes.map import Map, chips_used, cores_used  # noqa: E402
from snn_deploy.passes.quantize import quantize  # noqa: E402
from snn_deploy.target import cost  # noqa: E402
from snn_deploy.target.load import load_target  # noqa: E402
from snn_deploy.target.schema import Target  # noqa: E402

# Hala Point, 1,152 Loihi 2 chips (Intel, April 2024, as reported by eeNews Europe; secondary)
HALA_POINT_CHIPS = 1152


def big_system(name: str) -> Target:
    """A built-in target with ``chips`` raised to Hala Point's, for the scale cases."""
    t = load_target(name)
    return dataclasses.replace(t, limits=dataclasses.replace(t.limits, chips=HALA_POINT_CHIPS))


# --- networks -----------------------------------------------------------------------------


def _lif(shape: tuple[int, ...]) -> nir.LIF:
    return nir.LIF(
        tau=np.full(shape, 1e-2),
        r=np.ones(shape),
        v_leak=np.zeros(shape),
        v_threshold=np.ones(shape),
        v_reset=np.zeros(shape),
    )


def nir_mlp(sizes: list[int], seed: int = 0) -> nir.NIRGraph:
    """Input -> (Linear -> LIF) per layer -> Output."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "input"
    for i, n in enumerate(sizes[1:], 1):
        nodes[f"fc{i}"] = nir.Linear(weight=rng.normal(size=(n, sizes[i - 1])) * 0.1)
        nodes[f"lif{i}"] = _lif((n,))
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def nir_convnet(
    channels: list[int], hw: int, classes: int | None = 10, seed: int = 0, pool: bool = True
) -> nir.NIRGraph:
    """Input [c0, hw, hw] -> (Conv2d 3x3 pad 1 -> IF [-> SumPool 2]) per layer [-> Linear ->
    LIF ``classes``; None: the last layer is the output]."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type={"input": np.array([channels[0], hw, hw])})
    }
    edges, prev, size = [], "input", hw
    for i, (cin, cout) in enumerate(itertools.pairwise(channels), 1):
        nodes[f"conv{i}"] = nir.Conv2d(
            input_shape=(size, size),
            weight=rng.normal(size=(cout, cin, 3, 3)) * 0.2,
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=np.zeros(cout),
        )
        nodes[f"if{i}"] = nir.IF(
            r=np.ones((cout, size, size)),
            v_threshold=np.ones((cout, size, size)),
            v_reset=np.zeros((cout, size, size)),
        )
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"if{i}")]
        prev = f"if{i}"
        if pool:
            nodes[f"pool{i}"] = nir.SumPool2d(
                kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
            )
            edges.append((prev, f"pool{i}"))
            prev = f"pool{i}"
            size //= 2
    if classes is None:
        nodes["output"] = nir.Output(output_type={"output": np.array([channels[-1], size, size])})
        edges.append((prev, "output"))
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    flat = channels[-1] * size * size
    nodes["flat"] = nir.Flatten(
        input_type={"input": np.array([channels[-1], size, size])}, start_dim=0
    )
    nodes["fc"] = nir.Linear(weight=rng.normal(size=(classes, flat)) * 0.05)
    nodes["out_lif"] = _lif((classes,))
    nodes["output"] = nir.Output(output_type={"output": np.array([classes])})
    edges += [(prev, "flat"), ("flat", "fc"), ("fc", "out_lif"), ("out_lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _population(name: str, n: int) -> Population:
    return Population(
        name=name,
        node_type="LIF",
        shape=(n,),
        alpha=1.0,
        beta=0.05,
        bias=0.0,
        threshold=1.0,
        reset=ResetMode.ZERO,
    )


def local_sparse(
    n_src: int, n_dst: int, k: int, window: int, rng: np.random.Generator
) -> sp.csr_matrix:
    """Each destination neuron reads ``k`` distinct sources inside a window of ``window``
    sources centred on its position (a 1-D receptive field with random connections)."""
    window = min(max(window, k), n_src)
    centre = (np.arange(n_dst, dtype=np.int64) * n_src) // max(n_dst, 1)
    base = np.clip(centre - window // 2, 0, n_src - window)
    step = window // k
    jitter = rng.integers(0, step, n_dst)[:, None] if step > 1 else 0
    cols = base[:, None] + jitter + np.arange(k, dtype=np.int64)[None, :] * step
    indptr = np.arange(0, n_dst * k + 1, k, dtype=np.int64)
    data = rng.uniform(-0.1, 0.1, n_dst * k)
    indices = cols.reshape(-1).astype(np.int32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_dst, n_src))


def uniform_sparse(n_src: int, n_dst: int, k: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Each destination neuron reads ``k`` distinct sources drawn uniformly from all of them
    (independently per neuron: a liquid-state-machine-like random reservoir)."""
    cols = np.stack([np.sort(rng.choice(n_src, k, replace=False)) for _ in range(n_dst)])
    indptr = np.arange(0, n_dst * k + 1, k, dtype=np.int64)
    data = rng.uniform(-0.1, 0.1, n_dst * k)
    return sp.csr_matrix((data, cols.reshape(-1), indptr), shape=(n_dst, n_src))


def sparse_net(
    layers: list[int],
    k: int,
    window: int | None,
    recurrent: bool = False,
    seed: int = 0,
    uniform: bool = False,
) -> Net:
    """A float Net: input -> layer1 -> ... with ``k`` synapses per neuron (+ recurrence).

    ``window`` None spans the whole source layer: with ``local_sparse`` that is ``k``
    sources at stride ``n_src // k`` from a random offset below the stride, so the neurons
    fall into ``n_src // k`` classes with disjoint source sets, interleaved over the neuron
    index; ``uniform`` draws every neuron's sources independently instead (``uniform_sparse``).
    """
    rng = np.random.default_rng(seed)
    pops = {f"l{i}": _population(f"l{i}", n) for i, n in enumerate(layers[1:], 1)}
    projs, prev = [], "x"
    for i, n in enumerate(layers[1:], 1):
        w = window if window is not None else layers[i - 1]
        projs.append(
            Projection(
                name=f"w{i}",
                src=prev,
                dst=f"l{i}",
                weight=uniform_sparse(layers[i - 1], n, k, rng)
                if uniform
                else local_sparse(layers[i - 1], n, k, w, rng),
            )
        )
        if recurrent:
            projs.append(
                Projection(
                    name=f"r{i}",
                    src=f"l{i}",
                    dst=f"l{i}",
                    weight=local_sparse(n, n, k // 4, w, rng),
                )
            )
        prev = f"l{i}"
    return Net(
        dt=1e-3,
        inputs={"x": (layers[0],)},
        populations=pops,
        projections=projs,
        outputs={"y": prev},
    )


# --- quality ------------------------------------------------------------------------------


def quality_suite() -> dict[str, Any]:
    """name -> (builder of a quantized net for a target)."""

    def via_nir(graph_fn):  # type: ignore[no-untyped-def]
        return lambda t: quantize(lower(load_nir(graph_fn()), dt=1e-3), t.numeric)

    def direct(fn):  # type: ignore[no-untyped-def]
        return lambda t: quantize(fn(), t.numeric)

    return {
        "mlp 784-1000-1000-10": via_nir(lambda: nir_mlp([784, 1000, 1000, 10])),
        "mlp 784-4096-4096-10": via_nir(lambda: nir_mlp([784, 4096, 4096, 10])),
        "mlp 700-256-256-20 (SHD)": via_nir(lambda: nir_mlp([700, 256, 256, 20])),
        "conv 2-16-16 on 32x32 (DVS-like)": via_nir(lambda: nir_convnet([2, 16, 16], 32)),
        "conv 3-16-32-32 on 32x32": via_nir(lambda: nir_convnet([3, 16, 32, 32], 32)),
        "local sparse 3x20000, k=256": direct(lambda: sparse_net([20000] * 4, 256, 2048)),
        "recurrent local 2x20000, k=128": direct(
            lambda: sparse_net([20000] * 3, 128, 1024, recurrent=True)
        ),
        "interleaved sparse 3x20000, k=64": direct(lambda: sparse_net([20000] * 4, 64, None)),
        "uniform random sparse 3x20000, k=64": direct(
            lambda: sparse_net([20000] * 4, 64, None, uniform=True)
        ),
    }


RANDOM_SOURCES = {"uniform random sparse 3x20000, k=64"}
"""Suite nets whose every neuron's sources are drawn uniformly and independently, where
``random_fan_in_bound`` applies (a property of how the net was built: it cannot be read off
the net)."""


def random_fan_in_bound(net: Net, limits: Any, eps: float = 1e-9) -> int:
    """Cores any placement of ``net`` needs, with probability >= ``1 - eps`` over the random
    draw of its sources (each population: one projection whose rows read distinct sources
    drawn uniformly and independently; the weights that quantized to zero are independent of
    which sources were drawn).

    First moment: a row of ``d`` sources lies inside a given set of ``a`` of the ``N`` sources
    with probability ``C(a, d) / C(N, d) <= (a / N)**d``, so some ``r`` of the ``M`` rows lie
    inside some ``a``-set with probability at most ``C(N, a) C(M, r) (a / N)**D``, ``D`` the
    sum of the ``r`` smallest degrees. Union-bounding over every population and every ``a``
    up to the fan-in axons gives ``g[a]``, the most neurons of one population a core with
    ``a`` of its sources can hold; a core mixing populations (disjoint sources: the axons
    add) holds at most the max-plus convolution of the ``g`` at the axon limit.
    """
    from scipy.special import gammaln

    def log_choose(n: Any, k: Any) -> Any:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    axons = limits.fan_in_axons_per_core
    cap = limits.neurons_per_core
    assert len({p.dst for p in net.projections}) == len(net.projections) == len(net.populations)
    thr = np.log(eps / (len(net.projections) * axons))
    a = np.arange(1, axons + 1, dtype=np.float64)[:, None]
    r = np.arange(1, cap + 1)
    best = np.zeros(axons + 1, dtype=np.int64)  # most neurons with <= s axons, so far
    for i, proj in enumerate(net.projections):
        codes = proj.fixed.codes
        m, n = codes.shape
        degree = np.sort(np.diff(codes.indptr))
        assert degree[0] > 0  # a row without sources fits any core: not this argument
        total = np.concatenate([[0], np.cumsum(degree)])[np.minimum(r, m)][None, :]
        log_p = log_choose(n, a) + log_choose(m, np.minimum(r, m)) + total * np.log(a / n)
        excluded = log_p < thr  # decreasing in r: the first True is the first r excluded
        g = np.concatenate([[0], np.where(excluded.any(1), excluded.argmax(1), cap)])
        if i == 0:
            best = g
            continue
        mixed = np.zeros_like(best)
        for used in range(axons + 1):
            np.maximum(mixed[used:], best[: axons + 1 - used] + g[used], out=mixed[used:])
        best = mixed
    per_core = min(cap, int(best[axons]))
    return -(-sum(p.size for p in net.populations.values()) // per_core)


def run_quality(targets: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name, build in quality_suite().items():
        for tname in targets:
            target = big_system(tname)
            net = build(target)
            t0 = time.perf_counter()
            mapped = Map().run(net, PassContext(target=target))
            seconds = time.perf_counter() - t0
            bounds = cost.core_lower_bounds(net, target.limits)
            lb = max(bounds.values())
            used = cores_used(mapped)
            rows.append(
                {
                    "network": name,
                    "target": tname,
                    "neurons": sum(p.size for p in net.populations.values()),
                    "synapses": sum(p.fixed.codes.nnz for p in net.projections),
                    "cores": used,
                    "lower_bound": lb,
                    "binding": max(bounds, key=lambda k: bounds[k]),
                    "excess_pct": round(100.0 * (used - lb) / lb, 1),
                    "chips": chips_used(mapped),
                    "map_s": round(seconds, 3),
                }
            )
            if name in RANDOM_SOURCES:
                rows[-1]["random_fan_in_bound"] = random_fan_in_bound(net, target.limits)
    return rows


# --- scale --------------------------------------------------------------------------------


def _scale_case(kind: str, synapses: int, queue: Any) -> None:
    target = big_system("loihi2")
    t0 = time.perf_counter()
    if kind == "dense-mlp-nir":
        # input -> n -> n: synapses = 2 n^2
        n = max(2, round((synapses / 2) ** 0.5))
        graph = load_nir(nir_mlp([n, n, n]))
        t1 = time.perf_counter()
        net = quantize(lower(graph, dt=1e-3), target.numeric)
    else:
        # input -> n -> n -> n, k = 100 synapses per neuron in a window of 1000 sources
        k = 100 if synapses >= 10**5 else 10
        n = max(k, synapses // (3 * k))
        float_net = sparse_net([n] * 4, k, 10 * k)
        t1 = time.perf_counter()
        net = quantize(float_net, target.numeric)
        del float_net
    t2 = time.perf_counter()
    mapped = Map().run(net, PassContext(target=target))
    t3 = time.perf_counter()
    queue.put(
        {
            "kind": kind,
            "synapses": int(sum(p.fixed.codes.nnz for p in net.projections)),
            "neurons": int(sum(p.size for p in net.populations.values())),
            "build_s": round(t1 - t0, 2),
            "lower_quantize_s": round(t2 - t1, 2),
            "map_s": round(t3 - t2, 2),
            "compile_s": round(t3 - t1, 2),
            "cores": cores_used(mapped),
            "lower_bound": max(cost.core_lower_bounds(net, target.limits).values()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def run_scale(max_synapses: float) -> list[dict[str, Any]]:
    rows = []
    ctx = mp.get_context("fork")
    for kind, top in (("dense-mlp-nir", min(max_synapses, 1e7)), ("local-sparse", max_synapses)):
        s = 10**4
        while s <= top:
            queue = ctx.Queue()
            proc = ctx.Process(target=_scale_case, args=(kind, s, queue))
            proc.start()
            rows.append(queue.get())
            proc.join()
            print(_table([rows[-1]]), flush=True)
            s *= 10
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    widths = [max(len(str(k)), *(len(str(r[k])) for r in rows)) for k in keys]
    line = lambda vals: "  ".join(str(v).ljust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
    return "\n".join([line(keys), *(line([r[k] for k in keys]) for r in rows)])


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": mp.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": sp.__name__ and __import__("scipy").__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-synapses", type=float, default=1e8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(json.dumps(info))
    if not args.skip_quality:
        quality = run_quality(["loihi1", "loihi2"])
        print(_table(quality))
        (args.out / "mapping_quality.json").write_text(
            json.dumps({"machine": info, "rows": quality}, indent=2) + "\n"
        )
    if not args.skip_scale:
        scale = run_scale(args.max_synapses)
        print(_table(scale))
        (args.out / "mapping_scale.json").write_text(
            json.dumps({"machine": info, "rows": scale}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
