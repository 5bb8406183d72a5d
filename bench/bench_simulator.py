"""Simulator speed: compiled and NumPy kernels vs Lava, Norse and snnTorch, with the floors.

    .venv/bin/python bench/bench_simulator.py [--quick] [--only RUNNER,...]

Networks (CUBA LIF, T = 100, Poisson inputs at 5 % per step, weights seeded; issue 20):
  rnn-700-256-20     700 -> 256 (recurrent) -> 20
  ff-640-512-512-12  640 -> 512 -> 512 -> 12
  rnn-8x             700 -> 2048 (recurrent) -> 20
and the trained speech models of models/ (kws_rnn_t100, kws_rnn_ml3_t100 with 3 spike
levels, the speech transformers kws_spikescr_t100 and kws_iml_t100) on their held-out clips
(models/kws_test_inputs.npz).

Every figure is µs per sample-step, the median of ``REPEATS`` runs interleaved across the
runners (so load drifts hit all alike): our simulator's compiled kernel (numba) on the 32
samples one at a time (a call per sample, as a data set is run sample by sample) and as a
batch of 32, on one and two threads; its NumPy reference kernel the same two ways; Lava 0.10.0
fixed_pt on one sample over a few steps (its whole run of 10 steps, and its marginal step
from runs of 10 and 50 steps, ``LAVA_STEPS``; spikes checked equal); snnTorch (Synaptic/RSynaptic)
and Norse (LIFCell/LIFRecurrentCell) float32 on batch 32 (one and two threads) and one
sample at a time, torch CPU, no_grad: their dynamics are theirs, so only the time is comparable. Our
torch kernel (``kernel="torch"``, batch 32, on the CPU here) is
timed like our other kernels, its spikes checked equal to the compiled kernel's.

Floors: the synaptic events per sample-step (each non-zero source output times its fan-out),
divided by the measured rate of the event kernel's inner loop (int16 weight rows added into
int32 accumulators, rows in L1, one thread), is the event floor; the weight bytes those
events read, divided by the measured single-thread memory read bandwidth, the memory floor;
the float32 GEMM peak (one thread) is recorded for the dense alternative.
Writes bench/results/simulator.json; with ``--only`` (a re-run of some runners, no Lava),
bench/results/simulator_only.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import nir
import numba
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from snn_deploy import api
from snn_deploy.backends import lava
from snn_deploy.backends.sim.run import simulate
from snn_deploy.frontends.nir import load
from snn_deploy.ir.net import Net

T, RATE, SEED, BATCH, LAVA_STEPS = 100, 0.05, 0, 32, (10, 50)
MODELS = Path(__file__).parents[1] / "models"
OUT = Path(__file__).parent / "results" / "simulator.json"
OUT_ONLY = Path(__file__).parent / "results" / "simulator_only.json"


def cuba(n: int) -> nir.CubaLIF:
    f = lambda v: np.full(n, v)  # noqa: E731
    return nir.CubaLIF(
        tau_syn=f(5e-4),
        tau_mem=f(1e-3),
        r=f(10.0),
        w_in=f(5.0),
        v_leak=f(0.0),
        v_threshold=f(1.0),
        v_reset=f(0.0),
    )


def network(sizes: list[int], recurrent: bool) -> nir.NIRGraph:
    rng = np.random.default_rng(SEED)
    nodes = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "input"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        nodes[f"fc{i}"] = nir.Linear(weight=rng.normal(0, 1.5 / np.sqrt(a * RATE * 10), (b, a)))
        nodes[f"lif{i}"] = cuba(b)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        if recurrent and i == 0:
            nodes["rec"] = nir.Linear(weight=rng.normal(0, 0.5 / np.sqrt(b), (b, b)))
            edges += [(f"lif{i}", "rec"), ("rec", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


NETWORKS = {
    "rnn-700-256-20": ([700, 256, 20], True),
    "ff-640-512-512-12": ([640, 512, 512, 12], False),
    "rnn-8x": ([700, 2048, 20], True),
}
KWS = ("kws_rnn_t100", "kws_rnn_ml3_t100", "kws_spikescr_t100", "kws_iml_t100")


def peer(framework: str, sizes: list[int], recurrent: bool, x: np.ndarray) -> Callable[[], None]:
    """One float run of the same layer sizes in snnTorch or Norse, as a function."""
    torch.manual_seed(SEED)
    fcs = [torch.nn.Linear(a, b, bias=False) for a, b in itertools.pairwise(sizes)]
    if framework == "snntorch":
        import snntorch

        cells = [
            snntorch.RSynaptic(alpha=0.5, beta=0.9, linear_features=b)
            if recurrent and i == 0
            else snntorch.Synaptic(alpha=0.5, beta=0.9)
            for i, b in enumerate(sizes[1:])
        ]
    else:
        import norse.torch as norse

        cells = [
            norse.LIFRecurrentCell(a, b) if recurrent and i == 0 else norse.LIFCell()
            for i, (a, b) in enumerate(itertools.pairwise(sizes))
        ]
    data = torch.as_tensor(x, dtype=torch.float32)

    def run() -> None:
        states: list[object] = [None] * len(cells)
        with torch.no_grad():
            for t in range(data.shape[1]):
                h = data[:, t]
                for i, cell in enumerate(cells):
                    if framework == "norse" and recurrent and i == 0:
                        h, states[i] = cell(h, states[i])
                        continue
                    h = fcs[i](h)
                    if framework == "snntorch":
                        if states[i] is None:
                            states[i] = (
                                cell.init_rsynaptic()
                                if recurrent and i == 0
                                else cell.init_synaptic()
                            )
                        h, *rest = cell(h, *states[i])
                        states[i] = tuple(rest)
                    else:
                        h, states[i] = cell(h, states[i])

    return run


def threads(n: int, fn: Callable[[], object]) -> tuple[Callable[[], None], Callable[[], object]]:
    """``fn`` on ``n`` threads (numba's, BLAS's and torch's): a setup, untimed (threadpoolctl
    scans the loaded libraries, ~ms), and ``fn``."""

    def setup() -> None:
        numba.set_num_threads(n)
        torch.set_num_threads(n)
        threadpool_limits(n)

    return setup, fn


def in_turn(runs: list[Callable[[], object]]) -> Callable[[], None]:
    """The runs one after the other, as one run: a data set simulated one sample at a time
    (each call one sample, the net's setup cached after the first)."""

    def run() -> None:
        for one in runs:
            one()

    return run


Runner = tuple[tuple[Callable[[], None], Callable[[], object]], int]
"""((setup, run), samples per run)."""


def medians(runners: dict[str, Runner], repeats: int) -> dict[str, float]:
    """µs per sample-step of each runner: median of ``repeats`` interleaved runs."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for (setup, fn), _ in runners.values():
        setup()
        fn()  # warm-up: compile, caches
    for _ in range(repeats):
        for key, ((setup, fn), _) in runners.items():
            setup()
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: 1e6 * statistics.median(v) / (runners[k][1] * T) for k, v in times.items()}


def events_per_step(net: Net, data: dict[str, np.ndarray]) -> tuple[float, float]:
    """Synaptic events per sample-step (non-zero source outputs times their fan-out), and the
    weight bytes they read (whole int16 dense rows, or int16 weights plus int32 rows)."""
    trace = simulate(net, data)
    outputs = {**data, **trace.populations, **trace.products}
    events = weight_bytes = 0.0
    for p in net.projections:
        codes = p.fixed.codes
        active = np.count_nonzero(outputs[p.src], axis=(0, 1)).ravel()  # per source
        synapses = int(active @ np.diff(codes.tocsc().indptr))
        events += synapses
        dense = codes.nnz > codes.shape[0] * codes.shape[1] / 8  # compiled.DENSE_ABOVE
        weight_bytes += active.sum() * 2 * codes.shape[0] if dense else synapses * 6
    samples_steps = next(iter(data.values())).shape[0] * T
    return events / samples_steps, weight_bytes / samples_steps


@numba.njit(cache=True)
def _add_rows(rows: np.ndarray, acc: np.ndarray, repeats: int) -> None:
    for _ in range(repeats):
        for j in range(rows.shape[0]):
            for i in range(rows.shape[1]):
                acc[i] += rows[j, i]


@numba.njit(cache=True)
def _read(x: np.ndarray) -> int:
    total = 0
    for v in x:
        total += v
    return total


def machine_peaks() -> dict[str, float]:
    """Single-thread rates: event adds (int16 rows into int32, in L1), memory read bandwidth,
    float32 GEMM."""
    numba.set_num_threads(1)
    rows = np.ones((16, 256), np.int16)
    acc = np.zeros(256, np.int32)
    _add_rows(rows, acc, 1)
    start = time.perf_counter()
    _add_rows(rows, acc, 20000)
    adds = 20000 * rows.size / (time.perf_counter() - start)
    big = np.ones(2**28 // 8, np.int64)  # 256 MB: far beyond any cache
    _read(big[:1000])
    start = time.perf_counter()
    _read(big)
    bandwidth = big.nbytes / (time.perf_counter() - start)
    a = np.ones((1024, 1024), np.float32)
    with threadpool_limits(1):
        a @ a
        start = time.perf_counter()
        for _ in range(5):
            a @ a
        gemm = 5 * 2 * 1024**3 / (time.perf_counter() - start)
    return {
        "event_adds_per_ns": adds / 1e9,
        "read_gb_per_s": bandwidth / 1e9,
        "gemm_gflops": gemm / 1e9,
    }


def bench_net(
    name: str,
    net: Net,
    x: np.ndarray,
    peer_layers: tuple | None,
    repeats: int,
    only: set[str] | None,
) -> dict:
    (inp,) = net.inputs
    x = x.reshape(*x.shape[:2], *net.inputs[inp])
    many = {inp: x[:BATCH]}
    batch = many[inp].shape[0]
    ones = [{inp: x[i : i + 1]} for i in range(batch)]  # a data set run one sample at a time
    runners: dict[str, Runner] = {
        "sim_single_1t": (threads(1, in_turn([partial(simulate, net, o) for o in ones])), batch),
        "sim_batch_1t": (threads(1, lambda: simulate(net, many)), batch),
        "sim_batch_2t": (threads(2, lambda: simulate(net, many)), batch),
        "numpy_single_1t": (
            threads(1, in_turn([partial(simulate, net, o, kernel="numpy") for o in ones])),
            batch,
        ),
        "numpy_batch_1t": (threads(1, lambda: simulate(net, many, kernel="numpy")), batch),
    }
    if peer_layers is not None:
        for fw in ("norse", "snntorch"):
            singles = [peer(fw, *peer_layers, x[i : i + 1]) for i in range(batch)]
            runners[f"{fw}_single_1t"] = (threads(1, in_turn(singles)), batch)
            for n in (1, 2):
                runners[f"{fw}_batch_{n}t"] = (threads(n, peer(fw, *peer_layers, x[:BATCH])), batch)
    got, want = simulate(net, many, kernel="torch"), simulate(net, many)
    assert all(np.array_equal(got.populations[k], want.populations[k]) for k in net.populations)
    for n in (1, 2):
        runners[f"torch_kernel_batch_{n}t"] = (
            threads(n, lambda: simulate(net, many, kernel="torch")),
            batch,
        )
    if only is not None:
        runners = {k: r for k, r in runners.items() if k in only}
    row: dict[str, object] = {
        "network": name,
        "synapses": int(sum(p.fixed.codes.nnz for p in net.projections)),
        "batch": batch,
        **medians(runners, repeats),
    }
    row["events_per_sample_step"], row["weight_bytes_per_sample_step"] = events_per_step(net, many)
    return row


def bench_lava(net: Net, x: np.ndarray) -> dict[str, object]:
    """Lava on one sample, runs of ``LAVA_STEPS`` steps (it is slow)."""
    program = lava.lower(net, api.load_target("loihi-sim"))
    short, long = LAVA_STEPS
    runs = {}
    for steps in LAVA_STEPS:
        start = time.perf_counter()
        got = lava.run(program, {"input": x[:1, :steps]})
        runs[steps] = time.perf_counter() - start
    want = simulate(net, {"input": x[:1, :long]})
    same = all(np.array_equal(got.populations[k], want.populations[k]) for k in net.populations)
    return {
        "lava_whole_us_per_step": 1e6 * runs[short] / short,
        "lava_marginal_us_per_step": 1e6 * (runs[long] - runs[short]) / (long - short),
        "lava_spikes_identical": bool(same),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no Lava")
    parser.add_argument(
        "--only", help="comma-separated runners to time (e.g. sim_single_1t); no Lava"
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    only = None if args.only is None else set(args.only.split(","))
    load_before = os.getloadavg()
    rows = []
    for name, (sizes, recurrent) in NETWORKS.items():
        graph = load(network(sizes, recurrent))
        _, net = api.lower_and_quantize(graph, api.load_target("loihi-sim"))
        rng = np.random.default_rng(SEED + 1)
        x = (rng.random((BATCH, T, sizes[0])) < RATE).astype(np.int64)
        # Lava first: it sets multiprocessing's start method, which the peers' imports fix
        lava_row = {} if args.quick or only else bench_lava(net, x)
        rows.append({**bench_net(name, net, x, (sizes, recurrent), repeats, only), **lava_row})
        row = rows[-1]
        print(json.dumps(row), flush=True)
    test = np.load(MODELS / "kws_test_inputs.npz")["input"][:BATCH].astype(np.int64)
    for model in KWS:
        _, net = api.lower_and_quantize(api.load(MODELS / f"{model}.pt"), api.load_target("sim"))
        rows.append(bench_net(model, net, test, None, repeats, only))
        print(json.dumps(rows[-1]), flush=True)
    machine = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        ),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "numba_cpu_features": os.environ.get("NUMBA_CPU_FEATURES", "host"),
        **machine_peaks(),
    }
    out = OUT if only is None else OUT_ONLY
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"machine": machine, "T": T, "rate": RATE, "results": rows}, indent=2) + "\n"
    )
    print(json.dumps(machine, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
