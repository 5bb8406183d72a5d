"""``snn-deploy evaluate --ray``: a real two-node Ray cluster on the loopback interface.

A head and a second node are started with ``ray start --block`` as separate processes (one
CPU each, a private temporary folder, 127.0.0.1 only) and stopped by process group in the
finalizer. The cluster's evaluation must equal the single-process one byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import invoke
from tests.cli.test_evaluate import data, sim_out  # noqa: F401 (fixtures)
from tests.conftest import REPO

RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(RAY), "start", "--block", "--num-cpus=1", "--disable-usage-stats", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the finalizer stops all of it
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _cpus(address: str) -> float:
    import ray

    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        return float(ray.cluster_resources().get("CPU", 0))
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a running two-node Ray cluster (head + one node, one CPU each)."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(REPO)  # the nodes' workers import this checkout
    nodes = [
        _start(
            [
                "--head",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                f"--temp-dir={temp}",
            ],
            env,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "the Ray head did not start in 60 s"
            time.sleep(0.5)
        nodes.append(_start([f"--address={address}", "--node-ip-address=127.0.0.1"], env))
        while _cpus(address) < 2:
            assert time.monotonic() < deadline, "the second Ray node did not join in 60 s"
            time.sleep(1)
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.toolchain("ray")
@pytest.mark.timeout(120)
def test_a_two_node_cluster_gives_the_single_process_result(
    cluster: str,
    sim_out: Path,  # noqa: F811
    data: Path,  # noqa: F811
    tmp_path: Path,
):
    args = ("--inputs", data, "--labels", "labels", "--shard-size", "2", "--json")
    code, text = invoke("evaluate", sim_out, *args, "-o", tmp_path / "one")
    assert code == 0, text
    code, text = invoke("evaluate", sim_out, *args, "-o", tmp_path / "ray", "--ray", cluster)
    assert code == 0, text
    one, ray = (tmp_path / d / "evaluation.json" for d in ("one", "ray"))
    assert one.read_bytes() == ray.read_bytes()
    assert json.loads(ray.read_text())["shards"] == 5
