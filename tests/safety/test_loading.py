"""Hostile model, input and network files: refused with one ``error:`` line before any use.

Each case is a defect class of issue 17 (items 7 and 8): HDF5 links and storage outside the
file, NIR bytes parsed in-process inside a ``.pt``, unchecked ``network.npz`` arrays, and
declared sizes allocated before they were checked. Every hostile load runs the CLI in a forked
child whose address space may grow by at most ``HEADROOM``, so a load that allocates what the
file declares fails the test instead of taking the machine down, and a crash fails it too.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import resource
import zipfile
import zlib
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snn_deploy import api, limits
from snn_deploy.cli.main import cli
from tests.conftest import NIR_FIXTURES

HEADROOM = 768 << 20
SECRET = b"TOPSECRET-password-hunter2-0123" * 4  # 124 bytes + 4: the 4 x 4 float64 weights


def run_bounded(*args: object) -> tuple[int, str]:
    """``snn-deploy ARGS`` in a forked child limited to its size now plus ``HEADROOM``."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def child() -> None:
        size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) << 10
        resource.setrlimit(resource.RLIMIT_AS, (size + HEADROOM, size + HEADROOM))
        result = CliRunner().invoke(cli, [str(a) for a in args])
        send.send((result.exit_code, result.output))

    process = context.Process(target=child)
    process.start()
    send.close()
    try:
        code, text = receive.recv()
    except EOFError:
        process.join()
        pytest.fail(f"the CLI process died (exit code {process.exitcode}) on {args}")
    process.join()
    return code, text


def assert_refused(code: int, text: str, *words: str) -> None:
    assert code == 4, text
    text = "".join(ln for ln in text.splitlines(True) if not ln.startswith("warning: "))
    assert text.startswith("error: ") and text.count("\n") == 1, text
    assert all(w in text for w in words), text
    assert SECRET.decode() not in text


def tiny_nir(path: Path, size: int = 4) -> Path:
    """Input(size) -> Linear -> LIF -> Output, written by nir."""
    lif = {k: np.full(size, v) for k, v in dict(tau=1e-3, r=10.0, v_leak=0, v_reset=0).items()}
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([size])}),
            "w": nir.Linear(weight=np.eye(size) * 2),
            "lif": nir.LIF(**lif, v_threshold=np.ones(size)),
            "output": nir.Output(output_type={"output": np.array([size])}),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
    )
    nir.write(path, graph)
    return path


def with_weight(path: Path, make: Any) -> Path:
    """Replace the Linear's weight dataset by ``make(group, name)``."""
    with h5py.File(path, "a") as h5:
        group = h5["node/nodes/w"]
        del group["weight"]
        make(group, "weight")
    return path


def secret_hdf5(tmp_path: Path) -> Path:
    path = tmp_path / "secret.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.frombuffer(SECRET + b"\n\n\n\n", np.float64).reshape(4, 4)
    return path


def external_link(tmp_path: Path, model: Path) -> Path:
    target = secret_hdf5(tmp_path)
    return with_weight(model, lambda g, k: g.__setitem__(k, h5py.ExternalLink(str(target), "data")))


def external_storage(tmp_path: Path, model: Path) -> Path:
    target = tmp_path / "secret.txt"
    target.write_bytes(SECRET + b"\n\n\n\n")
    return with_weight(
        model,
        lambda g, k: g.create_dataset(k, (4, 4), "<f8", external=[(str(target), 0, 128)]),
    )


HOSTILE_HDF5 = {"external link": external_link, "external storage": external_storage}


@pytest.mark.parametrize("kind", HOSTILE_HDF5)
def test_an_hdf5_file_reaching_outside_itself_is_refused(kind: str, tmp_path: Path):
    model = HOSTILE_HDF5[kind](tmp_path, tiny_nir(tmp_path / "model.nir"))
    out = tmp_path / "out"
    assert_refused(*run_bounded("compile", model, "-o", out), "model.nir", "weight", "refused")
    assert not out.exists()


