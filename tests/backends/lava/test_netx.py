"""netx HDF5 out and in: files lava-dl's own ``netx.hdf5.Network`` loads and runs in Lava with
the simulator's spikes, and netx files compiled by our frontend with their integers intact."""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from snn_deploy import api
from snn_deploy.backends.lava import netx
from snn_deploy.backends.lava.compat import import_netx
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import UnsupportedOpError
from tests.conftest import REPO

pytestmark = pytest.mark.toolchain("lava")
BRAILLE = REPO / "models" / "braille_noDelay_bias_zero.nir"


def run_netx(path: Path, x: np.ndarray) -> list[np.ndarray]:
    """Run a netx file with lava-dl's loader in Lava; spikes of every layer, ``[time, n]``."""
    import_netx()
    from lava.lib.dl import netx as lava_netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    net = lava_netx.hdf5.Network(net_config=str(path))
    source = RingBuffer(data=x.T.astype(np.int64))
    source.s_out.connect(net.inp)
    monitors = []
    for layer in net.layers:
        monitor = Monitor()
        monitor.probe(layer.neuron.s_out, x.shape[0])
        monitors.append((layer.neuron.name, monitor))
    net.run(condition=RunSteps(num_steps=x.shape[0]), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        return [np.asarray(m.get_data()[name]["s_out"]).astype(np.int64) for name, m in monitors]
    finally:
        net.stop()


def test_compile_writes_a_netx_file_that_lava_dl_runs_bit_exactly(tmp_path: Path):
    out = tmp_path / "out"
    result = api.compile(BRAILLE, "loihi2-netx", out_dir=out)
    assert result.report["backend_notes"]["netx"] == {"written": True, "problems": []}
    with np.load(REPO / "models" / "braille_sample_inputs.npz") as z:
        x = z["input"][0, :120]
    layers = run_netx(out / "network.net", x)
    want = simulate(result.net, {"input": x})
    for name, got in zip(result.net.populations, layers, strict=True):
        assert_array_equal(got, want.populations[name][0], err_msg=name)
    assert sum(int(g.sum()) for g in layers) > 20


def test_netx_round_trip_keeps_the_integers(tmp_path: Path):
    first = api.compile(BRAILLE, "loihi2-netx", out_dir=tmp_path / "a").net
    again = api.compile(tmp_path / "a" / "network.net", "loihi2-netx").net
    for (name, a), b in zip(first.populations.items(), again.populations.values(), strict=True):
        for field in ("du", "dv", "vth"):
            assert_array_equal(getattr(a.fixed, field), getattr(b.fixed, field), err_msg=name)
        assert_array_equal(
            a.fixed.bias_mant << a.fixed.bias_exp, b.fixed.bias_mant << b.fixed.bias_exp
        )

    def weights(net):  # per (destination layer, recurrent?) -> effective integer weights
        order = list(net.populations)
        return {
            (order.index(p.dst), p.src == p.dst): p.fixed.codes.toarray() << p.fixed.exp
            for p in net.projections
        }

    want, got = weights(first), weights(again)
    assert want.keys() == got.keys()
    for key in want:
        assert_array_equal(want[key], got[key], err_msg=str(key))


@pytest.mark.toolchain("shared")
def test_imported_netx_file_runs_like_lava_dl_runs_it(external_nir):
    path = external_nir / "neuromorphs-NIR/docs/source/examples/lava/network.net"
    compiled = api.compile(path, "loihi-sim").net
    pops = list(compiled.populations.values())
    assert [set(p.fixed.du) for p in pops] == [{4095}, {4095}]  # iDecay 4096 - 1
    assert [set(p.fixed.dv) for p in pops] == [{414}, {409}]
    assert [set(p.fixed.vth) for p in pops] == [{6}, {6}]
    x = (np.random.default_rng(0).random((60, 200)) < 0.02).astype(np.int64)
    layers = run_netx(path, x)
    ours = simulate(compiled, {"input": x})
    for pop, got in zip(pops, layers, strict=True):
        assert_array_equal(got, ours.populations[pop.name][0], err_msg=pop.name)
    assert all(g.sum() > 5 for g in layers)


def test_nets_netx_cannot_hold_are_not_written_and_say_why(tmp_path: Path):
    result = api.compile(BRAILLE, "loihi2", out_dir=tmp_path / "o")
    found = result.report["backend_notes"]["netx"]
    assert not found["written"]
    assert any("netx integer range" in p for p in found["problems"])
    assert not (tmp_path / "o" / "network.net").exists()
    with pytest.raises(ValueError, match="not expressible as netx"):
        netx.write(result.net, tmp_path / "x.net")


def test_a_layer_too_large_for_a_dense_netx_matrix_is_not_written(tmp_path: Path):
    """A 2-channel 64x64 conv is 147 k synapses but an 8192 x 8192 dense netx matrix."""
    c, hw = 2, 64
    ones = np.ones((c, hw, hw))
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([c, hw, hw])}),
            "conv": nir.Conv2d(
                input_shape=(hw, hw),
                weight=np.full((c, c, 3, 3), 0.1),
                stride=1,
                padding=1,
                dilation=1,
                groups=1,
                bias=np.zeros(c),
            ),
            "if": nir.IF(r=ones, v_threshold=ones, v_reset=0 * ones),
            "output": nir.Output(output_type={"output": np.array([c, hw, hw])}),
        },
        edges=[("input", "conv"), ("conv", "if"), ("if", "output")],
        type_check=False,
    )
    nir.write(tmp_path / "conv.nir", graph)
    result = api.compile(tmp_path / "conv.nir", "loihi2-netx", out_dir=tmp_path / "o")
    found = result.report["backend_notes"]["netx"]
    assert not found["written"]
    assert found["problems"] == [
        "conv: netx layers are dense; 8192 x 8192 = 67,108,864 weights exceed the 16,777,216 "
        "of one Loihi 2 chip at 8 bits per weight"
    ]
    assert not (tmp_path / "o" / "network.net").exists()


def test_unsupported_netx_layer_is_named(tmp_path: Path):
    path = tmp_path / "conv.net"
    with h5py.File(path, "w") as h5:
        layer = h5.create_group("layer/0")
        layer.create_dataset("type", data=np.array([b"conv"], dtype="S10"))
    with pytest.raises(UnsupportedOpError, match="layer 0 has type 'conv'; supported netx layers"):
        api.load(path)
