"""Compile time and peak memory vs network size, per built-in target (issue 9, item 2).

Run: ``.venv/bin/python bench/bench_compile.py [--max-synapses 1e8] [--targets a,b]``.
Writes ``bench/results/compile.json`` and prints a table (docs/PERFORMANCE.md).

Each case is the public ``snn_deploy.api.compile`` of a ``.nir`` file into an output folder
(every pass, the design rules, the backend's lowering and files, the reports), in a fresh
forked child so ``ru_maxrss`` is that case's peak memory. Per-pass times come from the
``dump_after`` hook (called after each pass); ``backend+reports`` is the rest of the compile.
Targets are used as shipped: a net beyond a target's limits ends in its ``DesignRuleError``,
whose time is recorded too (how long a user waits to be told).

Networks (NIR files, so the frontend and ``lower`` are part of the cost):
  dense   input n -> LIF n -> LIF n, two dense ``Linear`` (2 n^2 synapses), 1e4..1e7
  conv    input [C, 64, 64] -> Conv 3x3 -> IF -> Conv 3x3 -> IF (C = C, pad 1):
          2 * 9 * C^2 * 4096 synapses (fewer at the border) from a few-kB file, 1e6..1e8
(both built by ``bench_mapping``'s ``nir_mlp`` and ``nir_convnet``)
(a 1e8-synapse dense ``Linear`` would be a 0.8 GB file: the conv family reaches 1e8.)
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nir
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_mapping import nir_convnet, nir_mlp  # noqa: E402

from snn_deploy import api  # noqa: E402
from snn_deploy.errors import SnnDeployError  # noqa: E402
from snn_deploy.target.load import available  # noqa: E402

OUT = ROOT / "bench" / "results" / "compile.json"
HW = 64  # conv image side


def dense(synapses: float) -> tuple[nir.NIRGraph, int]:
    n = max(2, round(math.sqrt(synapses / 2)))
    return nir_mlp([n, n, n]), 2 * n * n


def conv(synapses: float) -> tuple[nir.NIRGraph, int]:
    c = max(1, round(math.sqrt(synapses / (2 * 9 * HW * HW))))
    # the border rows of a padded 3x3 conv have fewer synapses: count them
    per_channel_pair = (3 * HW - 2) ** 2
    return nir_convnet([c, c, c], HW, classes=None, pool=False), 2 * c * c * per_channel_pair


FAMILIES = {"dense": (dense, (1e4, 1e7)), "conv": (conv, (1e6, 1e8))}


def _case(family: str, synapses: float, target: str, queue: Any) -> None:
    graph, count = FAMILIES[family][0](synapses)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.nir"
        nir.write(model, graph)
        del graph
        stamps: dict[str, float] = {}
        start = time.perf_counter()
        status = "ok"
        try:
            res = api.compile(
                model,
                target,
                out_dir=Path(tmp) / "out",
                dump_after=lambda name, _: stamps.setdefault(name, time.perf_counter()),
            )
            cores = res.report["placement"]["cores_used"] if res.report["placement"] else None
        except SnnDeployError as exc:
            status = f"rejected: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
            cores = None
        total = time.perf_counter() - start
    times, prev = {}, start
    for name, t in stamps.items():
        times[f"{name}_s"] = round(t - prev, 3)
        prev = t
    queue.put(
        {
            "family": family,
            "target": target,
            "synapses": count,
            "status": status,
            "total_s": round(total, 3),
            **times,
            "backend_reports_s": round(start + total - prev, 3) if status == "ok" else None,
            "cores": cores,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def run(families: list[str], targets: list[str], max_synapses: float) -> list[dict[str, Any]]:
    rows = []
    ctx = mp.get_context("fork")
    for family in families:
        low, high = FAMILIES[family][1]
        for target in targets:
            s = low
            while s <= min(high, max_synapses):
                queue = ctx.Queue()
                proc = ctx.Process(target=_case, args=(family, s, target, queue))
                proc.start()
                rows.append(queue.get())
                proc.join()
                print(json.dumps(rows[-1]), flush=True)
                s *= 10
    return rows


def slopes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Log-log slope of compile time vs synapses per (family, target), over accepted cases with
    more than 1e5 synapses (below that fixed costs dominate)."""
    out = {}
    for family in FAMILIES:
        for target in sorted({r["target"] for r in rows}):
            pts = [
                (r["synapses"], r["total_s"])
                for r in rows
                if r["family"] == family and r["target"] == target and r["status"] == "ok"
                if r["synapses"] > 1e5
            ]
            if len(pts) >= 2:
                x, y = np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts])
                out[f"{family}/{target}"] = round(float(np.polyfit(x, y, 1)[0]), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-synapses", type=float, default=1e8)
    parser.add_argument("--targets", default=",".join(available()))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = run(args.families.split(","), args.targets.split(","), args.max_synapses)
    machine = {
        "nproc": mp.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }
    result = {"machine": machine, "rows": rows, "loglog_slopes": slopes(rows)}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["loglog_slopes"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
