"""Round trip of a ``Net`` through its ``.npz`` file."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from snn_deploy.ir import serialize
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
