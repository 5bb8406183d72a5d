"""``snn-deploy evaluate`` at scale: throughput, peak memory, workers, Lava, Ray.

    .venv/bin/python bench/bench_evaluate.py [--samples 100000] [--repeat 3] [--skip lava,ray]

Data: the 96 held-out KWS clips of ``models/kws_test_inputs_t40.npz`` (T = 40, 64 inputs)
tiled to ``--samples`` samples, as a memory-mapped ``.npy`` folder; the network
``models/kws_rnn_t40.pt`` compiled for ``sim`` (and ``loihi-sim``). Every case runs the real
CLI in a child process; peak memory is the largest ``ru_maxrss`` of that process and its
workers. Writes ``bench/results/evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from snn_deploy.cli.main import cli; cli()"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
RAY = Path(sys.executable).with_name("ray")


def run(*args: object) -> float:
    """Wall seconds of one CLI run in a fresh child."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*CLI, *map(str, args)], env=_env(args), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    return wall


def _env(args: tuple[object, ...]) -> dict[str, str]:
    """The CLI's environment; a Ray driver keeps 127.0.0.1 (see ``ray_cluster``)."""
    return {**ENV, _CLUSTERS: "0"} if "--ray" in args else ENV


def peak_of(*args: object) -> int:
    """The peak RSS of one run, measured in a fresh interpreter (ru_maxrss is a maximum)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *CLI, *map(str, args)],
        env=_env(args),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip()) * 1024


def dataset(folder: Path, samples: int) -> Path:
    with np.load(REPO / "models" / "kws_test_inputs_t40.npz") as z:
        x, y = z["input"], z["labels"]
    idx = np.arange(samples) % len(x)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "input.npy", x[idx])
    np.save(folder / "labels.npy", y[idx])
    return folder


def timed(repeat: int, *args: object, results: Path) -> dict[str, float]:
    walls = []
    for _ in range(repeat):
        shutil.rmtree(results, ignore_errors=True)
        walls.append(run(*args, "-o", results))
    shutil.rmtree(results, ignore_errors=True)
    peak = peak_of(*args, "-o", results)
    shutil.rmtree(results, ignore_errors=True)
    return {"seconds": statistics.median(walls), "all_seconds": walls, "peak_bytes": peak}


_CLUSTERS = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_NODE = (
    "import sys; import ray._private.services as s; s.resolve_ip_for_localhost = lambda h: h; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)


def ray_cluster(nodes: int, temp: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A local cluster of ``nodes`` one-CPU nodes, every server on 127.0.0.1 (as in
    tests/cli/test_evaluate_ray.py, whose docstring says how)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in ENV.items() if not k.startswith("RAY_")}
    common = ["start", "--block", "--num-cpus=1", "--disable-usage-stats"]
    head = [
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
    ]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [str(RAY), *common, *head], env={**env, _CLUSTERS: "0"}, start_new_session=True, **quiet
        )
    ]
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        time.sleep(0.5)
    node = [*common, f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1"]
    for _ in range(nodes - 1):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _NODE, *node],
                env={**env, _CLUSTERS: "1"},
                start_new_session=True,
                **quiet,
            )
        )
    time.sleep(8)  # the second node joins
    return f"127.0.0.1:{port}", procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(5)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lava-samples", type=int, default=64)
    ap.add_argument("--ray-samples", type=int, default=65536)
    ap.add_argument("--skip", default="", help="comma-separated: sim, lava, ray")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-evaluate."))
    out: dict[str, object] = {"load_average_start": os.getloadavg()}
    try:
        model = REPO / "models" / "kws_rnn_t40.pt"
        sim = work / "sim"
        run("compile", model, "-o", sim)
        big = dataset(work / "big", args.samples)
        small = dataset(work / "small", args.samples // 10)
        res = work / "r"
        rows = {}
        cases = (
            ()
            if "sim" in skip
            else (
                (f"sim, {args.samples // 10} samples, 1 process", small, []),
                (f"sim, {args.samples} samples, 1 process", big, []),
                (f"sim, {args.samples} samples, 2 workers", big, ["--workers", "2"]),
                (f"sim, {args.samples} samples, shards of 256", big, ["--shard-size", "256"]),
            )
        )
        for name, data, extra in cases:
            samples = args.samples // 10 if data == small else args.samples
            r = timed(args.repeat, "evaluate", sim, "--inputs", data, "--labels", "labels",
                      *extra, results=res)  # fmt: skip
            r["samples_per_s"] = samples / r["seconds"]
            rows[name] = r
            print(name, json.dumps(r), flush=True)
        if rows:
            out["sim"] = rows
        if "lava" not in skip:  # Lava's runtime forks a process per Lava process
            lava = work / "lava"
            run("compile", model, "-t", "loihi-sim", "-o", lava)
            n = args.lava_samples
            clips = dataset(work / "clips", n)
            rows = {}
            for workers in (1, 2):
                r = timed(args.repeat, "evaluate", lava, "--inputs", clips, "--verify",
                          "--shard-size", "2", "--workers", workers, results=res)  # fmt: skip
                r["samples_per_s"] = n / r["seconds"]
                rows[f"loihi-sim --verify, {n} samples, {workers} worker(s)"] = r
                print(workers, json.dumps(r), flush=True)
            out["lava"] = rows
        if "ray" not in skip:
            n = args.ray_samples
            data = dataset(work / "ray", n)
            rows = {}
            for nodes in (1, 2):
                temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short socket paths
                address, procs = ray_cluster(nodes, temp)
                try:
                    for shard in (1024, 128):
                        r = timed(args.repeat, "evaluate", sim, "--inputs", data, "--ray",
                                  address, "--shard-size", shard, results=res)  # fmt: skip
                        r["samples_per_s"] = n / r["seconds"]
                        rows[f"ray, {nodes} node(s) of 1 CPU, {n} samples, shards of {shard}"] = r
                        print(nodes, shard, json.dumps(r), flush=True)
                finally:
                    stop(procs)
                    shutil.rmtree(temp, ignore_errors=True)
            for workers in (1, 2):
                for shard in (1024, 128):
                    extra = ["--workers", workers]
                    r = timed(args.repeat, "evaluate", sim, "--inputs", data, *extra,
                              "--shard-size", shard, results=res)  # fmt: skip
                    r["samples_per_s"] = n / r["seconds"]
                    rows[f"local, {workers} worker(s), {n} samples, shards of {shard}"] = r
                    print(workers, shard, json.dumps(r), flush=True)
            out["ray"] = rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["load_average_end"] = os.getloadavg()
    path = REPO / "bench" / "results" / "evaluate.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **out}, indent=1) + "\n")  # --skip keeps the rest
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
