"""The Lava backend runs real Lava 0.10.0 processes and equals the simulator bit for bit."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from snn_deploy import api
from snn_deploy.backends import lava
from snn_deploy.backends.lava.build import DENSE_ABOVE
from snn_deploy.backends.lava.program import LavaProgram
from snn_deploy.backends.sim.run import simulate
from snn_deploy.cli.main import cli
from snn_deploy.errors import DesignRuleError
from snn_deploy.frontends.nir import dump, load
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare
from tests.backends.sim.test_against_reference import random_net
from tests.conftest import NIR_FIXTURES, REPO
from tests.graphs import every_node_type, multilevel_chain

pytestmark = pytest.mark.toolchain("lava")
TARGET = api.load_target("loihi-sim")


def uniform(net: Net) -> Net:
    """One (du, dv, vth) per population, as trained layers have (one Lava LIF each)."""
    pops = {}
    for name, p in net.populations.items():
        f = p.fixed
        same = {k: np.full(p.size, getattr(f, k)[0]) for k in ("du", "dv")}
        if f.vth is not None:
            same["vth"] = np.full(p.size, f.vth[0])
        pops[name] = dataclasses.replace(p, fixed=dataclasses.replace(f, **same))
    return net.replace(populations=pops)


def assert_lava_equals_sim(net: Net, x: dict[str, np.ndarray]) -> None:
    got = lava.run(lava.lower(net, TARGET), x, record_state=True)
    want = simulate(net, x, record_state=True)
    for name in net.populations:
        assert_array_equal(got.populations[name], want.populations[name], err_msg=f"{name} output")
        assert_array_equal(got.u[name], want.u[name], err_msg=f"{name} u")
        assert_array_equal(got.v[name], want.v[name], err_msg=f"{name} v")
    for name in net.outputs:
        assert_array_equal(got.outputs[name], want.outputs[name])


CASES = {
    "feed-forward": {"recurrent": False},
    "recurrent": {},
    "delays": {"delay": 4},
    "wrap-and-saturate": {"big": True},
    "non-spiking-readout": {"non_spiking_last": True},
}


TIMING_CASES = {  # reset timings and threshold compares, run by MultiLevelLIF (§1.2)
    "late-subtract": {"reset": ResetMode.SUBTRACT, "timing": ResetTiming.LATE},
    "late-zero": {"timing": ResetTiming.LATE},
    "carry-subtract": {"reset": ResetMode.SUBTRACT, "timing": ResetTiming.CARRY},
    "ge-threshold": {"compare": ThresholdCompare.GE, "big": True},
}


@pytest.mark.parametrize("case", sorted(TIMING_CASES))
def test_reset_timings_and_ge_threshold_bit_exact(case):
    rng = np.random.default_rng(sorted(TIMING_CASES).index(case))
    net = uniform(random_net(rng, **TIMING_CASES[case]))
    x = (rng.random((1, 40, 6)) < 0.4).astype(np.int64)
    assert_lava_equals_sim(net, {"x": x})


@pytest.mark.parametrize("case", sorted(CASES))
def test_random_networks_bit_exact(case):
    rng = np.random.default_rng(sorted(CASES).index(case))
    net = uniform(random_net(rng, **CASES[case]))
    x = (rng.random((1, 40, 6)) < 0.4).astype(np.int64)
    assert_lava_equals_sim(net, {"x": x})


def test_a_voltage_at_its_saturation_bound_neither_spikes_nor_resets():
    """A non-spiking readout driven into saturation: Lava's LIF with the largest threshold
    (vth << 6 = 8,388,544 < 2**23 - 1) spiked and reset it to 0; ``VoltageLIF`` does not."""
    rng = np.random.default_rng(0)
    net = uniform(random_net(rng, non_spiking_last=True, big=True))
    p2 = net.populations["p2"]
    drive = {"dv": 0, "bias_mant": 4000, "bias_exp": 7}  # no leak, a large constant input
    fixed = dataclasses.replace(
        p2.fixed, **{k: np.full(p2.size, v, np.int64) for k, v in drive.items()}
    )
    net = net.replace(populations={**net.populations, "p2": dataclasses.replace(p2, fixed=fixed)})
    x = (rng.random((1, 40, 6)) < 0.4).astype(np.int64)
    assert simulate(net, {"x": x}).populations["p2"].max() == 2**23 - 1
    assert_lava_equals_sim(net, {"x": x})


def test_graded_spikes_bit_exact():
    rng = np.random.default_rng(11)
    net = uniform(random_net(rng, delay=1))
    assert_lava_equals_sim(net, {"x": rng.integers(-9, 10, (1, 30, 6))})


def test_neurons_with_different_decays_split_into_lif_processes():
    rng = np.random.default_rng(5)
    net = random_net(rng, sizes=(4, 3, 2), recurrent=True)
    program = lava.lower(net, TARGET)
    assert len(program.blocks) == 5  # every neuron has its own (du, dv, vth)
    assert_lava_equals_sim(net, {"x": (rng.random((1, 25, 4)) < 0.5).astype(np.int64)})


def profile_groups(net: Net, pop: str) -> list[np.ndarray]:
    """The neurons of ``pop`` sharing (du, dv, vth), which Lava's LIF holds once per process."""
    f = net.populations[pop].fixed
    profiles = np.stack([f.du, f.dv, f.vth], axis=1)
    _, which = np.unique(profiles, axis=0, return_inverse=True)
    return [np.flatnonzero(which.ravel() == k) for k in range(int(which.max()) + 1)]