@pytest.mark.parametrize("kind", HOSTILE_HDF5)
def test_nir_bytes_in_a_checkpoint_reaching_outside_are_refused(kind: str, tmp_path: Path):
    nir_file = HOSTILE_HDF5[kind](tmp_path, tiny_nir(tmp_path / "inner.nir"))
    model = tmp_path / "model.pt"
    torch.save({"architecture": nir_file.read_bytes()}, model)
    out = tmp_path / "out"
    assert_refused(*run_bounded("compile", model, "-o", out), "model.pt", "weight", "refused")
    assert not out.exists()


def test_nir_bytes_in_a_checkpoint_that_crash_hdf5_are_read_in_a_child(tmp_path: Path):
    model = tmp_path / "model.pt"
    torch.save({"architecture": (NIR_FIXTURES / "hdf5_crash.bin").read_bytes()}, model)
    assert_refused(*run_bounded("inspect", model), "model.pt", "crashed (SIGSEGV)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compiled")
    api.compile(tiny_nir(folder / "model.nir"), "sim", out_dir=folder / "out")
    np.savez(folder / "x.npz", input=np.ones((1, 5, 4)))
    return folder


def tampered(compiled: Path, tmp_path: Path, key: str, change: Any) -> Path:
    with np.load(compiled / "out" / "network.npz") as z:
        arrays = {k: z[k].copy() for k in z.files}
    change(arrays[key])
    np.savez(tmp_path / "network.npz", **arrays)
    return tmp_path / "network.npz"


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("proj0.weight.indices", 1 << 20, ("proj0.weight.indices", "outside")),
        ("proj0.codes.indices", -7, ("proj0.codes.indices", "outside")),
        ("proj0.codes.data", 1 << 20, ("proj0.codes.data", "outside")),
        ("pop0.fixed.du", 1 << 40, ("pop0.fixed.du", "outside")),
        ("pop0.alpha", np.nan, ("pop0.alpha", "NaN")),
    ],
)
def test_a_tampered_network_is_refused(key, value, words, compiled: Path, tmp_path: Path):
    def change(arr: np.ndarray) -> None:
        arr[0] = value

    net = tampered(compiled, tmp_path, key, change)
    assert_refused(*run_bounded("simulate", net, "--inputs", compiled / "x.npz"), *words)


