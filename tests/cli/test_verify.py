"""``snn-deploy verify`` and ``simulate --expect``: compiled folders replay their vectors bit for
bit on sim, Lava and the RTL, and one flipped spike fails with exit 6 and the first mismatch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from snn_deploy.errors import MismatchError, UsageError
from snn_deploy.testing import assert_deployment_matches
from tests.cli.test_cli import BRAILLE, INPUTS, invoke

FIRST = "first at sample 1, step 7, neuron 3"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Braille samples of 60 steps: seconds on every backend."""
    path = tmp_path_factory.mktemp("inputs") / "x.npz"
    with np.load(INPUTS) as z:
        np.savez(path, input=z["input"][:2, :60])
    return path


def compiled(tmp_path_factory: pytest.TempPathFactory, inputs: Path, target: str, *extra: str):
    out = tmp_path_factory.mktemp(target) / "out"
    code, text = invoke("compile", BRAILLE, "-t", target, "-o", out, "--inputs", inputs, *extra)
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def sim_out(tmp_path_factory: pytest.TempPathFactory, inputs: Path) -> Path:
    return compiled(tmp_path_factory, inputs, "sim", "--record-state")


@pytest.fixture(scope="module")
def fpga_out(tmp_path_factory: pytest.TempPathFactory, inputs: Path) -> Path:
    with pytest.MonkeyPatch.context() as mp:  # no Yosys synthesis: tests/backends/fpga covers it
        mp.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
        return compiled(tmp_path_factory, inputs, "fpga-ice40up5k")


def tampered(folder: Path, tmp_path: Path, key: str = "output.output") -> Path:
    """A copy of ``folder`` whose vectors differ from the program's in one slot."""
    copy = tmp_path / folder.parent.name
    shutil.copytree(folder, copy)
    with np.load(copy / "vectors.npz") as z:
        arrays = dict(z)
    arrays[key] = arrays[key].copy()
    arrays[key][1, 7, 3] = 1 - arrays[key][1, 7, 3]
    np.savez(copy / "vectors.npz", **arrays)
    return copy


def test_verify_passes_on_sim_with_state(sim_out: Path):
    code, text = invoke("verify", sim_out)
    assert code == 0, text
    for key in ("output.output", "u.lif1.lif", "u.lif2", "v.lif1.lif", "v.lif2"):
        assert f"{key}: equal" in text
    assert "output.output: equal (840 values)" in text


def test_one_flipped_spike_fails_with_the_first_mismatch(sim_out: Path, tmp_path: Path):
    bad = tampered(sim_out, tmp_path)
    junit = tmp_path / "verify.xml"
    code, text = invoke("verify", bad, "--junit", junit)
    assert code == MismatchError.exit_code == 6
    assert f"output.output: 1 of 840 values differ; {FIRST}: expected" in text
    assert "u.lif2: equal" in text
    assert text.count("error:") == 1 and "1 of 5 arrays differ" in text
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["output.output"]
    assert FIRST in failed[0].find("failure").get("message")

    code, text = invoke("verify", bad, "--json")
    result = json.loads(text[: text.index("error:")])
    assert code == 6 and not result["passed"]
    assert result["checks"][0]["first"] == {
        "sample": 1,
        "step": 7,
        "neuron": 3,
        "expected": result["checks"][0]["first"]["expected"],
        "got": 1 - result["checks"][0]["first"]["expected"],
    }


def test_a_changed_state_value_fails(sim_out: Path, tmp_path: Path):
    code, text = invoke("verify", tampered(sim_out, tmp_path, key="v.lif2"))
    assert code == 6 and f"v.lif2: 1 of 840 values differ; {FIRST}" in text


def test_the_pytest_helper(sim_out: Path, tmp_path: Path):
    assert_deployment_matches(sim_out)
    with pytest.raises(AssertionError, match=f"output.output: 1 of 840 values differ; {FIRST}"):
        assert_deployment_matches(tampered(sim_out, tmp_path), target="sim")


@pytest.mark.toolchain("lava")
def test_verify_in_lava(tmp_path_factory: pytest.TempPathFactory, inputs: Path, tmp_path: Path):
    out = compiled(tmp_path_factory, inputs, "loihi-sim")
    code, text = invoke("verify", out)
    assert code == 0 and "on loihi-sim: all 1 arrays equal" in text, text
    code, text = invoke("verify", tampered(out, tmp_path), "--target", "loihi-sim")
    assert code == 6 and FIRST in text


