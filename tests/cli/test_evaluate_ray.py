"""``snn-deploy evaluate --ray``: a real two-node Ray cluster on the loopback interface.

A head and a second node are started with ``ray start --block`` as separate processes (one
CPU each, a private temporary folder) and stopped by process group in the finalizer. The
cluster's evaluation must equal the single-process one byte for byte.

**Loopback only.** Ray 2.60 replaces 127.0.0.1 by the host's address when multi-node
clusters are enabled (``services.resolve_ip_for_localhost``), and its servers then listen on
every interface. With ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` the head keeps 127.0.0.1 and
binds every server to it, but ``ray start --address`` then refuses to add a node; so the
second node runs ``ray start`` with clusters enabled and that one function left as the
identity (``_NODE``), and the driver (this process) sees clusters disabled. Every server of
both nodes listens on 127.0.0.1.
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
_CLUSTERS = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_NODE = (
    "import sys; import ray._private.services as s; s.resolve_ip_for_localhost = lambda h: h; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)
"""``ray`` with 127.0.0.1 kept as it is (see the module docstring)."""


def _start(command: list[str], args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*command, "start", "--block", "--num-cpus=1", "--disable-usage-stats", *args],
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


def _listening(port: int) -> set[str]:
    """The local addresses (as /proc/net writes them) with a listening TCP socket on ``port``."""
    hosts = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            host, at = local.rsplit(":", 1)
            if state == "0A" and int(at, 16) == port:  # 0A: LISTEN
                hosts.add(host)
    return hosts


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
    from ray._private import ray_constants

    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = str(REPO)  # the nodes' workers import this checkout
    head = [
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
    ]
    nodes = [_start([str(RAY)], head, {**env, _CLUSTERS: "0"})]
    patch = pytest.MonkeyPatch()
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # the driver keeps 127.0.0.1
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "the Ray head did not start in 60 s"
            time.sleep(0.5)
        node = [f"--address={address}", "--node-ip-address=127.0.0.1"]
        nodes.append(_start([sys.executable, "-c", _NODE], node, {**env, _CLUSTERS: "1"}))
        while _cpus(address) < 2:
            assert time.monotonic() < deadline, "the second Ray node did not join in 60 s"
            time.sleep(1)
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        patch.undo()
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
    gcs = _listening(int(cluster.rsplit(":", 1)[1]))
    assert gcs == {"0000000000000000FFFF00000100007F"}  # ::ffff:127.0.0.1 only, not :: or *
    one, ray = (tmp_path / d / "evaluation.json" for d in ("one", "ray"))
    assert one.read_bytes() == ray.read_bytes()
    assert json.loads(ray.read_text())["shards"] == 5