def partial_floors_differ(net: Net, proj: str, out_src: np.ndarray) -> bool:
    """Whether flooring each source group's partial sum on its own (one Lava synapse per source
    block) gives another input than flooring the projection's total, on a ``[time, src]`` trace."""
    p = next(p for p in net.projections if p.name == proj)
    codes, shift = p.fixed.codes.toarray(), -p.fixed.exp
    total = (out_src @ codes.T) >> shift
    partial = sum((out_src[:, g] @ codes[:, g].T) >> shift for g in profile_groups(net, p.src))
    return bool(np.any(total != partial))


def with_exp(net: Net, exp: int, src: str) -> Net:
    """``net`` with weight exponent ``exp`` on every projection leaving ``src``."""
    return net.replace(
        projections=tuple(
            dataclasses.replace(p, fixed=dataclasses.replace(p.fixed, exp=exp))
            if p.src == src
            else p
            for p in net.projections
        )
    )


SPLIT_SOURCE = {  # case -> (seed, random_net options, the synapse processes it builds)
    "dense": (8, {"sizes": (4, 3, 2)}, {"Dense"}),  # the colleague's reproduction
    "delays": (8, {"sizes": (4, 3, 2), "delay": 2}, {"Dense", "DelayDense"}),
    "many-blocks": (12, {"sizes": (6, 16, 12), "density": 0.3}, {"Sparse"}),  # 1 neuron each
    "multi-level": (8, {"sizes": (4, 3, 2), "levels": 5}, {"Dense"}),  # integer payloads
}


def synapse_kinds(program: LavaProgram) -> set[str]:
    """The Lava classes ``build`` makes of the program's synapses."""
    return {
        ("Delay" if s.delay else "")
        + ("Dense" if s.codes.nnz > DENSE_ABOVE * np.prod(s.codes.shape) else "Sparse")
        for s in program.synapses
    }


@pytest.mark.parametrize("case", sorted(SPLIT_SOURCE))
def test_split_source_is_summed_over_all_its_blocks_before_the_exponent_shift(case):
    seed, options, kinds = SPLIT_SOURCE[case]
    rng = np.random.default_rng(seed)
    net = with_exp(random_net(rng, **options), -3, "p1")
    x = (rng.random((1, 30, net.size_of("x"))) < 0.5).astype(np.int64)
    # the case is meaningful: p1 is split, its projections shift right, and flooring each
    # block's partial sum would give another current than the simulator's floor of the total
    assert len(profile_groups(net, "p1")) >= 2
    assert all(p.fixed.exp < 0 for p in net.projections if p.src == "p1")
    out_p1 = simulate(net, {"x": x}).populations["p1"][0]
    assert partial_floors_differ(net, "w2", out_p1)
    assert partial_floors_differ(net, "rec", out_p1)
    assert synapse_kinds(lava.lower(net, TARGET)) == kinds
    assert_lava_equals_sim(net, {"x": x})


def test_split_destination_alone_was_already_exact():
    """Rows are independent: each destination block gets its neurons' whole sums."""
    rng = np.random.default_rng(8)
    net = random_net(rng, sizes=(4, 3, 2), recurrent=False)
    one_p1 = uniform(net).populations["p1"]
    net = with_exp(net.replace(populations={**net.populations, "p1": one_p1}), -3, "p1")
    x = (rng.random((1, 30, 4)) < 0.5).astype(np.int64)
    assert len(profile_groups(net, "p1")) == 1
    assert len(profile_groups(net, "p2")) == 2
    assert np.count_nonzero(simulate(net, {"x": x}).populations["p1"]) > 0
    assert_lava_equals_sim(net, {"x": x})


