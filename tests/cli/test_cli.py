"""The CLI: every command, atomic output, and one-line errors with exit code 2."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import nir
import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_array_equal

from snn_deploy.cli.main import cli
from tests.conftest import NIR_FIXTURES, REPO
from tests.graphs import multilevel_chain

BRAILLE = REPO / "models" / "braille_noDelay_bias_zero.nir"
INPUTS = REPO / "models" / "braille_sample_inputs.npz"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_targets_lists_all():
    code, out = invoke("targets")
    assert code == 0 and all(t in out for t in ("sim", "loihi-sim", "loihi2", "loihi1"))


def test_inspect_prints_nodes_and_shapes():
    code, out = invoke("inspect", BRAILLE)
    assert code == 0 and "lif1.lif" in out and "CubaLIF" in out and "reset:" in out


@pytest.mark.toolchain("lava")
def test_compile_writes_all_artefacts_and_report(tmp_path: Path):
    """For a Loihi target with --inputs the program runs in Lava."""
    out = tmp_path / "out"
    code, text = invoke("compile", BRAILLE, "--target", "loihi2", "-o", out, "--inputs", INPUTS)
    assert code == 0, text
    assert "Energy per inference" in text and "cores >= 1" in text
    assert "borrowed: synop_pj 23.6 pJ: Loihi 1 figure, none published for loihi2" in text
    assert {p.name for p in out.iterdir()} == {
        "placement.json",
        "network.npz",
        "graph.nir",
        "vectors.npz",
        "report.json",
        "report.html",
        "manifest.json",
    }
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "snn-deploy-report/1" and report["target"] == "loihi2"
    assert report["resources"]["neurons"] == 45
    assert report["energy"]["counts"]["samples"] == 4
    assert report["energy"]["figures"]["synop_pj"]["basis"] == "loihi1"
    assert "Borrowed figures" in (out / "report.html").read_text()
    assert {a["path"] for a in report["artefacts"]} == {
        "network.npz",
        "graph.nir",
        "vectors.npz",
        "placement.json",
    }
    assert report["placement"]["cores_used"] == 1
    assert json.loads((out / "placement.json").read_text())["ranges"][0]["core"] == 0
    # the emitted program re-runs bit-exactly from the folder alone
    code, _ = invoke("simulate", out, "--inputs", INPUTS, "-o", tmp_path / "spikes.npz")
    assert code == 0
    with np.load(out / "vectors.npz") as v, np.load(tmp_path / "spikes.npz") as s:
        assert_array_equal(v["output.output"], s["output.output"])
    code, text = invoke("report", out)
    assert code == 0 and "lif1.lif" in text


def test_compile_is_deterministic(tmp_path: Path):
    for d in ("a", "b"):
        assert invoke("compile", BRAILLE, "-o", tmp_path / d, "--inputs", INPUTS)[0] == 0
    for name in ("network.npz", "report.json", "vectors.npz", "placement.json", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_simulate_float_and_fixed(tmp_path: Path):
    x = tmp_path / "x.npz"
    np.savez(x, input=np.loadtxt(NIR_FIXTURES / "lif_exact.csv", delimiter=",")[:, :1])
    code, out = invoke("simulate", NIR_FIXTURES / "lif_norse.nir", "--inputs", x, "--float")
    assert code == 0 and " 4" in out.splitlines()[-1]


def test_check_reports_every_violation(tmp_path: Path):
    code, out = invoke("check", BRAILLE, "--target", "loihi1", "--reset", "subtract")
    assert code == 5
    assert out.count("[reset-mode]") == 2 and "lif1.lif" in out and "lif2" in out
    code, out = invoke("check", BRAILLE, "--target", "loihi1")
    assert code == 0 and "no design-rule violations" in out


def _tiny_fpga(tmp_path: Path, bram_blocks: int) -> Path:
    """The iCE40 target with only ``bram_blocks`` block RAMs, as a user's own target file."""
    (tmp_path / "formats").mkdir(parents=True)
    shutil.copy(REPO / "targets/formats/lava_fixed_pt.toml", tmp_path / "formats")
    text = (REPO / "targets/fpga_ice40up5k.toml").read_text()
    text = text.replace('"fpga-ice40up5k"', '"tiny-fpga"', 1)
    text = re.sub(
        r"(?m)^bram_blocks = \{ value = \d+", f"bram_blocks = {{ value = {bram_blocks}", text
    )
    (tmp_path / "tiny.toml").write_text(text)
    return tmp_path / "tiny.toml"


