"""NIR frontend: loading, round trips, and clear errors on bad graphs."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest

from snn_deploy.errors import InputFileError, UnsupportedOpError, VerificationError
from snn_deploy.frontends.nir import LEVELS_KEY, dump, load, supported
from snn_deploy.ir import nodes as n
from snn_deploy.ir.types import ResetMode
from tests.conftest import NIR_FIXTURES
from tests.graphs import conv1d_integrator, every_node_type

FIXTURE_FILES = sorted(NIR_FIXTURES.glob("*.nir"))


def test_every_node_type_loads_with_flattened_subgraph():
    g = load(every_node_type())
    kinds = {type(v).__name__ for v in g.nodes.values()} | {
        type(v).__name__ for v in load(conv1d_integrator()).nodes.values()
    }
    products = set(n.PRODUCTS)  # their own round trip: tests/frontends/test_nir_products.py
    assert {k.__name__ for k in n.ALL_NODES if k not in products} <= kinds
    assert "sub.lif" in g.nodes and "sub" not in g.nodes
    assert ("sub.rec", "sub.lif") in g.edges and ("delay", "sub.lif") in g.edges


@pytest.mark.parametrize("make", [every_node_type, conv1d_integrator])
def test_round_trip_through_a_nir_file(make, tmp_path: Path):
    g = load(make())
    nir.write(tmp_path / "g.nir", dump(g))
    assert load(tmp_path / "g.nir") == g


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_files_round_trip(path: Path, tmp_path: Path):
    g = load(path)
    nir.write(tmp_path / "g.nir", dump(g))
    assert load(tmp_path / "g.nir") == g


def test_reset_mode_survives_the_round_trip(tmp_path: Path):
    g = load(NIR_FIXTURES / "lif_norse.nir", reset=ResetMode.SUBTRACT)
    nir.write(tmp_path / "g.nir", dump(g))
    assert load(tmp_path / "g.nir").nodes["1"].reset is ResetMode.SUBTRACT
    assert load(NIR_FIXTURES / "lif_norse.nir").nodes["1"].reset is ResetMode.ZERO


def test_graph_is_frozen():
    g = load(NIR_FIXTURES / "lif_norse.nir")
    with pytest.raises(TypeError):
        g.nodes["x"] = g.nodes["1"]  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        g.nodes["1"].tau[0] = 1.0


def _lif_graph(**overrides) -> nir.NIRGraph:
    params = {
        "tau": np.array([1e-2]),
        "r": np.array([1.0]),
        "v_leak": np.array([0.0]),
        "v_threshold": np.array([1.0]),
        "v_reset": np.array([0.0]),
        **overrides,
    }
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1])}),
            "w": nir.Linear(weight=np.array([[1.0]])),
            "lif": nir.LIF(**params),
            "out": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")],
        type_check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tau": np.array([0.0])}, r"node 'lif' \(LIF\): tau must be > 0"),
        ({"tau": np.array([-1.0])}, r"tau must be > 0, got min -1"),
        (
            {"v_threshold": np.array([np.nan])},
            r"node 'lif' \(LIF\): v_threshold contains NaN or inf",
        ),
        ({"r": np.array([np.inf])}, r"r contains NaN or inf"),
    ],
)
def test_bad_parameters_are_named(overrides, message):
    with pytest.raises(VerificationError, match=message):
        load(_lif_graph(**overrides))


def test_dangling_edge_is_named():
    g = _lif_graph()
    g.edges.append(("lif", "ghost"))
    with pytest.raises(VerificationError, match=r"edge \('lif' -> 'ghost'\) names node 'ghost'"):
        load(g)


def test_shape_mismatch_is_named():
    g = _lif_graph()
    g.nodes["w"] = nir.Linear(weight=np.ones((2, 1)))
    with pytest.raises(VerificationError, match=r"edge 'w' -> 'lif'"):
        load(g)


def test_unsupported_node_lists_the_supported_ones():
    class Mystery(nir.NIRNode):  # a node type NIR does not define
        pass

    g = _lif_graph()
    g.nodes["w"] = Mystery.__new__(Mystery)
    with pytest.raises(
        UnsupportedOpError, match=r"node 'w' has type Mystery.*supported: .*CubaLIF"
    ):
        load(g)
    assert "Conv2d" in supported()


def test_not_a_nir_file(tmp_path: Path):
    bad = tmp_path / "model.nir"
    bad.write_text("hello")
    with pytest.raises(InputFileError, match="not a readable NIR"):
        load(bad)
    truncated = tmp_path / "cut.nir"
    truncated.write_bytes((NIR_FIXTURES / "cnn_sinabs.nir").read_bytes()[:5000])
    with pytest.raises(InputFileError):
        load(truncated)
    with pytest.raises(InputFileError, match="no such file"):
        load(tmp_path / "missing.nir")


# The external NIR files (../shared, read in place): which load and which give clear errors,
# as listed in shared/external/nir/README.md.
LOADS = [
    "neuromorphs-NIR/paper/01_lif/lif_norse.nir",
    "neuromorphs-NIR/paper/01_lif/debug_spike_representation/two_lif_neurons.nir",
    "neuromorphs-NIR/paper/02_cnn/cnn_sinabs.nir",
    "neuromorphs-NIR/paper/03_rnn/braille_noDelay_bias_zero.nir",
    "neuromorphs-NIR/paper/03_rnn/braille_noDelay_noBias_subtract.nir",
    "kmheckel-spyx/docs/examples/nir/rsnn/braille_noDelay_bias_zero_subgraph.nir",
    "kmheckel-spyx/docs/examples/nir/rsnn/braille_noDelay_noBias_subtract_subgraph.nir",
    "neuromorphs-NIRTorch/tests/braille.nir",
    "norse-norse/norse/torch/utils/test/braille.nir",
    "neuromorphs-NIR/history/paper__03_rnn__braille_subtract@3cbddd23.nir",
    "neuromorphs-NIR/history/paper__lif_norse@3a3afb6f.nir",
    "synsense-rockpool/tests/tests_default/nir_graphs/braille.nir",  # nested types not checked
]
LOADS_WITH_EXPORTER = {  # each file with its exporter's profile (docs/FRONTENDS.md §7)
    "neuromorphs-NIR/paper/01_lif/lif_rockpool.nir": "rockpool",
    "synsense-rockpool/tests/tests_default/nir_graphs/braille.nir": "rockpool",
    "kmheckel-spyx/research/paper/spyx_shd.nir": "spyx",
    "neuromorphs-NIR/paper/01_lif/lif_norse.nir": "norse",
}
FAILS = {
    "neuromorphs-NIR/paper/01_lif/lif_rockpool.nir": "shape mismatch",
    "kmheckel-spyx/research/paper/spyx_shd.nir": "tau must be > 0",
    "neuromorphs-NIR/paper/03_rnn/extras/braille_noDelay_bias_zero_subgraph.nir": (
        r"edge \('lif1.lif' -> 'lif1.lin'\) names node 'lif1.lif', which does not exist"
    ),
    "neuromorphs-NIR/history/paper__02_cnn__scnn_mnist@669fbfad.nir": "NIR reader failed",
    "neuromorphs-NIR/history/paper__02_cnn__scnn_mnist@e5ac8325.nir": "shape mismatch",
    "neuromorphs-NIR/history/paper__03_rnn__braille@c381ba29.nir": "no Input node",
    "neuromorphs-NIR/history/paper__03_rnn__braille_v2@c777885b.nir": "names node 'lif1'",
    "neuromorphs-NIR/history/paper__lif_norse@2b0feb3d.nir": "NIR reader failed",
}


@pytest.mark.toolchain("shared")
@pytest.mark.parametrize("rel", LOADS)
def test_external_graph_loads(rel, external_nir):
    g = load(external_nir / rel)
    assert next(g.of_type(n.Input)) and next(g.of_type(n.Output))


@pytest.mark.toolchain("shared")
@pytest.mark.parametrize("rel", sorted(FAILS))
def test_external_broken_graph_gives_clear_error(rel, external_nir):
    with pytest.raises((InputFileError, VerificationError), match=FAILS[rel]):
        load(external_nir / rel)


def test_a_file_that_crashes_the_hdf5_library_gives_a_clear_error():
    with pytest.raises(InputFileError, match=r"the file reader crashed \(SIGSEGV\).*corrupt"):
        load(NIR_FIXTURES / "hdf5_crash.bin")


def test_spike_levels_survive_the_round_trip(tmp_path: Path):
    g = load(_lif_graph(metadata={LEVELS_KEY: 3}))
    assert g.nodes["lif"].levels == 3
    nir.write(tmp_path / "g.nir", dump(g))
    back = load(tmp_path / "g.nir")
    assert back == g and back.nodes["lif"].levels == 3
    assert nir.read(tmp_path / "g.nir").nodes["lif"].metadata[LEVELS_KEY] == 3
    # binary neurons: the key is absent on load and not written on dump
    binary = load(_lif_graph())
    assert binary.nodes["lif"].levels == 1
    assert LEVELS_KEY not in dump(binary).nodes["lif"].metadata


@pytest.mark.parametrize("bad", [0, -2, 2.0, "3", True, [2]])
def test_invalid_spike_levels_are_named(bad):
    with pytest.raises(VerificationError, match=rf"node 'lif': metadata '{LEVELS_KEY}' must be"):
        load(_lif_graph(metadata={LEVELS_KEY: bad}))


def test_spike_levels_on_a_non_spiking_node_are_an_error():
    g = _lif_graph()
    g.nodes["lif"] = nir.LI(
        tau=np.array([1e-2]), r=np.array([1.0]), v_leak=np.array([0.0]), metadata={LEVELS_KEY: 2}
    )
    with pytest.raises(VerificationError, match=r"node 'lif': LI cannot have .* = 2"):
        load(g)


@pytest.mark.toolchain("shared")
@pytest.mark.parametrize("rel", sorted(LOADS_WITH_EXPORTER))
def test_external_graph_loads_with_its_exporter(rel, external_nir):
    g = load(external_nir / rel, exporter=LOADS_WITH_EXPORTER[rel])
    assert next(g.of_type(n.Input)) and next(g.of_type(n.Output))


@pytest.mark.toolchain("shared")
@pytest.mark.parametrize(
    ("rel", "exporter"),
    [
        ("kmheckel-spyx/research/paper/spyx_shd.nir", "spyx"),
        ("neuromorphs-NIR/paper/01_lif/lif_rockpool.nir", "rockpool"),
    ],
)
def test_exporter_signature_is_named(rel, exporter, external_nir):
    signature = f"looks like a {exporter} export.*--exporter {exporter}"
    with pytest.warns(UserWarning, match=signature), pytest.raises(VerificationError):
        load(external_nir / rel)


@pytest.mark.toolchain("shared")
def test_spyx_negative_tau_is_its_clamped_beta_of_one(external_nir):
    """Spyx writes tau = dt/(1 - beta) and r = beta with its raw beta, which its forward clamps
    to [0, 1]: a negative tau is beta > 1, i.e. no leak (docs/FRONTENDS.md §7)."""
    raw = nir.read(external_nir / "kmheckel-spyx/research/paper/spyx_shd.nir", type_check=False)
    with pytest.warns(UserWarning, match="Spyx LIF resets one step late"):
        g = load(external_nir / "kmheckel-spyx/research/paper/spyx_shd.nir", exporter="spyx")
    lif, dt = g.nodes["LIF"], 1e-4
    beta = np.clip(np.asarray(raw.nodes["LIF"].r, dtype=np.float64), 0, 1)
    kept = 1 - dt / lif.tau  # the per-step decay the profile writes
    np.testing.assert_array_equal(kept[beta == 1], 1.0)
    np.testing.assert_allclose(kept[beta < 1], beta[beta < 1], rtol=1e-12)
    assert np.all(np.asarray(raw.nodes["LIF"].tau)[beta == 1] < 0)
    assert g.nodes["linear"].weight.shape == (64, 128)  # [in, out] transposed to NIR's
