"""NIR round trip of the product nodes (``snn_deploy.Attention``, ``snn_deploy.Gate``), and
plain NIR readers refuse them rather than misread them."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from snn_deploy.frontends import nir as nir_frontend
from tests.backends.sim.test_products import product_graph

CASE = {"dim": 4, "heads": 2, "levels": 3, "decay": (0, 2), "causal": True, "steps": 7}


def test_round_trip_in_memory_and_through_a_file(tmp_path):
    graph = product_graph(np.random.default_rng(0), **CASE)
    dumped = nir_frontend.dump(graph)
    assert type(dumped.nodes["att"]).to_dict(dumped.nodes["att"])["type"] == "snn_deploy.Attention"
    assert nir_frontend.load(dumped) == graph
    path = tmp_path / "model.nir"
    nir.write(path, dumped)
    again = nir_frontend.load(path)
    assert again == graph
    assert again.nodes["att"].decay == (0, 2)
    assert (
        again.nodes["att"]
        != product_graph(np.random.default_rng(0), **{**CASE, "decay": (0, 3)}).nodes["att"]
    )


def test_whole_clip_attention_round_trips(tmp_path):
    case = {**CASE, "decay": (0, 0), "causal": False}
    graph = product_graph(np.random.default_rng(1), **case)
    path = tmp_path / "model.nir"
    nir.write(path, nir_frontend.dump(graph))
    assert nir_frontend.load(path).nodes["att"].causal is False


def test_plain_nir_readers_refuse_the_product_nodes(tmp_path):
    path = tmp_path / "model.nir"
    nir.write(path, nir_frontend.dump(product_graph(np.random.default_rng(0), **CASE)))
    with pytest.raises(AssertionError):  # nir.str2NIRNode: the type is none of NIR's
        nir.read(path)
    with pytest.raises(AssertionError):
        nir.read(path, type_check=False)
