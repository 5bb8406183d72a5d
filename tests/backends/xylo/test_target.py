"""The ``xylo-audio2`` target: its numeric format, quantization, design rules and a NIR
graph compiled, run on xylosim and verified against the simulator from the command line."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import zipfile
from pathlib import Path

import nir
import numpy as np
import pytest
import scipy.sparse as sp

from snn_deploy import api
from snn_deploy.errors import DesignRuleError, TargetError, VerificationError
from snn_deploy.frontends import nir as nir_frontend
from snn_deploy.ir import serialize
from snn_deploy.ir.net import Net, Population, Projection, SynapseFixed
from snn_deploy.ir.types import ResetMode, ThresholdCompare
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import quantize
from snn_deploy.target.load import load_target, targets_dir
from snn_deploy.target.rules import check_design_rules
from tests.backends.sim.test_against_reference import random_net
from tests.backends.xylo.test_xylosim import TARGET, small_fan_out, xylo_net
from tests.cli.test_cli import invoke

SPEC = TARGET.numeric
HIDDEN = {
    "snn_deploy.spike_levels": 31,
    "snn_deploy.reset": "subtract",
    "snn_deploy.threshold_compare": ">=",
}
READOUT = {"snn_deploy.reset": "subtract", "snn_deploy.threshold_compare": ">="}


def xylo_graph(rng: np.random.Generator, n_in=16, n_h=40, n_out=4, hidden=HIDDEN) -> nir.NIRGraph:
    """Input -> Linear -> CubaLIF (recurrent, 31 spike levels) -> Linear -> LIF -> Output,
    with the chip's reset and compare (dt = 1 ms: tau_syn 4 ms, tau_mem 16 ms are dash 2, 4)."""
    ones = np.ones(n_h)
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w_in": nir.Linear(weight=rng.normal(0, 0.5, (n_h, n_in))),
        "hidden": nir.CubaLIF(
            tau_syn=4e-3 * ones,
            tau_mem=16e-3 * ones,
            r=16 * ones,
            v_leak=0 * ones,
            v_threshold=ones,
            w_in=4 * ones,
            v_reset=0 * ones,
            metadata=dict(hidden),
        ),
        "w_rec": nir.Linear(weight=rng.normal(0, 0.2, (n_h, n_h))),
        "w_out": nir.Linear(weight=rng.normal(0, 0.3, (n_out, n_h))),
        "out": nir.LIF(
            tau=np.full(n_out, 8e-3),
            r=np.full(n_out, 8.0),
            v_leak=np.zeros(n_out),
            v_threshold=np.ones(n_out),
            v_reset=np.zeros(n_out),
            metadata=dict(READOUT),
        ),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [
        ("input", "w_in"),
        ("w_in", "hidden"),
        ("hidden", "w_rec"),
        ("w_rec", "hidden"),
        ("hidden", "w_out"),
        ("w_out", "out"),
        ("out", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def compile_with_inputs(graph: nir.NIRGraph, rng: np.random.Generator, root: Path) -> Path:
    """``graph`` written to ``root/model.nir`` and compiled with the CLI for xylo-audio2
    (dt = 1 ms) on 2 samples of 50 steps of input events (up to 19: some above the chip's
    cap), recording the state; returns the output folder."""
    nir.write(root / "model.nir", graph)
    x = np.where(rng.random((2, 50, 16)) < 0.3, rng.integers(1, 20, (2, 50, 16)), 0)
    np.savez(root / "x.npz", input=x.astype(float))
    out = root / "out"
    code, text = invoke(
        "compile", root / "model.nir", "-t", "xylo-audio2", "--dt", "1e-3", "-o", out,
        "--inputs", root / "x.npz", "--record-state",
    )  # fmt: skip
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    return compile_with_inputs(xylo_graph(rng), rng, tmp_path_factory.mktemp("xylo"))


# --------------------------------------------------------------------------- format


def test_the_format_file_gives_xylo_arithmetic_and_lava_keeps_its_defaults():
    lava = load_target("sim").numeric
    assert (lava.decay_form.value, lava.current_update.value, lava.accumulation.value) == (
        "multiply",
        "decay-then-add",
        "sum",
    )
    assert (lava.voltage_update.value, lava.input_latency, lava.input_payload_max) == (
        "sum",
        1,
        None,
    )
    assert (SPEC.decay_form.value, SPEC.current_update.value, SPEC.accumulation.value) == (
        "shift",
        "add-then-decay",
        "saturate-each-source",
    )
    assert (SPEC.voltage_update.value, SPEC.input_latency, SPEC.input_payload_max) == (
        "saturate-each-term",
        0,
        15,
    )
    assert (SPEC.weight.min, SPEC.weight.max, SPEC.current.min, SPEC.current.max) == (
        -128,
        127,
        -(2**15),
        2**15 - 1,
    )


def test_an_unknown_decay_form_is_refused(tmp_path: Path):
    (tmp_path / "formats").mkdir()
    text = (targets_dir() / "formats" / "xylo_audio2.toml").read_text()
    (tmp_path / "formats" / "xylo_audio2.toml").write_text(
        text.replace('value = "shift"', 'value = "exponential"')
    )
    shutil.copy(targets_dir() / "xylo_audio2.toml", tmp_path / "x.toml")
    with pytest.raises(TargetError, match="'exponential' is not a valid DecayForm"):
        load_target(tmp_path / "x.toml")


def test_a_lava_network_file_has_no_new_keys_and_a_xylo_one_round_trips(tmp_path: Path):
    lava = random_net(np.random.default_rng(0))
    with zipfile.ZipFile(io.BytesIO(serialize.to_bytes(lava))) as z:
        header = json.loads(np.load(z.open("header.npy")).tobytes())
    assert "input_latency" not in header and "decay_form" not in header["numeric"]
    net = xylo_net(np.random.default_rng(1))
    (tmp_path / "n.npz").write_bytes(serialize.to_bytes(net))
    back = serialize.load(tmp_path / "n.npz")
    assert back.numeric == net.numeric and back.input_latency == 0


# --------------------------------------------------------------------------- quantize


def population(alpha, beta, size=2) -> Population:
    return Population(
        name="h",
        node_type="CubaLIF",
        shape=(size,),
        alpha=alpha,
        beta=beta,
        bias=0.0,
        threshold=1.0,
        reset=ResetMode.SUBTRACT,
        levels=31,
        threshold_compare=ThresholdCompare.GE,
    )


def test_time_constants_round_to_dash_values_and_the_gain_undoes_the_early_decay():
    """Before: α = (1/4, 1), β = (1/16, 0). Expected: dash_syn (2, 1) (the current needs at
    least 1: dash 0 would drop every input), dash_mem (4, 15) (the largest for no leak), and
    the input weights gained by 1/(1 - 2**-dash_syn) = (4/3, 2) so that u = kept(u + a)
    follows u = (1 - α)·u + a."""
    net = Net(
        dt=1e-3,
        inputs={"x": (1,)},
        populations={"h": population([0.25, 1.0], [1 / 16, 0.0])},
        projections=(Projection(name="w", src="x", dst="h", weight=sp.csr_matrix([[3.0], [3.0]])),),
        outputs={"y": "h"},
        input_latency=0,
    )
    q = quantize(net, SPEC)
    f = q.populations["h"].fixed
    assert f is not None
    assert f.du.tolist() == [2, 1] and f.dv.tolist() == [4, 15]
    fixed = q.projections[0].fixed
    assert fixed is not None
    codes = fixed.codes.toarray().ravel() * 2.0**fixed.exp
    assert codes[0] * 3 == pytest.approx(codes[1] * 2, rel=0.02)  # 3·4/3 : 3·2
    lif = net.replace(populations={"h": population([1.0, 1.0], [1 / 16, 0.0])})
    with pytest.warns(UserWarning, match="rounds to below 1 in every neuron of 'h' .u: tau_syn"):
        quantize(lif, SPEC)


def test_one_weight_exponent_per_matrix():
    """Two recurrent projections whose own exponents would differ share the larger one."""
    rng = np.random.default_rng(3)
    net = xylo_net(rng, hidden=(6, 4))
    pops = {k: dataclasses.replace(p, fixed=None) for k, p in net.populations.items()}
    projs = tuple(
        dataclasses.replace(p, fixed=None, weight=p.weight * (0.01 if p.name == "h1->h2" else 1))
        for p in net.projections
    )
    q = quantize(net.replace(populations=pops, projections=projs, numeric=None), SPEC)
    exps: dict[str, set[int]] = {}
    for p in q.projections:
        assert p.fixed is not None
        exps.setdefault(q.matrix_of(p), set()).add(p.fixed.exp)
    assert all(len(e) == 1 for e in exps.values()), exps
    check_design_rules(q, TARGET)


# --------------------------------------------------------------------------- design rules


def violations(net: Net, target=TARGET) -> list[str]:
    with pytest.raises(DesignRuleError) as err:
        check_design_rules(net, target)
    return str(err.value).splitlines()[1:]


def test_size_limits_name_the_layer_the_limit_and_the_value():
    rng = np.random.default_rng(0)
    lines = violations(xylo_net(rng, n_in=17, hidden=(600, 401), n_out=9, density=0.01))
    assert lines == [
        "  [input-channels] (inputs): input channels is 17, limit 16; fix: reduce the input "
        "features (e.g. fewer filter-bank channels)",
        "  [hidden-neurons] (h1, h2): hidden neurons is 1001, limit 1000; fix: smaller hidden "
        "layers, or fewer recurrent synapses per neuron (alias neurons)",
        "  [output-neurons] (o): read-out neurons is 9, limit 8; fix: fewer classes, or read a "
        "hidden population",
    ]


def test_alias_neurons_count_as_hidden_neurons_and_fan_out_without_aliases_is_refused():
    net = xylo_net(np.random.default_rng(0), hidden=(500, 490), density=1.0)
    lines = violations(net)
    assert lines[0].startswith("  [hidden-neurons] (h1, h2): hidden neurons (990 + ")
    assert (
        "[synapse-bank-entries] (recurrent matrix): recurrent synapses in one synaptic "
        in (lines[1])
    )
    no_alias = dataclasses.replace(
        TARGET, limits=dataclasses.replace(small_fan_out(3).limits, aliases_per_neuron=0)
    )
    small = xylo_net(np.random.default_rng(0), hidden=(6, 4), density=1.0)
    assert violations(small, no_alias) == [
        "  [recurrent-fan-out] hidden neuron 0: recurrent synapses of one neuron is 10, limit "
        "3; fix: prune the recurrent weights"
    ]
    check_design_rules(small, small_fan_out(3))  # with aliases it fits


def test_structure_rules():
    net = xylo_net(np.random.default_rng(0))
    pops = dict(net.populations)
    pops["h2"] = dataclasses.replace(pops["h2"], levels=1)
    codes = sp.csr_matrix(np.ones((3, 5), np.int64))
    exp = net.projections[0].fixed.exp  # type: ignore[union-attr]  # the input matrix's
    skip = Projection(
        name="x->o", src="x", dst="o", weight=codes, fixed=SynapseFixed(codes=codes, exp=exp)
    )
    lines = violations(net.replace(populations=pops, projections=(*net.projections, skip)))
    assert lines == [
        "  [input-to-output] x->o: projection is x (input) -> o (read-out), limit inputs reach "
        "hidden neurons only; fix: put a hidden layer between the input and the read-out",
        "  [spike-levels] h2: spike levels of a hidden neuron is 1, limit 31; fix: set metadata "
        "snn_deploy.spike_levels = 31 on the node (train with it: the chip's neurons emit "
        "that many)",
    ]


def test_weight_shifts_of_one_matrix_must_agree():
    net = xylo_net(np.random.default_rng(0))
    first = net.projections[1]  # h1 -> h1
    assert first.fixed is not None
    other = dataclasses.replace(first.fixed, exp=first.fixed.exp + 1 if first.fixed.exp < 7 else 0)
    projs = (net.projections[0], dataclasses.replace(first, fixed=other), *net.projections[2:])
    (line,) = violations(net.replace(projections=projs))
    assert line.startswith("  [weight-shift-per-matrix] (recurrent matrix): weight exponents is [")


# --------------------------------------------------------------------------- end to end


@pytest.mark.toolchain("xylosim")
def test_a_nir_graph_compiles_runs_on_xylosim_and_verifies(compiled: Path):
    report = json.loads((compiled / "report.json").read_text())
    notes = report["backend_notes"]
    assert notes["hidden_neurons"] == 40 and notes["output_neurons"] == 4
    assert notes["latency"] == {
        "input_hop_steps": 0,
        "hidden_hop_steps": 1,
        "output_hop_steps": 1,
        "outputs_first_step": {"output": 1},
        "us_per_step": 1000.0,
        "basis": "real time: the chip runs one step per dt",
    }
    assert notes["time_constants"]["hidden"]["tau_syn"] == {
        "dash": [2],
        "tau_s": [0.004],
        "relative_error": 0.0,
    }
    # the weight error is measured against the gained weights the codes stand for (an
    # ungained comparison would report ~1/3 for dash_syn 2 and ~1 for the read-out's dash 1)
    errors = {p["name"]: p["relative_weight_error"] for p in report["quantization"]["projections"]}
    assert max(errors.values()) < 0.2, errors
    assert (compiled / "xylo_config.npz").is_file()
    for target in ("xylosim", "sim"):
        code, text = invoke("verify", compiled, "--target", target)
        assert code == 0, text
        assert f"on {target}: all 5 arrays equal" in text


def test_energy_is_the_vendor_cycle_model_times_the_energy_of_a_cycle(compiled: Path):
    """Cycles per step as SynSense's public model counts them (rockpool power_cycles_model),
    recounted here from the run's own records, times 24.7 pJ a cycle."""
    report = json.loads((compiled / "report.json").read_text())
    e, layout = report["energy"], report["backend_notes"]["cycle_model"]
    with np.load(compiled.parent / "x.npz") as z:
        x = z["input"]
    p_in = np.count_nonzero(x) / x.size
    trace = api.simulate(compiled, {"input": x})
    hidden = [np.asarray(trace.populations[k]) for k in layout["hidden_populations"]]
    p = sum(np.count_nonzero(h) for h in hidden) / sum(h.size for h in hidden)
    n_in, n_h, n_out = 16, layout["hidden_neurons"], 4
    assert layout["alias_sources"] == 0  # the variable hidden cycles are then 3 p
    expected = (
        n_in * (p_in * n_h * 3.5 + 1)
        + n_h * (layout["recurrent_synapses"] / n_h * 7 * p + 3)
        + n_h * p * (1 + n_out * 8)
        + n_h * (19 + 3 * p)
        + 12 * n_out
    )
    cycles = e["cycles"]
    assert cycles["per_step"]["total"] == pytest.approx(expected, rel=1e-12)
    assert cycles["per_step"]["input_rate"] == pytest.approx(p_in)
    assert e["breakdown_uj"] == {"clock_cycles": pytest.approx(expected * 50 * 24.7e-6)}
    assert e["figures"]["cycle_pj"]["basis"] == "xylo-audio3"
    assert cycles["clock_mhz"] == pytest.approx(expected / 1000.0)  # 1 ms steps
    assert cycles["dynamic_power_uw"] == pytest.approx(expected * 24.7e-6 / 1e-3)
    assert not any(line.startswith(("synops", "messages")) for line in e["not_modelled"])
    html_text = (compiled / "report.html").read_text()
    assert f"Clock cycles: {expected:.4g} per step (input " in html_text


@pytest.mark.toolchain("xylosim")
def test_a_changed_spike_fails_verification_on_xylosim(compiled: Path, tmp_path: Path):
    copy = tmp_path / "out"
    shutil.copytree(compiled, copy)
    with np.load(copy / "vectors.npz") as z:
        arrays = dict(z)
    arrays["output.output"][0, 5, 1] ^= 1
    np.savez(copy / "vectors.npz", **arrays)
    code, text = invoke("verify", copy)
    assert code == 6 and "output.output: 1 of 400 values differ" in text, text


def test_xylosim_verifies_only_xylo_folders(tmp_path: Path):
    from tests.cli.test_cli import BRAILLE

    out = tmp_path / "out"
    assert invoke("compile", BRAILLE, "-o", out)[0] == 0
    code, text = invoke("verify", out, "--target", "xylosim")
    assert code == 2
    assert "--target xylosim needs a folder compiled for a xylo target" in text


@pytest.mark.toolchain("xylosim")
def test_evaluate_verifies_xylosim_against_the_simulator(compiled: Path, tmp_path: Path):
    rng = np.random.default_rng(5)
    data = tmp_path / "data"
    data.mkdir()
    x = np.where(rng.random((3, 30, 16)) < 0.3, rng.integers(1, 20, (3, 30, 16)), 0)
    np.savez(data / "x.npz", input=x.astype(float), labels=np.array([0, 1, 2]))
    code, text = invoke(
        "evaluate", compiled, "--inputs", data, "--labels", "labels", "--verify",
        "-o", tmp_path / "r",
    )  # fmt: skip
    assert code == 0, text
    assert "output.output: 0 of 360 values differ from sim" in text
    result = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert result["backend"] == "xylosim" and result["verify"]["passed"]


# --------------------------------------------------------------------------- second currents


def two_current_graph(rng: np.random.Generator, n_in=16, n_h=40, n_out=4) -> nir.NIRGraph:
    """``xylo_graph`` whose hidden CubaLIF has a second synaptic current (metadata
    ``snn_deploy.tau_syn2`` = 32 ms, dash 5), fed by a second input Linear and by a second
    recurrent Linear, both marked ``snn_deploy.synapse = 1``."""
    graph = xylo_graph(rng, n_in, n_h, n_out)
    nodes, edges = dict(graph.nodes), list(graph.edges)
    nodes["hidden"].metadata["snn_deploy.tau_syn2"] = 32e-3
    synapse = {"snn_deploy.synapse": 1}
    nodes["w_in2"] = nir.Linear(weight=rng.normal(0, 0.5, (n_h, n_in)), metadata=dict(synapse))
    nodes["w_rec2"] = nir.Linear(weight=rng.normal(0, 0.2, (n_h, n_h)), metadata=dict(synapse))
    edges += [("input", "w_in2"), ("w_in2", "hidden"), ("hidden", "w_rec2"), ("w_rec2", "hidden")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_a_nir_graph_with_a_second_current_lowers_to_it(tmp_path: Path):
    """The metadata gives the hidden population ``alpha2 = dt/tau_syn2`` and routes both marked
    paths into it, with the CubaLIF gain of ``tau_syn2``; a round trip through a NIR file
    keeps it."""
    graph = nir_frontend.load(two_current_graph(np.random.default_rng(0)))
    nir.write(tmp_path / "back.nir", nir_frontend.dump(graph))
    assert nir_frontend.load(tmp_path / "back.nir") == graph
    assert graph.nodes["w_rec2"].synapse == 1 and graph.nodes["w_rec"].synapse == 0
    net = lower(graph, 1e-3)
    hidden = net.populations["hidden"]
    assert hidden.alpha2 is not None and np.all(hidden.alpha2 == 1e-3 / 32e-3)
    assert net.populations["out"].alpha2 is None
    into = {p.name: p.synapse for p in net.incoming("hidden")}
    assert into == {"w_in": 0, "w_rec": 0, "w_in2": 1, "w_rec2": 1}
    w_in2 = next(p for p in net.projections if p.name == "w_in2")
    node = graph.nodes["w_in2"]
    gain = (1e-3 / 16e-3) * 16 * (1e-3 / 32e-3) * 4  # beta * r * alpha2 * w_in
    assert np.allclose(w_in2.weight.toarray(), gain * node.weight, rtol=1e-12)


def test_a_path_into_a_missing_second_current_is_an_error():
    graph = two_current_graph(np.random.default_rng(0))
    del graph.nodes["hidden"].metadata["snn_deploy.tau_syn2"]
    with pytest.raises(VerificationError, match=r"'hidden' .*one synaptic current.*w_in2"):
        lower(nir_frontend.load(graph), 1e-3)
    bad = two_current_graph(np.random.default_rng(0))
    bad.nodes["w_in2"].metadata["snn_deploy.synapse"] = 2
    with pytest.raises(VerificationError, match=r"'w_in2'.*snn_deploy\.synapse.*got 2"):
        nir_frontend.load(bad)


@pytest.mark.toolchain("xylosim")
def test_a_nir_graph_with_a_second_current_compiles_and_equals_xylosim(tmp_path: Path):
    """From the user's entry point: the NIR file compiled for xylo-audio2 with the CLI puts
    the marked paths into the chip's second synapse bank, and sim == xylosim in outputs, u,
    u2 and v (``verify`` on both), with the second current really driving the neurons."""
    rng = np.random.default_rng(1)
    out = compile_with_inputs(two_current_graph(rng), rng, tmp_path)
    with np.load(out / "xylo_config.npz") as z:
        config = dict(z)
        vectors = dict(np.load(out / "vectors.npz"))
    assert np.count_nonzero(config["w_in2"]) and np.count_nonzero(config["w_rec2"])
    assert set(config["dash_syn2"][:40].tolist()) == {5}  # 32 ms at dt = 1 ms
    notes = json.loads((out / "report.json").read_text())["backend_notes"]
    assert notes["time_constants"]["hidden"]["tau_syn2"] == {
        "dash": [5],
        "tau_s": [0.032],
        "relative_error": 0.0,
    }
    assert "tau_syn2" not in notes["time_constants"]["out"]
    assert np.abs(vectors["u2.hidden"]).max() > 0
    for target in ("xylosim", "sim"):
        code, text = invoke("verify", out, "--target", target)
        assert code == 0, text
        assert f"on {target}: all 6 arrays equal" in text


@pytest.mark.parametrize("target", ["loihi-sim", "fpga-artix7-35t"])
def test_a_second_current_is_refused_by_name_on_targets_without_one(target, tmp_path: Path):
    nir.write(tmp_path / "model.nir", two_current_graph(np.random.default_rng(0)))
    code, text = invoke("compile", tmp_path / "model.nir", "-t", target, "--dt", "1e-3")
    assert code != 0
    assert "[synaptic-currents] hidden: synaptic currents per neuron is 2, limit 1" in text