def test_check_runs_the_fpga_board_rules_as_compile_does(tmp_path: Path):
    """Braille's cores need 16 block RAMs (the estimate); a board of 8 refuses it in
    ``check`` with compile's exit code and lines, and neither writes anything."""
    target = _tiny_fpga(tmp_path, bram_blocks=8)
    before = sorted(tmp_path.rglob("*"))
    code, compiled = invoke("compile", BRAILLE, "--target", target, "-o", tmp_path / "out")
    assert code == 5
    code, checked = invoke("check", BRAILLE, "--target", target)
    assert code == 5 and checked == compiled
    assert checked.splitlines()[-2:] == [  # after the loader's warning
        "error: 1 design-rule violation(s) for target 'tiny-fpga':",
        "  [fpga-bram-blocks] (network): bram_blocks (estimate) is 16, limit 8; fix: use a "
        "larger board, fewer neurons or synapses, or prune the network",
    ]
    code, text = invoke("check", BRAILLE, "--target", target, "--json")
    (violation,) = json.loads(text[text.index("{") : text.rindex("}") + 1])["violations"]
    assert code == 5 and violation["rule"] == "fpga-bram-blocks" and violation["used"] == 16
    assert sorted(tmp_path.rglob("*")) == before
    code, text = invoke("check", BRAILLE, "--target", _tiny_fpga(tmp_path / "big", 16))
    assert code == 0 and "no design-rule violations for target tiny-fpga" in text