def test_a_projection_is_one_synapse_per_destination_block_over_the_whole_source():
    net = random_net(np.random.default_rng(8), sizes=(4, 3, 2))
    program = lava.lower(net, TARGET)
    blocks = {b.name: b for b in program.blocks}
    for b in program.blocks:  # full-size processes; the other blocks' neurons have no bias
        silent = np.setdiff1d(np.arange(b.size), b.neurons)
        assert b.size == net.size_of(b.population)
        assert not b.bias_mant[silent].any()
    # 3 + 2 + 2 + 3 destination blocks, where one synapse per (source, destination) block
    # pair took 3 + 6 + 2 + 9 = 15 (the process counts for this net before and after)
    assert len(program.blocks) == 5
    assert len(program.synapses) == 10
    for proj in net.projections:
        mine = [s for s in program.synapses if s.name.startswith(f"{proj.name}:")]
        assert {s.src for s in mine} == {proj.src}
        assert {blocks[s.dst].population for s in mine} == {proj.dst}
        for s in mine:  # rows of the destination's other blocks are zero
            silent = np.setdiff1d(np.arange(s.codes.shape[0]), blocks[s.dst].neurons)
            assert s.codes[silent].nnz == 0
        assert_array_equal(sum(s.codes for s in mine).toarray(), proj.fixed.codes.toarray())


def test_silent_neurons_of_a_split_population_stay_at_zero_in_lava():
    rng = np.random.default_rng(8)
    net = with_exp(random_net(rng, sizes=(4, 3, 2)), -3, "p1")
    x = (rng.random((30, 4)) < 0.5).astype(np.int64)
    program = lava.lower(net, TARGET)
    lava_net = lava.build(program, {"x": x}, record_state=True)
    try:
        lava_net.run()
        for b in program.blocks:
            silent = np.setdiff1d(np.arange(b.size), b.neurons)
            for var in ("s_out", "u", "v"):
                assert not lava_net.read(b.name, var)[:, silent].any(), (b.name, var)
            assert lava_net.read(b.name, "u")[:, b.neurons].any()
    finally:
        lava_net.stop()


def test_conv_pool_and_multilayer_graph_from_nir():
    """Conv2d, SumPool, AvgPool, Affine, LIF, Scale+Delay, a nested recurrent CubaLIF,
    Threshold and LI readouts, lowered through the real pipeline."""
    _, net = api.lower_and_quantize(load(every_node_type()), TARGET, dt=1e-4)
    x = (np.random.default_rng(2).random((1, 30, 2, 6, 6)) < 0.5).astype(np.int64)
    assert_lava_equals_sim(net, {"input": x})


def test_shipped_braille_model_and_lif_paper_neuron():
    result = api.compile(REPO / "models" / "braille_noDelay_bias_zero.nir", "loihi-sim")
    with np.load(REPO / "models" / "braille_sample_inputs.npz") as z:
        x = z["input"][:1]
    assert_lava_equals_sim(result.net, {"input": x})
    lif = api.compile(NIR_FIXTURES / "lif_norse.nir", "loihi-sim").net
    trace = np.loadtxt(NIR_FIXTURES / "lif_lava_loihi_fixed.csv", delimiter=",")
    out = lava.run(lava.lower(lif, TARGET), {"input": trace[:, :1]}).outputs["output"][0, :, 0]
    assert list(np.flatnonzero(out)) == [461, 511, 711, 761]


def test_voltage_output_feeding_a_synapse_cannot_run_on_loihi():
    rng = np.random.default_rng(0)
    net = random_net(rng, non_spiking_last=True)
    p2 = net.populations["p2"]
    extra = dataclasses.replace(
        net.projections[0],
        name="from-li",
        src="p2",
        dst="p1",
        weight=net.projections[0].weight[:, :4],
        fixed=dataclasses.replace(
            net.projections[0].fixed, codes=net.projections[0].fixed.codes[:, :4]
        ),
    )
    bad = net.replace(projections=(*net.projections, extra))
    assert not p2.spiking
    with pytest.raises(DesignRuleError, match=r"\[spiking-source\] p2 \(CubaLI\)"):
        lava.lower(bad, TARGET)


def test_cli_simulate_runs_lava(tmp_path: Path):
    x = tmp_path / "x.npz"
    np.savez(x, input=np.loadtxt(NIR_FIXTURES / "lif_exact.csv", delimiter=",")[:300, :1])
    out = tmp_path / "s.npz"
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(NIR_FIXTURES / "lif_norse.nir"),
            "--target",
            "loihi-sim",
            "--inputs",
            str(x),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    sim = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(NIR_FIXTURES / "lif_norse.nir"),
            "--inputs",
            str(x),
            "-o",
            str(tmp_path / "t.npz"),
        ],
    )
    assert sim.exit_code == 0
    with np.load(out) as a, np.load(tmp_path / "t.npz") as b:
        assert a.files == b.files == ["input.input", "output.output"]
        assert_array_equal(a["output.output"], b["output.output"])


