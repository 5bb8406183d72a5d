"""Round trip of a ``Net`` through its ``.npz`` file."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from snn_deploy.errors import InputFileError, VerificationError
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net
from tests.backends.sim.test_against_reference import random_net


def test_spike_levels_and_rounding_round_trip(tmp_path: Path):
    net = random_net(np.random.default_rng(0))
    pops = dict(net.populations)
    pops["p1"] = dataclasses.replace(pops["p1"], levels=5)
    first = net.projections[0]
    assert first.fixed is not None
    compensated = dataclasses.replace(first.fixed, rounding="compensated")
    projs = (dataclasses.replace(first, fixed=compensated), *net.projections[1:])
    net = net.replace(populations=pops, projections=projs)
    path = tmp_path / "net.npz"
    path.write_bytes(serialize.to_bytes(net))
    back = serialize.load(path)
    assert [p.levels for p in back.populations.values()] == [5, 1]
    rounding = [p.fixed.rounding for p in back.projections if p.fixed is not None]
    assert rounding == ["compensated"] + ["nearest"] * (len(net.projections) - 1)


def test_an_older_file_loads_as_binary_and_nearest(tmp_path: Path):
    """Files written before multi-level spikes and compensated rounding have no ``levels`` and
    ``rounding`` in their header."""
    net = random_net(np.random.default_rng(1))
    old = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(serialize.to_bytes(net))) as src,
        zipfile.ZipFile(old, "w") as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "header.npy":
                header = np.load(io.BytesIO(data))
                raw = json.loads(header.tobytes())
                for p in raw["populations"]:
                    del p["levels"]
                for p in raw["projections"]:
                    del p["rounding"]
                member = io.BytesIO()
                np.save(member, np.frombuffer(json.dumps(raw).encode(), np.uint8))
                data = member.getvalue()
            dst.writestr(info, data)
    path = tmp_path / "old.npz"
    path.write_bytes(old.getvalue())
    back = serialize.load(path)
    assert [p.levels for p in back.populations.values()] == [1, 1]
    assert {p.fixed.rounding for p in back.projections if p.fixed is not None} == {"nearest"}


def second_current_net() -> Net:
    """``random_net`` whose ``p1`` has a second current, fed by the input and by ``p1``."""
    net = random_net(np.random.default_rng(2))
    pops = dict(net.populations)
    p1 = pops["p1"]
    assert p1.fixed is not None
    du2 = np.arange(p1.size) * 100
    pops["p1"] = dataclasses.replace(p1, alpha2=0.125, fixed=dataclasses.replace(p1.fixed, du2=du2))
    extra = [
        dataclasses.replace(p, name=p.name + ".2", synapse=1)
        for p in net.projections
        if p.dst == "p1"
    ]
    return net.replace(populations=pops, projections=[*net.projections, *extra])


def test_second_currents_round_trip(tmp_path: Path):
    net = second_current_net()
    path = tmp_path / "net.npz"
    path.write_bytes(serialize.to_bytes(net))
    back = serialize.load(path)
    assert [p.synapse for p in back.projections] == [p.synapse for p in net.projections]
    assert 1 in [p.synapse for p in back.projections]
    for name, pop in net.populations.items():
        got = back.populations[name]
        assert got.currents == pop.currents
        if pop.alpha2 is None:
            assert got.alpha2 is None and got.fixed is not None and got.fixed.du2 is None
            continue
        assert got.alpha2 is not None and got.fixed is not None and pop.fixed is not None
        assert_array_equal(got.alpha2, pop.alpha2)
        assert got.fixed.du2 is not None and pop.fixed.du2 is not None
        assert_array_equal(got.fixed.du2, pop.fixed.du2)
    assert serialize.to_bytes(back) == serialize.to_bytes(net)


def test_a_net_without_second_currents_writes_no_trace_of_them():
    """Nets of one current per neuron are written as before second currents existed: no
    ``alpha2``/``du2`` arrays and no ``synapse`` key (their folders stay byte-identical)."""
    data = serialize.to_bytes(random_net(np.random.default_rng(3)))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        header = json.loads(np.load(io.BytesIO(zf.read("header.npy"))).tobytes())
    assert not [n for n in names if n.endswith(("alpha2.npy", "du2.npy"))]
    assert any(n.endswith("alpha.npy") for n in names)
    assert all("synapse" not in p for p in header["projections"])


def _edited(net: Net, edit: Callable[[dict[str, Any], dict[str, bytes]], None]) -> bytes:
    """``net``'s file with its header and members changed by ``edit``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(serialize.to_bytes(net))) as src:
        members = {i.filename: src.read(i) for i in src.infolist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    edit(header, members)
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
    members["header.npy"] = buf.getvalue()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_loading_checks_second_currents(tmp_path: Path):
    """A synapse other than 0 or 1, a projection into a second current the population does not
    have, decay codes out of the format, or codes without ``alpha2``: one error naming it."""
    net = second_current_net()
    last = len(net.projections) - 1

    def synapse(value: int) -> Callable[[dict[str, Any], dict[str, bytes]], None]:
        def edit(header: dict[str, Any], members: dict[str, bytes]) -> None:
            header["projections"][last]["synapse"] = value

        return edit

    def du2_out_of_range(header: dict[str, Any], members: dict[str, bytes]) -> None:
        members["pop0.fixed.du2.npy"] = _npy(np.full(net.populations["p1"].size, 1 << 20))

    def no_alpha2(header: dict[str, Any], members: dict[str, bytes]) -> None:
        del members["pop0.alpha2.npy"]

    def into_p2(header: dict[str, Any], members: dict[str, bytes]) -> None:
        header["projections"][0]["synapse"] = 1  # x -> p1 is fine; make p1 -> p2 use u2
        for p in header["projections"]:
            if p["dst"] == "p2":
                p["synapse"] = 1

    cases = [
        (synapse(2), InputFileError, "proj.*synapse.*2"),
        (synapse(-1), InputFileError, "proj.*synapse.*-1"),
        (into_p2, VerificationError, "synapse 1, but 'p2' has 1 synaptic current"),
        (du2_out_of_range, InputFileError, "pop0.fixed.du2"),
        (no_alpha2, VerificationError, "synapse 1, but 'p1' has 1 synaptic current"),
    ]
    for edit, error, message in cases:
        path = tmp_path / "bad.npz"
        path.write_bytes(_edited(net, edit))
        with pytest.raises(error, match=message):
            serialize.load(path)
