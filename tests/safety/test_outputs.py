"""A user's files are sacred: `compile -o` writes only a new folder or one snn-deploy wrote.

Each case is a defect class found by the reliability audit of issue 17 (every one of them
destroyed or exposed a user's file on the main of that day).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snn_deploy import api
from snn_deploy.cli.main import cli
from snn_deploy.errors import InputFileError
from snn_deploy.outdir import MANIFEST
from snn_deploy.target.load import load_target
from tests.conftest import NIR_FIXTURES, REPO

MODEL = NIR_FIXTURES / "lif_norse.nir"


def compile_to(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["compile", str(MODEL), *map(str, args)])
    return result.exit_code, result.output


def user_folder(path: Path) -> Path:
    path.mkdir()
    (path / "thesis.tex").write_text("years of work")
    return path


def assert_refused(code: int, text: str, *words: str) -> None:
    assert code == 4, text
    assert text.startswith("error: ") and text.count("\n") == 1, text
    assert all(w in text for w in words), text


def test_an_existing_folder_of_the_user_is_refused_and_kept(tmp_path: Path):
    out = user_folder(tmp_path / "out")
    assert_refused(*compile_to("-o", out), "thesis.tex", "--force")
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left


def test_force_replaces_a_folder_of_the_user(tmp_path: Path):
    out = user_folder(tmp_path / "out")
    code, text = compile_to("-o", out, "--force")
    assert code == 0, text
    assert not (out / "thesis.tex").exists() and (out / "report.json").is_file()


def test_our_own_output_is_replaced_but_not_with_a_users_file_in_it(tmp_path: Path):
    out = tmp_path / "out"
    assert compile_to("-o", out)[0] == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) | {MANIFEST} == {p.name for p in out.iterdir()}
    assert compile_to("-o", out)[0] == 0  # a re-compile replaces it
    (out / "notes.txt").write_text("mine")
    assert_refused(*compile_to("-o", out), "notes.txt")
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("spelling", [".", "", "sub/..", "./"])
def test_the_current_directory_is_refused_even_with_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
):
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("keep")
    monkeypatch.chdir(tmp_path)
    code, text = compile_to("-o", spelling, "--force")
    assert code in (2, 4) and text.startswith("error: ") and text.count("\n") == 1, text
    assert (tmp_path / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "sub"]


def test_the_models_own_folder_and_its_ancestors_are_refused_even_with_force(tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    model = models / "m.nir"
    model.write_bytes(MODEL.read_bytes())
    for out in (models, tmp_path):
        result = CliRunner().invoke(cli, ["compile", str(model), "-o", str(out), "--force"])
        assert_refused(result.exit_code, result.output, "which this run reads")
    assert model.read_bytes() == MODEL.read_bytes()


def test_the_inputs_folder_is_refused(tmp_path: Path):
    data = user_folder(tmp_path / "data")
    inputs = REPO / "models" / "braille_sample_inputs.npz"
    (data / "x.npz").write_bytes(inputs.read_bytes())
    model = REPO / "models" / "braille_noDelay_bias_zero.nir"
    args = ["compile", str(model), "--inputs", str(data / "x.npz"), "-o", str(data), "--force"]
    result = CliRunner().invoke(cli, args)
    assert_refused(result.exit_code, result.output, "which this run reads")
    assert (data / "thesis.tex").exists()


def test_a_symbolic_link_is_never_followed(tmp_path: Path):
    real = user_folder(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    assert_refused(*compile_to("-o", tmp_path / "link", "--force"), "symbolic link")
    assert (real / "thesis.tex").exists() and (tmp_path / "link").is_symlink()


def test_a_file_is_refused_before_any_work_and_kept(tmp_path: Path):
    target = tmp_path / "results.csv"
    target.write_text("a,b\n1,2\n")
    assert_refused(*compile_to("-o", target, "--force"), "is a file")
    assert target.read_text() == "a,b\n1,2\n"


def test_a_sibling_old_folder_of_the_user_survives(tmp_path: Path):
    out = tmp_path / "out"
    assert compile_to("-o", out)[0] == 0
    old = user_folder(tmp_path / ".out.old")
    assert compile_to("-o", out)[0] == 0
    assert (old / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.old", "out"]


def test_permissions_are_the_usual_ones_and_a_replaced_folder_keeps_its_own(tmp_path: Path):
    out = tmp_path / "out"
    assert compile_to("-o", out)[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0o700
    assert (out / "report.json").stat().st_mode & 0o777 == 0o666 & ~umask
    out.chmod(0o750)
    assert compile_to("-o", out)[0] == 0
    assert out.stat().st_mode & 0o777 == 0o750


def test_a_failed_compile_removes_the_parent_folders_it_created(tmp_path: Path):
    bad = tmp_path / "bad.nir"
    bad.write_text("junk")
    result = CliRunner().invoke(cli, ["compile", str(bad), "-o", str(tmp_path / "a/b/out")])
    assert result.exit_code == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nir"]


def test_sigterm_while_writing_cleans_up_like_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The signal lands while the artefacts are being written: the temporary folder goes, the
    previous output stays, and the command says so in one line with exit code 130."""
    out = tmp_path / "out"
    assert compile_to("-o", out)[0] == 0
    before = (out / "report.json").read_bytes()

    def killed(report: object) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("SIGTERM did not interrupt the compile")

    monkeypatch.setattr("snn_deploy.api.render_html", killed)
    before_handler = signal.getsignal(signal.SIGTERM)  # e.g. Ray's, if a Ray test ran before
    code, text = compile_to("-o", out)
    assert code == 130 and text == "error: interrupted; nothing was left half-written\n"
    assert (out / "report.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert signal.getsignal(signal.SIGTERM) == before_handler  # the handler is put back


@pytest.mark.toolchain("yosys")
def test_sigterm_stops_the_synthesis_child(tmp_path: Path):
    """A real `snn-deploy compile` for an FPGA board, sent SIGTERM while Yosys runs: Yosys is
    stopped with it and no folder is left behind."""
    model = REPO / "models" / "braille_noDelay_bias_zero.nir"
    code = "from snn_deploy.cli.main import cli; cli()"
    args = [sys.executable, "-c", code, "compile", str(model), "-t", "fpga-artix7-35t"]
    proc = subprocess.Popen(
        [*args, "-o", str(tmp_path / "out")], stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    yosys = _wait_for_child(proc.pid, "yosys", seconds=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted; nothing was left half-written"
    assert not Path(f"/proc/{yosys}").exists() or "zombie" in _status(yosys)
    assert list(tmp_path.iterdir()) == []


def _wait_for_child(parent: int, name: str, *, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in _descendants(parent):
            if name in _cmdline(pid):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no {name} child of {parent} within {seconds} s")


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    direct = [int(c) for c in children.read_text().split()] if children.exists() else []
    return direct + [d for c in direct for d in _descendants(c)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "gone"


def test_report_records_what_the_compile_read_and_compare_lists_what_changed(tmp_path: Path):
    model = tmp_path / "m.nir"
    model.write_bytes(MODEL.read_bytes())
    x = tmp_path / "x.npz"
    np.savez(x, input=np.loadtxt(NIR_FIXTURES / "lif_exact.csv", delimiter=",")[None, :, :1])
    assert compile_to_model(model, "--inputs", x, "-o", tmp_path / "a")[0] == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    sources = report["provenance"]
    assert sources["model"] == {
        "path": "m.nir",
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
    }
    target = REPO / "targets" / "sim.toml"
    assert sources["target"]["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert sources["calibrate"] is None and sources["inputs"]["names"] == ["input"]
    with np.load(x) as z:  # the same arrays from Python hash the same
        inputs = {"input": np.asarray(z["input"], dtype=np.float64)}
    assert api.provenance(model, load_target("sim"), inputs=inputs) == sources

    np.savez(x, input=np.loadtxt(NIR_FIXTURES / "lif_exact.csv", delimiter=",")[None, :, :1] * 0)
    code, text = compile_to_model(model, "--inputs", x, "-o", tmp_path / "b")
    assert code == 0, text
    result = CliRunner().invoke(
        cli, ["report", str(tmp_path / "b"), "--compare", str(tmp_path / "a"), "--json"]
    )
    assert result.exit_code == 0, result.output
    changed = {d["key"] for d in json.loads(result.output)}
    assert "provenance.inputs.arrays_sha256" in changed
    assert "artefacts[vectors.npz].sha256" in changed
    assert not any(k.startswith(("provenance.model", "provenance.target")) for k in changed)
    result = CliRunner().invoke(
        cli, ["report", str(tmp_path / "a"), "--compare", str(tmp_path / "a")]
    )
    assert (
        result.exit_code == 0
        and result.output == f"0 differences between {tmp_path / 'a'} and {tmp_path / 'a'}\n"
    )


def compile_to_model(model: Path, *args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["compile", str(model), *map(str, args)])
    return result.exit_code, result.output


def test_single_output_files_are_new_or_forced_and_never_an_input(tmp_path: Path):
    """`simulate -o` and `convert -o`: an existing file is replaced only with --force (checked
    before any work), a file the run reads never, and a failed write leaves nothing."""
    x = tmp_path / "x.npz"
    np.savez(x, input=np.zeros((1, 5, 1)))
    run = ["simulate", str(MODEL), "--inputs", str(x), "--float"]
    result = CliRunner().invoke(cli, [*run, "-o", str(x), "--force"])
    assert_refused(result.exit_code, result.output, "a file this run reads")
    assert np.load(x)["input"].shape == (1, 5, 1)
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"precious")
    result = CliRunner().invoke(cli, [*run, "-o", str(mine)])
    assert_refused(result.exit_code, result.output, "exists", "--force")
    assert mine.read_bytes() == b"precious"
    result = CliRunner().invoke(cli, [*run, "-o", str(mine), "--force"])
    assert result.exit_code == 0, result.output
    with np.load(mine) as z:
        assert "output.output" in z.files
    onnx = tmp_path / "ann.onnx"
    onnx.write_text("not even a model")  # refused before it is read
    (tmp_path / "ann.nir").write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["convert", str(onnx), "--calibrate", str(x)])
    assert_refused(result.exit_code, result.output, "exists", "--force")
    assert (tmp_path / "ann.nir").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ann.nir",
        "ann.onnx",
        "mine.npz",
        "x.npz",
    ]


def test_a_failed_file_write_leaves_no_temporary_file(tmp_path: Path):
    from snn_deploy.outdir import write_file

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(InputFileError, match="No space left"):
        write_file(tmp_path / "out.npz", fail)
    assert list(tmp_path.iterdir()) == []