@pytest.mark.toolchain("iverilog")
def test_fpga_runs_report_progress_per_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``compile``, ``simulate`` and ``verify`` on an fpga target hand Icarus' per-sample
    reports to their progress line, as for Lava; ``evaluate --target rtl`` to its own,
    within a shard too."""
    from snn_deploy.cli import main

    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(main._Progress, "__call__", lambda s, d, t: calls.append((s.label, d, t)))
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
    with np.load(INPUTS) as z:
        np.savez(tmp_path / "x.npz", input=z["input"][:3, :20])
    out, x = tmp_path / "fpga", tmp_path / "x.npz"
    per_sample = [(1, 3), (2, 3), (3, 3)]
    code, text = invoke("compile", BRAILLE, "-t", "fpga-ice40up5k", "-o", out, "--inputs", x)
    assert code == 0, text
    assert calls == [("simulating", *c) for c in per_sample]
    calls.clear()
    code, text = invoke("simulate", out, "-t", "fpga-ice40up5k", "--inputs", x)
    assert code == 0 and calls == [("simulating", *c) for c in per_sample], text
    calls.clear()
    code, text = invoke("verify", out)
    assert code == 0 and calls == [("verifying", *c) for c in per_sample], text
    calls.clear()
    code, text = invoke("evaluate", out, "--inputs", x, "-t", "rtl", "-o", tmp_path / "e")
    assert code == 0, text
    assert calls == [("evaluate", 0, 3), *(("evaluate", *c) for c in per_sample)]


def _nir_bytes_with(tmp_path: Path, mutate) -> Path:
    g = nir.read(NIR_FIXTURES / "lif_norse.nir")
    mutate(g)
    path = tmp_path / "bad.nir"
    nir.write(path, g)
    return path


BAD = {
    "not-hdf5": lambda p: (p / "m.nir").write_text("not a model") or p / "m.nir",
    "truncated": lambda p: (
        (p / "t.nir").write_bytes((NIR_FIXTURES / "cnn_sinabs.nir").read_bytes()[:3000])
        or p / "t.nir"
    ),
    "dangling-edge": lambda p: _nir_bytes_with(p, lambda g: g.edges.append(("1", "nowhere"))),
    "nan": lambda p: _nir_bytes_with(p, lambda g: g.nodes["1"].v_threshold.__setitem__(0, np.nan)),
    "zero-tau": lambda p: _nir_bytes_with(p, lambda g: g.nodes["1"].tau.__setitem__(0, 0.0)),
    "shape": lambda p: _nir_bytes_with(
        p, lambda g: g.nodes.__setitem__("0", nir.Affine(weight=np.ones((2, 1)), bias=np.zeros(2)))
    ),
    "wrong-suffix": lambda p: (p / "m.onnx").write_text("x") or p / "m.onnx",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_model_gives_one_error_line_and_no_output(case, tmp_path: Path):
    model = BAD[case](tmp_path)
    out_dir = tmp_path / "out"
    code, text = invoke("compile", model, "-o", out_dir)
    assert code == 4
    assert text.count("\n") == 1 and text.startswith("error: "), text
    assert "Traceback" not in text
    assert not out_dir.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_failed_compile_keeps_the_previous_output(tmp_path: Path):
    out = tmp_path / "out"
    assert invoke("compile", NIR_FIXTURES / "lif_norse.nir", "-o", out)[0] == 0
    before = (out / "report.json").read_bytes()
    bad = tmp_path / "bad.nir"
    bad.write_text("junk")
    assert invoke("compile", bad, "-o", out)[0] == 4
    assert (out / "report.json").read_bytes() == before


def test_unwritable_output_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, text = invoke("compile", NIR_FIXTURES / "lif_norse.nir", "-o", blocker / "out")
    assert code == 4 and text.startswith("error: cannot write")


def test_debug_shows_the_traceback(tmp_path: Path):
    bad = tmp_path / "bad.nir"
    bad.write_text("junk")
    result = CliRunner().invoke(cli, ["--debug", "compile", str(bad)])
    assert result.exception is not None and not isinstance(result.exception, SystemExit)


def test_bad_inputs_are_named(tmp_path: Path):
    x = tmp_path / "x.npz"
    np.savez(x, input=np.ones((10, 5)))
    code, text = invoke("compile", BRAILLE, "-o", tmp_path / "o", "--inputs", x)
    assert code == 4 and "input 'input' has shape [10, 5]" in text
    shutil.rmtree(tmp_path / "o", ignore_errors=True)


def test_disk_full_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def full(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    code, text = invoke("compile", NIR_FIXTURES / "lif_norse.nir", "-o", tmp_path / "out")
    assert code == 4
    assert text == f"error: cannot write {tmp_path / 'out'}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


def test_compile_reports_each_pass_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    code, text = invoke("compile", BRAILLE, "-o", tmp_path / "a", "--inputs", INPUTS)
    assert code == 0 and "done (" not in text and "simulating" not in text  # a quick run's log
    monkeypatch.setattr("snn_deploy.cli.main._interactive", lambda: True)
    code, text = invoke("compile", BRAILLE, "-o", tmp_path / "b")
    lines = [ln for ln in text.splitlines() if " done (" in ln]
    assert code == 0 and [ln.split()[0] for ln in lines] == ["lower", "quantize", "map"]


def test_a_slow_run_logs_sparse_plain_progress_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # stderr into a log (not a terminal), every run slow enough to report: the passes and a
    # line per tenth of the simulation, no carriage return or bar
    monkeypatch.setattr("snn_deploy.cli.main._LOG_EVERY_S", 0.0)
    args = ["compile", str(BRAILLE), "-o", str(tmp_path / "o"), "--inputs", str(INPUTS)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    log = result.stderr
    assert "\r" not in log and "#" not in log
    passes = [ln.split()[0] for ln in log.splitlines() if " done (" in ln]
    assert passes == ["lower", "quantize", "map"]
    lines = [ln for ln in log.splitlines() if ln.startswith("simulating: ")]
    assert 1 <= len(lines) <= 10 and re.fullmatch(
        r"simulating: (\d+)/\1 \(100\.0 %\), [\d.]+/s, ETA 0 s", lines[-1]
    )


def test_check_rejects_multi_level_spikes_on_a_binary_target(tmp_path: Path):
    model = tmp_path / "ml.nir"
    nir.write(model, multilevel_chain())
    code, out = invoke("check", model, "--target", "loihi1")
    assert code == 5 and out.count("[spike-payload]") == 2 and "limit 0" in out
    code, out = invoke("check", model, "--target", "loihi2")
    assert code == 0 and "no design-rule violations" in out


def test_compile_with_calibrate_reports_compensated_rounding(tmp_path: Path):
    """``--calibrate`` with the shipped training clips (extra arrays in the file are ignored):
    the dense projections round with error compensation, in the table and in report.json."""
    out = tmp_path / "out"
    model, cal = (
        REPO / "models" / "kws_rnn_ml3_t100.pt",
        REPO / "models" / "kws_calibrate_inputs.npz",
    )
    code, text = invoke("compile", model, "--target", "sim", "--calibrate", cal, "-o", out)
    assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    rounding = {p["name"]: p["rounding"] for p in report["quantization"]["projections"]}
    assert rounding == {"w_in": "compensated", "w_rec": "compensated", "w_out": "compensated"}
    assert "compensated" in text


def test_simulate_a_model_sizes_for_its_graded_inputs_like_compile(tmp_path: Path):
    # integer payloads up to 100: simulate MODEL --inputs quantizes for them as compile
    # --inputs does (sized for binary inputs, u would wrap), so both runs are equal
    from tests.passes.test_quantize import _graded_readout

    model, x = _graded_readout(tmp_path), tmp_path / "x.npz"
    np.savez(x, input=np.random.default_rng(1).integers(0, 101, (2, 20, 4)).astype(np.float64))
    assert invoke("compile", model, "--inputs", x, "-o", tmp_path / "out")[0] == 0
    runs = [tmp_path / "direct.npz", tmp_path / "compiled.npz"]
    assert invoke("simulate", model, "--inputs", x, "-o", runs[0])[0] == 0
    assert invoke("simulate", tmp_path / "out", "--inputs", x, "-o", runs[1])[0] == 0
    direct, compiled = (np.load(r) for r in runs)
    assert_array_equal(direct["output.output"], compiled["output.output"])
    assert (
        "input 'input' |x| <= 100 (observed in --inputs)" in invoke("report", tmp_path / "out")[1]
    )


def test_progress_is_one_line_rewritten_on_a_terminal_and_sparse_in_a_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from snn_deploy.cli import main

    def run(interactive: bool, reports: list[tuple[float, int]]) -> str:
        """``_Progress`` made at time 0, then reports ``(time, done)`` of 100 samples."""
        clock = iter([0.0] + [t for t, _ in reports])
        monkeypatch.setattr(main, "_interactive", lambda: interactive)
        monkeypatch.setattr(main.time, "perf_counter", lambda: next(clock))
        progress = main._Progress("evaluate", "samples")
        for _, done in reports:
            progress(done, 100)
        monkeypatch.undo()
        return capsys.readouterr().err

    # a terminal: the first report (resumed work) sets the start; each later one is written
    # over the last, padded over a longer one; the end line ends with a newline
    text = run(True, [(1.0, 10), (101.0, 11), (102.0, 100)])
    first = "evaluate: 11/100 samples (11.0 %), 0.0 samples/s, ETA 148.3 min"
    last = "evaluate: 100/100 samples (100.0 %), 0.9 samples/s, ETA 0 s"
    assert text == f"\r{first}\r{last.ljust(len(first))}\n"
    # a log: nothing in the first 5 s; then a line per further tenth, at most every 5 s; the end
    text = run(False, [(1.0, 0), (2.0, 5), (6.0, 20), (7.0, 25), (9.0, 40), (10.0, 100)])
    assert [ln.split(" (")[0] for ln in text.splitlines()] == [
        "evaluate: 20/100 samples",
        "evaluate: 100/100 samples",
    ]