def test_a_nir_file_declaring_a_billion_neurons_is_refused(tmp_path: Path):
    model = tmp_path / "huge.nir"
    params = {k: np.ones(1) for k in ("tau", "r", "v_leak", "v_threshold", "v_reset")}
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([10**9])}),
            "lif": nir.LIF(**params),
            "output": nir.Output(output_type={"output": np.array([10**9])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
        type_check=False,
    )
    nir.write(model, graph)
    with h5py.File(model, "a") as h5:  # scalar parameters: broadcast to the declared input
        for name in params:
            del h5[f"node/nodes/lif/{name}"]
            h5[f"node/nodes/lif/{name}"] = 1.0
    assert model.stat().st_size < 40_000
    code, text = run_bounded("inspect", model, "--max-memory", "1G")
    assert_refused(code, text, "huge.nir", "'lif'", "[1000000000]", "bytes", "1.0 GiB")


def test_a_gzip_bomb_dataset_is_refused_before_it_is_inflated(tmp_path: Path):
    side, chunk = 16384, 1024  # 2 GiB of float64 in 256 gzip chunks of 8 MiB zeros
    model = tiny_nir(tmp_path / "bomb.nir")
    block = zlib.compress(bytes(chunk * chunk * 8))

    def bomb(group: h5py.Group, name: str) -> None:
        ds = group.create_dataset(name, (side, side), "<f8", chunks=(chunk, chunk), compression=4)
        for i in range(0, side, chunk):
            for j in range(0, side, chunk):
                ds.id.write_direct_chunk((i, j), block)

    with_weight(model, bomb)
    assert model.stat().st_size < 3 << 20
    code, text = run_bounded("compile", model, "--max-memory", "1G", "-o", tmp_path / "out")
    assert_refused(code, text, "bomb.nir", "'node/nodes/w/weight'", "[16384, 16384]", "1.0 GiB")


def npz_bomb(path: Path, name: str, count: int) -> Path:
    """An .npz whose one member inflates to ``count`` float64 zeros (deflated: ~1000x smaller)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (count,)}
    )
    zeros = bytes(8 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(f"{name}.npy", "w", force_zip64=True) as f,
    ):
        f.write(header.getvalue())
        block = zlib.compressobj(9, zlib.DEFLATED, -15)
        deflated = block.compress(zeros) + block.flush(zlib.Z_FULL_FLUSH)
        f._compressor = _Repeat(deflated, f._compressor)  # same input, same output: reuse it
        for _ in range(count * 8 // len(zeros)):
            f.write(zeros)
    return path


class _Repeat:
    """A deflate compressor for a stream of identical zero blocks: each one deflates to the same
    bytes after a full flush, so it is compressed once (1 GiB in milliseconds, not seconds)."""

    def __init__(self, deflated: bytes, first: Any) -> None:
        self.deflated, self.first, self.header_done = deflated, first, False

    def compress(self, data: bytes) -> bytes:
        if not self.header_done:
            self.header_done = True
            return self.first.compress(data) + self.first.flush(zlib.Z_FULL_FLUSH)
        return self.deflated

    def flush(self) -> bytes:
        return zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def test_a_compressed_npz_bomb_of_inputs_is_refused(tmp_path: Path):
    inputs = npz_bomb(tmp_path / "x.npz", "input", 1 << 27)  # 1 GiB inflated
    assert inputs.stat().st_size < 2 << 20
    model = tiny_nir(tmp_path / "model.nir")
    code, text = run_bounded("simulate", model, "--inputs", inputs, "--max-memory", "512M")
    assert_refused(code, text, "x.npz", "'input'", "[134217728]", "512.0 MiB")


def test_a_compressed_npz_bomb_as_network_is_refused(tmp_path: Path):
    net = npz_bomb(tmp_path / "network.npz", "header", 1 << 27)
    code, text = run_bounded("simulate", net, "--inputs", net, "--max-memory", "512M")
    assert_refused(code, text, "network.npz", "'header'", "[134217728]")


def test_a_checkpoint_declaring_a_huge_layer_is_refused_before_allocating(tmp_path: Path):
    model = tmp_path / "model.pt"
    architecture = [
        ["torch.nn.Linear", {"in_features": 30000, "out_features": 30000}],
        ["snn_deploy.nn.LIF", {"shape": [30000], "beta": 0.9}],
    ]
    torch.save({"architecture": architecture, "state_dict": {}}, model)
    assert model.stat().st_size < 2000
    code, text = run_bounded("inspect", model, "--max-memory", "2G")
    assert_refused(code, text, "model.pt", "architecture[0] torch.nn.Linear", "[30000, 30000]")


def test_a_compile_whose_network_exceeds_the_limit_is_refused(tmp_path: Path):
    model = tiny_nir(tmp_path / "model.nir", size=300)  # loads in 1.4 MB, compiles in ~5 MB
    code, text = run_bounded("compile", model, "--max-memory", "3M", "-o", tmp_path / "out")
    assert_refused(code, text, "compile", "300 neurons", "90000 synapses", "3.0 MiB")
    assert not (tmp_path / "out").exists()


def test_a_simulation_whose_recordings_exceed_the_limit_is_refused(compiled: Path, tmp_path):
    np.savez(tmp_path / "x.npz", input=np.zeros((1000, 1000, 4), np.uint8))  # 4 MB stored
    code, text = run_bounded(
        "simulate", compiled / "out", "--inputs", tmp_path / "x.npz", "--max-memory", "60M"
    )
    assert_refused(code, text, "simulate", "recording", "1000000")


def test_the_default_limit_is_half_the_physical_memory():
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert limits.max_memory() == physical // 2
    with limits.memory_limit(123):
        assert limits.max_memory() == 123
    assert limits.max_memory() == physical // 2


def test_a_bad_max_memory_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "m.nir"), "--max-memory", "lots"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "'lots' is not a size" in result.output
