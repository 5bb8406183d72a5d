"""Inputs and time bases on the command line (issue 19 items 3 and 5): ``simulate --align``,
the layout of input arrays (``--time-first``) and suspicious ``--dt``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from numpy.testing import assert_array_equal

from snn_deploy.cli.main import cli


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.toolchain("snntorch")
def test_simulate_align_writes_outputs_in_the_sources_time_base(tmp_path: Path) -> None:
    """A model file: the float run's aligned outputs equal snnTorch's forward for all T steps;
    a compile folder takes the latency from its report.json; network.npz alone is refused."""
    from tests.frontends.test_exporter_conformance import (
        _snntorch_export,
        _snntorch_model,
        _snntorch_run,
        spikes,
    )

    model = _snntorch_model("Leaky", reset_delay=True)
    path = _snntorch_export(model, tmp_path / "m.nir")
    x = spikes(60, 3, 10)
    np.savez(tmp_path / "x.npz", input=np.swapaxes(np.asarray(x), 0, 1))
    read = ("--exporter", "snntorch", "--inputs", tmp_path / "x.npz")
    run = invoke("simulate", path, *read, "--float", "--align", "-o", tmp_path / "f.npz")
    assert run.exit_code == 0, run.output
    expected = np.swapaxes(_snntorch_run(model, x), 0, 1)
    assert_array_equal(np.load(tmp_path / "f.npz")["output.output"], expected)

    out = tmp_path / "out"
    assert invoke("compile", path, *read, "-o", out).exit_code == 0
    plain = np.load(out / "vectors.npz")["output.output"]  # quantized, our time base
    run = invoke(
        "simulate", out, "--inputs", tmp_path / "x.npz", "--align", "-o", tmp_path / "q.npz"
    )
    assert run.exit_code == 0, run.output
    aligned = np.load(tmp_path / "q.npz")["output.output"]
    assert aligned.shape == plain.shape
    assert_array_equal(aligned[:, :-2], plain[:, 2:])

    run = invoke("simulate", out / "network.npz", "--inputs", tmp_path / "x.npz", "--align")
    assert run.exit_code == 2
    assert run.stderr.strip().splitlines() == [
        f"error: --align needs the outputs' latency, which {out / 'network.npz'} does not hold: "
        "give its compile output folder or the model file"
    ]


BRAILLE = Path(__file__).parents[2] / "models" / "braille_noDelay_bias_zero.nir"
BRAILLE_INPUTS = BRAILLE.with_name("braille_sample_inputs.npz")  # [4, 256, 12], batch first


def test_compile_and_simulate_say_how_they_read_the_inputs(tmp_path: Path) -> None:
    line = "inputs: 'input' [4, 256, 12] read as 4 samples x 256 steps x (12,)"
    run = invoke("simulate", BRAILLE, "--inputs", BRAILLE_INPUTS)
    assert run.exit_code == 0
    assert run.stdout.splitlines()[:2] == ["ran on target sim with the sim backend", line]
    run = invoke("simulate", BRAILLE, "--inputs", BRAILLE_INPUTS, "--json")
    assert run.exit_code == 0 and "inputs:" not in run.output  # JSON on stdout, nothing else
    assert json.loads(run.stdout)["backend"] == "sim"
    run = invoke("compile", BRAILLE, "--inputs", BRAILLE_INPUTS, "-o", tmp_path / "out")
    assert run.exit_code == 0
    assert line in run.stdout.splitlines()


def test_time_first_inputs_are_transposed(tmp_path: Path) -> None:
    """``--time-first`` reads ``[time, batch, *shape]``: the same run as the batch-first file."""
    x = np.load(BRAILLE_INPUTS)["input"]
    np.savez(tmp_path / "t.npz", input=np.swapaxes(x, 0, 1))
    runs = []
    for name, given in (("b", BRAILLE_INPUTS), ("t", tmp_path / "t.npz")):
        flags = ("--time-first",) if name == "t" else ()
        run = invoke(
            "simulate", BRAILLE, "--inputs", given, *flags, "-o", tmp_path / f"{name}r.npz"
        )
        assert run.exit_code == 0
        runs.append(np.load(tmp_path / f"{name}r.npz"))
    assert (
        "inputs: 'input' [256, 4, 12] read as 4 samples x 256 steps x (12,) (--time-first)"
        in run.stdout.splitlines()
    )
    assert_array_equal(runs[1]["output.output"], runs[0]["output.output"])
    assert_array_equal(runs[1]["input.input"], x)


def _whole_clip_model(tmp_path: Path) -> Path:
    """Input ``x`` of shape (5,) into a whole-clip attention over 7 steps."""
    import nir

    from snn_deploy.frontends import nir as nir_frontend
    from tests.backends.sim.test_products import product_graph

    case = {"dim": 4, "heads": 2, "levels": 1, "decay": (0, 0), "causal": False, "steps": 7}
    nir.write(
        tmp_path / "m.nir", nir_frontend.dump(product_graph(np.random.default_rng(1), **case))
    )
    return tmp_path / "m.nir"


@pytest.mark.parametrize(
    ("shape", "flags", "read"),
    [
        ((3, 7, 5), (), "3 samples x 7 steps"),
        ((7, 3, 5), ("--time-first",), "3 samples x 7 steps"),
        ((7, 7, 5), (), "7 samples x 7 steps"),  # square: both readings fit, read batch first
        ((2, 20, 5), (), "2 samples x 20 steps"),
        ((20, 9, 5), (), "20 samples x 9 steps"),  # both readings have the 7 steps
    ],
)
def test_layouts_that_fit_the_clip_are_read(tmp_path: Path, shape, flags, read) -> None:
    np.savez(tmp_path / "x.npz", x=np.ones(shape))
    run = invoke("simulate", _whole_clip_model(tmp_path), "--inputs", tmp_path / "x.npz", *flags)
    assert run.exit_code == 0, run.output
    assert f"inputs: 'x' {list(shape)} read as {read} x (5,)" in run.stdout


@pytest.mark.parametrize(
    ("shape", "flags", "fix"), [((7, 3, 5), (), "pass"), ((3, 7, 5), ("--time-first",), "drop")]
)
def test_a_reading_too_short_for_the_clip_is_refused_with_the_fix(
    tmp_path: Path, shape, flags, fix
) -> None:
    """Read one way, the array has fewer steps than the whole-clip attention reads (7); read
    the other way, it has them: refused (exit 4), naming the array, its shape and the fix."""
    np.savez(tmp_path / "x.npz", x=np.ones(shape))
    run = invoke("simulate", _whole_clip_model(tmp_path), "--inputs", tmp_path / "x.npz", *flags)
    assert run.exit_code == 4
    assert [e for e in run.stderr.splitlines() if not e.startswith("warning:")] == [
        f"error: inputs array 'x' {list(shape)}: read as 7 samples x 3 steps, fewer than the 7 "
        f"steps of the clip its whole-clip attention reads; if it is the other way round, {fix} "
        "--time-first, else give [batch, time, ...] with more steps"
    ]


def test_a_dt_that_rounds_every_decay_away_is_warned_once_per_cause() -> None:
    run = invoke("simulate", BRAILLE, "--inputs", BRAILLE_INPUTS, "--dt", "1e-9")
    assert run.exit_code == 0
    warned = [w for w in run.stderr.splitlines() if "per-step decay" in w]
    assert warned == [
        "warning: quantize: at dt=1e-09 s the per-step decay rounds to 0 (no decay) in every "
        "neuron of 'lif1.lif' (v: tau_mem 0.001 s, dt/tau_mem 1e-06), 'lif2' (v: tau_mem "
        "0.000222222 s, dt/tau_mem 4.5e-06), in 12-bit decay codes; is --dt right?"
    ]
    run = invoke("simulate", BRAILLE, "--inputs", BRAILLE_INPUTS)
    assert run.exit_code == 0 and "per-step decay" not in run.stderr
