"""Simulator vs Lava fixed_pt: time per sample-timestep on the same networks, identical spikes.

    .venv/bin/python bench/bench_simulator.py [--quick]

Networks (CUBA LIF, T = 100, Poisson inputs at 5 % per step, weights seeded):
  rnn-700-256-20   700 -> 256 (recurrent) -> 20      (issue 3's reference network)
  ff-640-512-512-12 640 -> 512 -> 512 -> 12
  rnn-8x           700 -> 2048 (recurrent) -> 20      (8x wider recurrent layer)
For each: our integer simulator single-sample and batch 32, Lava 0.10.0 fixed_pt single
sample (Lava runs one sample per run, so its batched time per sample equals its single time;
reported both as the whole run including Lava's compile, and as the marginal cost of a step,
from runs of T and 2T steps),
synaptic events per second, peak memory of the simulator run (tracemalloc), and a check that
Lava's spikes equal the simulator's. As context, float inference of the same layer sizes in
snnTorch (Synaptic/RSynaptic) and Norse (LIFCell/LIFRecurrentCell), torch 2.13 CPU, no_grad,
float32: their dynamics are theirs, so only the time is comparable, not the spikes.
Writes bench/results/simulator.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
import tracemalloc
from pathlib import Path

import nir
import numpy as np

from snn_deploy import api
from snn_deploy.backends import lava
from snn_deploy.backends.sim.run import simulate
from snn_deploy.frontends.nir import load
from snn_deploy.reports.energy import activity

T, RATE, SEED = 100, 0.05, 0
OUT = Path(__file__).parent / "results" / "simulator.json"


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


def peer(framework: str, sizes: list[int], recurrent: bool, x: np.ndarray) -> float:
    """Seconds for one float run of the same layer sizes in snnTorch or Norse."""
    import torch

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

    return timed(run, 2)


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench(name: str, quick: bool) -> dict[str, object]:
    sizes, recurrent = NETWORKS[name]
    _, net = api.lower_and_quantize(load(network(sizes, recurrent)), api.load_target("loihi-sim"))
    rng = np.random.default_rng(SEED + 1)
    x = (rng.random((32, T, sizes[0])) < RATE).astype(np.int64)
    single = timed(lambda: simulate(net, {"input": x[:1]}), 3 if quick else 10)
    batched = timed(lambda: simulate(net, {"input": x}), 2 if quick else 5)
    tracemalloc.start()
    trace = simulate(net, {"input": x})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    events = activity(net, trace, {"input": x})["synops"] / 32
    program = lava.lower(net, api.load_target("loihi-sim"))
    start = time.perf_counter()
    got = lava.run(program, {"input": x[:1]})
    lava_time = time.perf_counter() - start
    start = time.perf_counter()
    lava.run(program, {"input": np.concatenate([x[:1], x[1:2]], axis=1)})
    lava_step = (time.perf_counter() - start - lava_time) / T
    same = all(
        np.array_equal(got.populations[k][0], trace.populations[k][0]) for k in net.populations
    )
    spikes = {k: int(trace.populations[k][0].sum()) for k in net.populations}
    peers = {
        f"{fw}_{b}_us_per_sample_step": 1e6 * peer(fw, sizes, recurrent, x[:b]) / (b * T)
        for fw in ("snntorch", "norse")
        for b in (1, 32)
    }
    return {
        "network": name,
        "synapses": int(sum(p.fixed.codes.nnz for p in net.projections)),
        "spikes_sample0": spikes,
        "sim_single_us_per_sample_step": 1e6 * single / T,
        "sim_batch32_us_per_sample_step": 1e6 * batched / (32 * T),
        "lava_us_per_sample_step": 1e6 * lava_time / T,
        "lava_marginal_us_per_step": 1e6 * lava_step,
        "speedup_single": lava_time / single,
        "speedup_batch32": lava_time / (batched / 32),
        "speedup_single_marginal": lava_step * T / single,
        "speedup_batch32_marginal": lava_step * T / (batched / 32),
        "sim_synaptic_events_per_s_batch32": events * 32 / batched,
        "sim_peak_memory_mb_batch32": peak / 2**20,
        "lava_spikes_identical": bool(same),
        **peers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    rows = [bench(name, args.quick) for name in NETWORKS]
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        ),
        "cores": len(
            [
                line
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("processor")
            ]
        ),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps({"machine": machine, "T": T, "rate": RATE, "results": rows}, indent=2) + "\n"
    )
    keys = [
        "network",
        "synapses",
        "sim_single_us_per_sample_step",
        "sim_batch32_us_per_sample_step",
        "lava_us_per_sample_step",
        "lava_marginal_us_per_step",
        "speedup_single",
        "speedup_batch32",
        "speedup_single_marginal",
        "speedup_batch32_marginal",
        "lava_spikes_identical",
        "spikes_sample0",
    ]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in keys))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
