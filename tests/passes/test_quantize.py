"""``quantize``: saturating casts, scale choice, and float-vs-integer agreement."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from snn_deploy.api import compile as compile_model
from snn_deploy.api import lower_and_quantize
from snn_deploy.backends.sim.run import simulate
from snn_deploy.errors import QuantizationError
from snn_deploy.frontends.nir import load
from snn_deploy.ir.net import Net, Population, Projection
from snn_deploy.ir.types import FixedPoint, ResetMode
from snn_deploy.passes.calibration import measure
from snn_deploy.passes.lower import lower
from snn_deploy.passes.quantize import (
    CALIBRATION_MARGIN,
    choose_scale,
    compensated_codes,
    quantize,
)
from snn_deploy.reports.render import summary
from snn_deploy.target.load import load_target
from tests.conftest import NIR_FIXTURES, REPO
from tests.graphs import every_node_type, lif_node

SPEC = load_target("sim").numeric


def test_cast_saturates_instead_of_wrapping():
    # The peer-toolchain defect: round(300).astype(int8) == 44. Ours clips and counts.
    codes, clipped = FixedPoint(width=8, signed=True).quantize([300.0, -300.0, 12.4])
    assert_array_equal(codes, [127, -128, 12])
    assert clipped == 2


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.integers(2, 24), st.booleans())
def test_quantize_is_idempotent_and_in_range(values, width, signed):
    fmt = FixedPoint(width=width, signed=signed)
    once, _ = fmt.quantize(values)
    twice, clipped = fmt.quantize(once.astype(float))
    assert_array_equal(once, twice)
    assert clipped == 0
    assert once.min() >= fmt.min and once.max() <= fmt.max


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_quantize_is_monotonic(a, b):
    fmt = FixedPoint(width=8, signed=True)
    qa, qb = fmt.quantize([min(a, b), max(a, b)])[0]
    assert qa <= qb


def test_every_register_fits_after_quantization():
    net = quantize(lower(load(every_node_type()), 1e-4), SPEC)
    for pop in net.populations.values():
        f = pop.fixed
        assert f.du.min() >= 0 and f.du.max() <= 4095 and f.dv.max() <= 4095
        assert f.vth is None or f.vth.max() <= SPEC.threshold.max
        assert np.abs(f.bias_mant).max() <= SPEC.bias.max
    for proj in net.projections:
        assert np.abs(proj.fixed.codes.data).max(initial=0) <= SPEC.weight.max
        assert SPEC.weight_exp_min <= proj.fixed.exp <= SPEC.weight_exp_max


def test_quantizing_again_from_the_float_net_gives_the_same_codes():
    float_net = lower(load(NIR_FIXTURES / "cnn_sinabs.nir"), 1e-3)
    a, b = quantize(float_net, SPEC), quantize(float_net, SPEC)
    for pa, pb in zip(a.projections, b.projections, strict=True):
        assert (pa.fixed.codes != pb.fixed.codes).nnz == 0 and pa.fixed.exp == pb.fixed.exp


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero.nir"])
def test_quantized_spikes_agree_with_float_reference(name):
    """Agreement on the shipped model with random inputs: the quantized network fires within a
    few percent of the float reference (stated tolerance: 90 % of spike slots agree)."""
    float_net = lower(load(REPO / "models" / name), 1e-4)
    net = quantize(float_net, SPEC)
    x = (np.random.default_rng(0).random((4, 256, 12)) < 0.05).astype(float)
    f = simulate(float_net, {"input": x}, fixed=False).populations["lif1.lif"]
    q = simulate(net, {"input": x}).populations["lif1.lif"]
    assert f.sum() > 50
    assert np.mean(f == q) > 0.9


def test_percentile_method_clips_outliers_and_counts_them():
    model = REPO / "models" / "braille_noDelay_bias_zero.nir"
    plain = compile_model(model, "sim").report["quantization"]["projections"]
    clipped = compile_model(
        model, "sim", passes="lower,quantize{method=percentile,percentile=99}"
    ).report["quantization"]["projections"]
    assert all(p["clipped_weights"] == 0 for p in plain)
    assert all(p["clipped_weights"] > 0 for p in clipped)
    assert all(c["exp"] < p["exp"] for c, p in zip(clipped, plain, strict=True))


def test_calibrate_needs_inputs_and_sizes_current_by_activity():
    model = NIR_FIXTURES / "two_lif_neurons.nir"
    with pytest.raises(QuantizationError, match="needs calibration inputs"):
        compile_model(model, "sim", passes="lower,quantize{method=calibrate}")
    x = np.zeros((1, 50, 1))
    worst = compile_model(model, "sim").net
    calibrated = compile_model(model, "sim", calibrate={"input": x}).net
    # no input: u stays 0, so only the threshold, weights and bias limit the scale
    for name in worst.populations:
        assert calibrated.populations[name].fixed.scale >= worst.populations[name].fixed.scale


def test_worst_case_current_counts_every_spike_level():
    """64 weights of 1 from a source of D levels: the current can reach 64 * D, so the scale
    shrinks by D (2**23 / 64 -> 2**16; / (64 * 8) -> 2**13)."""
    dst = Population(
        name="dst", node_type="IF", shape=(1,), alpha=1.0, beta=0.0, bias=0.0, threshold=1e-3,
        reset=ResetMode.ZERO,
    )  # fmt: skip
    proj = Projection(name="w", src="src", dst="dst", weight=sp.csr_matrix(np.ones((1, 64))))
    assert choose_scale(dst, [proj], SPEC) == 2**16
    assert choose_scale(dst, [proj], SPEC, source_levels={"src": 1}) == 2**16
    assert choose_scale(dst, [proj], SPEC, source_levels={"src": 8}) == 2**13


def _voltage_error(codes: np.ndarray, real: np.ndarray, gram: np.ndarray) -> float:
    d = codes - real
    return float(np.trace(d @ gram @ d.T))


def test_compensated_rounding_lowers_filtered_error_and_saturates():
    """Correlated sources (a shared latent drives them): compensation beats nearest rounding on
    the error it minimises, and still never leaves the register."""
    rng = np.random.default_rng(0)
    latent = rng.random((4000, 3)) < 0.2
    x = (latent @ rng.random((3, 24)) + rng.random((4000, 24)) > 0.9).astype(float)
    gram = x.T @ x
    real = rng.normal(scale=40.0, size=(16, 24))
    fmt = FixedPoint(width=9, signed=True)
    comp = compensated_codes(real, gram, fmt)
    nearest, _ = fmt.quantize(real)
    assert _voltage_error(comp, real, gram) < 0.8 * _voltage_error(nearest, real, gram)
    real[0, :3] = [300.0, -300.0, 254.6]  # beyond the 9-bit range, and next to its edge
    comp = compensated_codes(real, gram, fmt)
    assert comp.min() == fmt.min and comp.max() == fmt.max


def test_calibrate_compensates_dense_projections_only():
    """``--calibrate``: the dense projection rounds with compensation (lower voltage error on the
    calibration activity), the sparse one to nearest; same scales and exponents either way."""
    rng = np.random.default_rng(1)
    sparse_w = rng.normal(size=(6, 12)) * (rng.random((6, 12)) < 0.5)
    graph = load(
        nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([10])}),
                "dense": nir.Linear(weight=rng.normal(size=(12, 10)) * 0.3),
                "a": lif_node(12, tau=5e-3, r=1.0),
                "sparse": nir.Linear(weight=sparse_w),
                "b": lif_node(6, tau=5e-3, r=1.0),
                "output": nir.Output(output_type={"output": np.array([6])}),
            },
            edges=[
                ("input", "dense"),
                ("dense", "a"),
                ("a", "sparse"),
                ("sparse", "b"),
                ("b", "output"),
            ],
        )
    )
    latent = rng.random((64, 200, 2)) < 0.3
    x = {"input": (latent @ rng.random((2, 10)) + rng.random((64, 200, 10)) > 0.8) * 1.0}
    target = load_target("loihi2")
    fnet, net = lower_and_quantize(graph, target, calibrate=x)
    run = simulate(fnet, x, fixed=False, record_state=True)
    cal = measure(fnet, {**x, **run.populations}, run.u)
    assert set(cal.grams) == {0}  # the dense projection only
    peaks = {k: CALIBRATION_MARGIN * v for k, v in cal.peaks.items()}
    plain = quantize(fnet, target.numeric, state_peaks=peaks)
    for name, pop in net.populations.items():
        assert pop.fixed.scale == plain.populations[name].fixed.scale
    (dense, dense0), (sparse, sparse0) = zip(net.projections, plain.projections, strict=True)
    assert dense.fixed.exp == dense0.fixed.exp and sparse.fixed.exp == sparse0.fixed.exp
    assert_array_equal(sparse.fixed.codes.toarray(), sparse0.fixed.codes.toarray())
    assert (dense.fixed.rounding, sparse.fixed.rounding) == ("compensated", "nearest")
    real = (
        dense.weight.toarray()
        * net.populations["a"].fixed.scale
        / 2.0 ** (target.numeric.input_shift + dense.fixed.exp)
    )
    comp, near = dense.fixed.codes.toarray(), dense0.fixed.codes.toarray()
    assert not np.array_equal(comp, near)
    assert _voltage_error(comp, real, cal.grams[0]) < _voltage_error(near, real, cal.grams[0])


def test_calibration_statistics_of_another_net_are_refused():
    model = NIR_FIXTURES / "two_lif_neurons.nir"
    fnet = lower(load(model), dt=1e-3)
    with pytest.raises(QuantizationError, match="calibration statistics of"):
        quantize(fnet, SPEC, grams={0: np.eye(fnet.projections[0].weight.shape[1] + 1)})


def _graded_readout(tmp_path):
    """Input(4) -> Linear (positive weights) -> LI(3) -> Output, written as a NIR file; with
    ``tau = dt`` the read-out voltage is the current of the step (no gain that could saturate
    ``v`` by itself)."""
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Linear(weight=np.random.default_rng(0).uniform(0.2, 1.0, (3, 4))),
            "li": nir.LI(tau=np.full(3, 1e-4), r=np.ones(3), v_leak=np.zeros(3)),  # v = u
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "li"), ("li", "output")],
        type_check=False,
    )
    nir.write(tmp_path / "graded.nir", graph)
    return tmp_path / "graded.nir"


def test_graded_inputs_size_the_current_register_from_the_observed_range(tmp_path):
    # integer payloads up to 100: sized for binary inputs, u wraps and v saturates; sized
    # from the payloads the compile is given, the read-out follows the float one
    path = _graded_readout(tmp_path)
    x = np.random.default_rng(1).integers(0, 101, (2, 20, 4)).astype(np.float64)
    x[0, 0, 0] = 100
    binary = compile_model(path, "sim")
    graded = compile_model(path, "sim", inputs={"input": x})
    assert binary.report["quantization"]["inputs"] == {
        "input": {"max_abs": 1.0, "source": "binary spikes (default)"}
    }
    assert graded.report["quantization"]["inputs"] == {
        "input": {"max_abs": 100.0, "source": "observed in --inputs"}
    }
    ref = simulate(graded.float_net, {"input": x}, fixed=False).outputs["output"]
    errors = []
    for result in (binary, graded):
        v = simulate(result.net, {"input": x}).outputs["output"]
        errors.append(np.max(np.abs(v / result.net.populations["li"].fixed.scale - ref)))
    top = np.max(np.abs(ref))
    assert errors[0] > 0.5 * top  # wrapped and saturated
    assert errors[1] < 0.01 * top  # weight rounding only
    assert "input 'input' |x| <= 100 (observed in --inputs)" in summary(graded.report)


def test_a_declared_input_range_sizes_the_registers_and_bounds_the_data(tmp_path):
    # NIR metadata snn_deploy.input_max on the Input node: sized for it with no data given;
    # data beyond it is refused by name; it survives load -> dump
    from snn_deploy.errors import InputFileError
    from snn_deploy.frontends.nir import INPUT_MAX_KEY, dump

    graph = nir.read(_graded_readout(tmp_path))
    graph.nodes["input"].metadata[INPUT_MAX_KEY] = 100
    nir.write(tmp_path / "declared.nir", graph)
    result = compile_model(tmp_path / "declared.nir", "sim")
    assert result.report["quantization"]["inputs"] == {
        "input": {"max_abs": 100.0, "source": "declared (snn_deploy.input_max)"}
    }
    sized = compile_model(
        _graded_readout(tmp_path), "sim", inputs={"input": np.full((1, 2, 4), 100)}
    )
    assert result.net.populations["li"].fixed.scale == sized.net.populations["li"].fixed.scale
    with pytest.raises(InputFileError, match=r"'input': --inputs holds \|x\| = 101, beyond"):
        compile_model(tmp_path / "declared.nir", "sim", inputs={"input": np.full((1, 2, 4), 101)})
    assert dump(result.graph).nodes["input"].metadata == {INPUT_MAX_KEY: 100.0}


def test_a_second_current_gets_its_own_decay_code_gain_and_register_bound():
    """On Xylo (add-then-decay, dash decays): ``du2`` is the dash of ``alpha2`` (1/32: 5), the
    weights into ``u2`` carry ``alpha2``'s gain ``1/(1 - 2**-5)`` where those into ``u`` carry
    ``alpha``'s ``1/(1 - 2**-2)``, and the current register is sized for the larger current
    (``u2``'s worst case, ``row sum / alpha2``)."""
    xylo = load_target("xylo-audio2").numeric
    pop = Population(
        name="p", node_type="CubaLIF", shape=(1,), alpha=0.25, beta=0.5, bias=0.0,
        threshold=1.0, reset=ResetMode.SUBTRACT, alpha2=1 / 32,
    )  # fmt: skip
    projs = [
        Projection(name=f"x->p.{s}", src="x", dst="p", weight=sp.csr_matrix([[0.5]]), synapse=s)
        for s in (0, 1)
    ]
    net = Net(dt=1e-3, inputs={"x": (1,)}, populations={"p": pop}, projections=projs,
              outputs={"y": "p"})  # fmt: skip
    q = quantize(net, xylo)
    f = q.populations["p"].fixed
    assert f is not None and f.du.tolist() == [2] and f.du2 is not None and f.du2.tolist() == [5]
    (exp,) = {p.fixed.exp for p in q.projections if p.fixed is not None}  # one input matrix
    for p, gain in zip(q.projections, (4 / 3, 32 / 31), strict=True):
        assert p.fixed is not None
        want, _ = xylo.weight.quantize(np.array([0.5 * gain * f.scale / 2**exp]))
        assert p.fixed.codes.toarray().ravel().tolist() == want.tolist()
    u2_bound = 0.5 * 32 / 31 / (1 / 32)  # row sum of the gained weights into u2 over alpha2
    assert f.scale * u2_bound <= xylo.current.max < 2 * f.scale * u2_bound