@pytest.mark.toolchain("iverilog")
def test_verify_an_fpga_folder_in_icarus(fpga_out: Path, tmp_path: Path):
    code, text = invoke("verify", fpga_out)
    assert code == 0 and "on rtl: all 1 arrays equal" in text, text
    assert invoke("verify", fpga_out, "--target", "sim")[0] == 0  # network.npz is the spec
    code, text = invoke("verify", tampered(fpga_out, tmp_path))
    assert code == 6 and FIRST in text and "on rtl" in text


@pytest.mark.toolchain("iverilog")
def test_rtl_verify_simulates_the_folders_own_design(fpga_out: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(fpga_out, broken)
    weights = broken / "core1_weights.mem"
    weights.write_text("".join("0" * (len(w) - 1) + "\n" for w in weights.read_text().splitlines()))
    code, text = invoke("verify", broken)
    assert code == 6 and "output.output:" in text and "values differ" in text
    assert invoke("verify", broken, "--target", "sim")[0] == 0


def test_rtl_needs_an_fpga_folder(sim_out: Path):
    code, text = invoke("verify", sim_out, "--target", "rtl")
    assert code == UsageError.exit_code
    assert (
        text
        == f"error: --target rtl needs a folder compiled for an fpga target; {sim_out} is for sim\n"
    )


def test_verify_needs_vectors(tmp_path: Path):
    assert invoke("compile", BRAILLE, "-o", tmp_path / "out")[0] == 0
    code, text = invoke("verify", tmp_path / "out")
    assert code == 4 and "has no vectors.npz: compile with --inputs" in text
    code, text = invoke("compile", BRAILLE, "-o", tmp_path / "o2", "--record-state")
    assert code == 2 and "--record-state records the run on --inputs" in text


def test_simulate_reads_vectors_and_writes_them(sim_out: Path, tmp_path: Path):
    vectors = sim_out / "vectors.npz"
    out = tmp_path / "run.npz"
    code, text = invoke("simulate", sim_out, "--inputs", vectors, "-o", out, "--expect", vectors)
    assert code == 0, text
    assert text.splitlines()[0] == "ran on target sim with the sim backend"
    assert "output.output: equal" in text and "u.lif2: equal" in text
    with np.load(out) as got, np.load(vectors) as want:
        assert sorted(got.files) == sorted(want.files)  # --expect has u, v: they are recorded
        np.testing.assert_array_equal(got["output.output"], want["output.output"])
    # what simulate -o wrote is a vectors file too
    assert (
        invoke("simulate", sim_out, "--inputs", out, "--expect", out, "-o", tmp_path / "b.npz")[0]
        == 0
    )


def test_simulate_expect_fails_on_a_mismatch(sim_out: Path, tmp_path: Path):
    bad = tampered(sim_out, tmp_path) / "vectors.npz"
    code, text = invoke("simulate", sim_out, "--inputs", bad, "--expect", bad, "--json")
    assert code == 6 and text.count("error:") == 1 and FIRST in text
    result = json.loads(text[: text.index("error:")])
    assert result["backend"] == "sim" and result["populations"]["lif2"]["neurons"] == 7
    assert result["expect"]["checks"][0]["mismatches"] == 1
    code, text = invoke("simulate", sim_out, "--inputs", bad, "--expect", INPUTS)
    assert code == 4 and "is not a vectors file" in text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--dt", "1e-3"), "--dt would be ignored"),
        (("--reset", "subtract"), "--reset would be ignored"),
        (("--trust-pickle",), "--trust-pickle would be ignored"),
        (("-o", "spikes"), "-o spikes: give a file name ending in .npz"),
        (("-o", "."), "-o .: give a file name ending in .npz"),
    ],
)
def test_simulate_refuses_options_it_would_ignore(sim_out: Path, option, message):
    code, text = invoke("simulate", sim_out, "--inputs", sim_out / "vectors.npz", *option)
    assert code == UsageError.exit_code and text == f"error: {text[7:]}" and message in text
    assert text.count("\n") == 1


def test_simulate_never_replaces_a_file_unless_forced(sim_out: Path, tmp_path: Path):
    out = tmp_path / "mine.npz"
    out.write_bytes(b"precious")
    code, text = invoke("simulate", sim_out, "--inputs", sim_out / "vectors.npz", "-o", out)
    assert code == 4 and "exists; pass --force" in text and out.read_bytes() == b"precious"
    args = ("simulate", sim_out, "--inputs", sim_out / "vectors.npz", "-o", out, "--force")
    assert invoke(*args)[0] == 0
    with np.load(out) as z:
        assert "output.output" in z.files