def test_compile_with_multi_dimensional_inputs_runs_lava(tmp_path: Path):
    """Regression: compile handed the backend inputs already flattened to [batch, time, size]."""
    nir.write(tmp_path / "g.nir", dump(load(every_node_type())))
    x = (np.random.default_rng(3).random((1, 12, 2, 6, 6)) < 0.5).astype(np.int64)
    result = api.compile(tmp_path / "g.nir", "loihi-sim", inputs={"input": x})
    assert result.report["energy"]["counts"]["samples"] == 1


MULTI_LEVEL = {  # case -> (seed, random_net options); every case has 4 spike levels
    "zero-reset": (17, {}),
    "subtract-reset": (17, {"reset": ResetMode.SUBTRACT}),
    "delays": (17, {"delay": 2}),  # DelayDense with integer payloads
    "sparse": (12, {"sizes": (6, 30, 20), "density": 0.08}),  # Sparse with integer payloads
}


@pytest.mark.parametrize("case", sorted(MULTI_LEVEL))
def test_multi_level_spikes_bit_exact(case):
    seed, options = MULTI_LEVEL[case]
    rng = np.random.default_rng(seed)
    net = uniform(random_net(rng, **{"sizes": (6, 8, 5), "levels": 4, **options}))
    x = (rng.random((1, 40, 6)) < 0.5).astype(np.int64)
    # graded spikes really occur in the recurrent population, whose payloads p1 -> p1 and
    # p1 -> p2 carry
    assert np.count_nonzero(simulate(net, {"x": x}).populations["p1"] > 1) > 50
    program = lava.lower(net, TARGET)
    assert all(b.multilevel and b.message_bits == 3 for b in program.blocks)
    assert_lava_equals_sim(net, {"x": x})


def test_multi_level_neurons_split_into_processes_by_profile():
    rng = np.random.default_rng(8)
    net = random_net(rng, sizes=(4, 3, 2), levels=5)
    assert any(p.fixed.exp < 0 for p in net.projections if p.src == "p1")
    x = (rng.random((1, 30, 4)) < 0.5).astype(np.int64)
    assert np.count_nonzero(simulate(net, {"x": x}).populations["p1"] > 1) > 0
    assert len(lava.lower(net, TARGET).blocks) == 5
    assert_lava_equals_sim(net, {"x": x})


def test_binary_subtract_reset_runs_the_multi_level_model_with_one_level():
    rng = np.random.default_rng(3)
    net = uniform(random_net(rng, reset=ResetMode.SUBTRACT))
    program = lava.lower(net, TARGET)
    assert all(b.multilevel and b.message_bits == 0 for b in program.blocks if b.spiking)
    assert_lava_equals_sim(net, {"x": (rng.random((1, 30, 6)) < 0.4).astype(np.int64)})


def test_binary_zero_reset_nets_keep_lavas_own_lif():
    program = lava.lower(uniform(random_net(np.random.default_rng(0))), TARGET)
    assert not any(b.multilevel or b.message_bits for b in program.blocks)


def test_compile_of_a_multi_level_nir_model_runs_lava_bit_exact(tmp_path: Path):
    model = tmp_path / "ml.nir"
    nir.write(model, multilevel_chain(levels=3))
    x = (np.random.default_rng(0).random((2, 30, 4)) < 0.5).astype(np.int64)
    result = api.compile(model, "loihi-sim", inputs={"input": x}, out_dir=tmp_path / "out")
    want = simulate(result.net, {"input": x})
    assert max(int(v.max()) for v in want.populations.values()) == 3
    with np.load(tmp_path / "out" / "vectors.npz") as z:  # what Lava produced
        assert_array_equal(z["output.output"], want.outputs["output"])
    spikes = sum(np.count_nonzero(v) for v in want.populations.values())
    assert result.report["energy"]["counts"]["spikes"] == spikes
    assert load(tmp_path / "out" / "graph.nir").nodes["lif"].levels == 3


def test_lava_runs_after_another_library_fixed_the_start_method():
    """``multiprocessing.get_start_method()`` (torch, numba and others call it) fixes the
    start method; Lava's import-time ``set_start_method('fork')`` then raised "context has
    already been set" (shim 3 of ``backends/lava/compat.py``). In a fresh process."""
    code = (
        "import multiprocessing; multiprocessing.get_start_method()\n"
        "import numpy as np\n"
        "from snn_deploy import api\n"
        "from snn_deploy.backends import lava\n"
        "from tests.backends.sim.test_against_reference import random_net\n"
        "net = random_net(np.random.default_rng(0))\n"
        "x = {'x': np.ones((1, 5, 6), np.int64)}\n"
        "lava.run(lava.lower(net, api.load_target('loihi-sim')), x)\n"
        "print('ran')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ran", done.stderr[-2000:]
