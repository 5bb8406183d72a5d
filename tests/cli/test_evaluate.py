"""``snn-deploy evaluate``: shards, resumption, worker-count invariance, layouts, errors.

The figures are checked against ``compile --inputs`` on the same samples (its report's
agreement and energy), and the JSON must be byte-identical for one process and two workers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from snn_deploy.errors import InputFileError, MismatchError, UsageError
from tests.cli.test_cli import BRAILLE, INPUTS, invoke

SAMPLES, STEPS = 10, 80


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten Braille-like samples of 80 steps with labels, as three .npz shards (4, 4, 2)."""
    folder = tmp_path_factory.mktemp("data") / "set"
    folder.mkdir()
    with np.load(INPUTS) as z:
        x = z["input"]
        x = np.concatenate([x[:, :STEPS], x[:, ::-1][:, :STEPS], x[:2, 40 : 40 + STEPS]])
    y = np.random.default_rng(0).integers(0, 7, SAMPLES)
    for i, (a, b) in enumerate(((0, 4), (4, 8), (8, 10))):
        np.savez(folder / f"part{i}.npz", input=x[a:b], labels=y[a:b])
    np.savez(folder.parent / "all.npz", input=x, labels=y)
    return folder


@pytest.fixture(scope="module")
def sim_out(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    out = tmp_path_factory.mktemp("sim") / "out"
    code, text = invoke("compile", BRAILLE, "-o", out, "--inputs", data.parent / "all.npz")
    assert code == 0, text
    return out


def evaluate(out: Path, data: Path, results: Path, *extra: object) -> dict:
    code, text = invoke("evaluate", out, "--inputs", data, "-o", results, "--json", *extra)
    assert code == 0, text
    assert json.loads((results / "evaluation.json").read_text()) == json.loads(
        text[text.index("{") : text.rindex("}") + 1]
    )
    return json.loads((results / "evaluation.json").read_text())


def test_figures_equal_the_compile_report_on_the_same_samples(
    sim_out: Path, data: Path, tmp_path: Path
):
    result = evaluate(sim_out, data, tmp_path / "r", "--labels", "labels", "--shard-size", "3")
    report = json.loads((sim_out / "report.json").read_text())
    assert result["samples"] == SAMPLES and result["shards"] == 5  # 3 + 1, 3 + 1, 2
    assert result["energy"] == report["energy"]
    paper, expected = result["paper_energy"], report["paper_energy"]
    by_name = lambda layers: sorted(layers, key=lambda r: r["projection"])  # noqa: E731
    assert by_name(paper.pop("layers")) == by_name(expected.pop("layers"))  # in name order
    numbers = {k for k, v in expected.items() if isinstance(v, float)}
    assert {k: paper.pop(k) for k in numbers} == pytest.approx(
        {k: expected.pop(k) for k in numbers}, rel=1e-12
    )  # sums in that order
    assert paper == expected
    assert result["agreement"]["outputs"] == report["agreement"]["outputs"]
    for name, pop in report["agreement"]["populations"].items():
        got = result["agreement"]["populations"][name]
        assert got.pop("spike_count_correlation") == pytest.approx(
            pop.pop("spike_count_correlation"), rel=1e-12
        )
        assert got == pop
    acc = result["accuracy"]["output"]
    assert 0 <= acc["quantized"] <= 1 and 0 <= acc["float"] <= 1


def test_json_is_byte_identical_for_two_workers_and_after_resuming(
    sim_out: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("snn_deploy.cli.main._LOG_EVERY_S", 0.0)  # every run logs its end
    one, two = tmp_path / "one", tmp_path / "two"
    evaluate(sim_out, data, one, "--shard-size", "2", "--labels", "labels")
    code, text = invoke(
        "evaluate", sim_out, "--inputs", data, "-o", two, "--shard-size", "2",
        "--labels", "labels", "--workers", "2", "--json",
    )  # fmt: skip
    assert code == 0, text
    assert "evaluate: 10/10 samples (100.0 %)" in text  # the log line of a non-terminal
    assert (one / "evaluation.json").read_bytes() == (two / "evaluation.json").read_bytes()
    # an interrupted run: two shard results lost; the rerun computes only those
    for f in ("000001.json", "000004.json"):
        (two / "shards" / f).unlink()
    (two / "evaluation.json").unlink()
    stamp = (two / "shards" / "000000.json").stat().st_mtime_ns
    evaluate(sim_out, data, two, "--shard-size", "2", "--labels", "labels")
    assert (two / "shards" / "000000.json").stat().st_mtime_ns == stamp  # not redone
    assert (one / "evaluation.json").read_bytes() == (two / "evaluation.json").read_bytes()
    manifest = json.loads((two / "manifest.json").read_text())["files"]
    assert sorted(manifest) == sorted(
        ["run.json", "evaluation.json", *(f"shards/{i:06d}.json" for i in range(5))]
    )


def test_memory_mapped_npy_folder_gives_the_same_figures(sim_out: Path, data: Path, tmp_path: Path):
    npy = tmp_path / "npy"
    npy.mkdir()
    with np.load(data.parent / "all.npz") as z:
        np.save(npy / "input.npy", z["input"])
        np.save(npy / "labels.npy", z["labels"])
    a = evaluate(sim_out, data, tmp_path / "a", "--labels", "labels")
    b = evaluate(sim_out, npy, tmp_path / "b", "--labels", "labels", "--shard-size", "4")
    for key in ("accuracy", "agreement", "energy", "firing_rates", "samples"):
        assert a[key] == b[key], key
    assert a["data_sha256"] == b["data_sha256"]  # the same samples in the same cuts (4, 4, 2)


def test_a_results_folder_of_another_run_or_of_the_user_is_refused(
    sim_out: Path, data: Path, tmp_path: Path
):
    results = tmp_path / "r"
    evaluate(sim_out, data, results)
    code, text = invoke("evaluate", sim_out, "--inputs", data, "-o", results, "--steps", "40")
    assert code == InputFileError.exit_code, text
    assert text.count("error:") == 1 and "another run (different steps)" in text
    evaluate(sim_out, data, results, "--steps", "40", "--force")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, text = invoke("evaluate", sim_out, "--inputs", data, "-o", mine)
    assert code == InputFileError.exit_code and "did not write (notes.txt)" in text
    assert (mine / "notes.txt").read_text() == "keep"


def test_usage_and_data_errors_are_one_line(sim_out: Path, data: Path, tmp_path: Path):
    code, text = invoke("evaluate", sim_out, "--inputs", data, "--verify", "-o", tmp_path / "a")
    assert code == UsageError.exit_code and text.count("error:") == 1 and "--verify" in text
    code, text = invoke(
        "evaluate", sim_out, "--inputs", data, "--labels", "nope", "-o", tmp_path / "b"
    )
    assert code == InputFileError.exit_code and text.count("error:") == 1
    assert "no labels array 'nope'" in text
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    np.savez(bad / "part9.npz", input=np.zeros((2, STEPS, 5)))
    code, text = invoke("evaluate", sim_out, "--inputs", bad, "-o", tmp_path / "c")
    assert code == InputFileError.exit_code and text.count("error:") == 1
    assert "input 'input' has shape [2, 80, 5]" in text


@pytest.mark.toolchain("lava")
def test_verify_on_lava_with_two_workers(tmp_path: Path, data: Path):
    out = tmp_path / "lava"
    code, text = invoke("compile", BRAILLE, "-t", "loihi-sim", "-o", out)
    assert code == 0, text
    small = tmp_path / "small"
    small.mkdir()
    with np.load(data / "part0.npz") as z:
        np.savez(small / "x.npz", input=z["input"][:2, :30])
    code, text = invoke(
        "evaluate", out, "--inputs", small, "--verify", "--workers", "2", "--shard-size", "1",
        "-o", tmp_path / "r",
    )  # fmt: skip
    assert code == 0, text
    assert "output.output: 0 of 420 values differ from sim" in text
    result = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert result["backend"] == "loihi-sim" and result["verify"]["passed"]


def test_sweep_compares_targets_and_steps(sim_out: Path, data: Path, tmp_path: Path):
    out = tmp_path / "sweep"
    code, text = invoke(
        "sweep", BRAILLE, "--targets", "sim,loihi2", "--steps", "40,80", "--inputs", data,
        "--labels", "labels", "-o", out, "--json",
    )  # fmt: skip
    assert code == 0, text
    assert text.count("warning: braille_noDelay_bias_zero.nir looks like a snntorch") == 1
    rows = json.loads((out / "sweep.json").read_text())["configurations"]
    assert [r["name"] for r in rows] == ["sim-t40", "sim-t80", "loihi2-t40", "loihi2-t80"]
    assert all(r["cores"] >= 1 and r["latency_steps"] == r["steps"] for r in rows)
    assert rows[2]["energy_uj"] > 0 and "<table>" in (out / "sweep.html").read_text()
    alone = evaluate(sim_out, data, tmp_path / "r", "--labels", "labels")
    full = json.loads((out / "sim-t80" / "evaluation.json").read_text())
    for key in ("accuracy", "agreement", "energy"):
        assert full[key] == alone[key], key
    code, text = invoke("sweep", BRAILLE, "--targets", "nope", "--inputs", data, "-o", out)
    assert code == 4 and text.count("error:") == 1


@pytest.mark.toolchain("iverilog")
def test_verify_rtl_finds_an_edited_design(tmp_path: Path, data: Path):
    with pytest.MonkeyPatch.context() as mp:  # no Yosys synthesis: tests/backends/fpga covers it
        mp.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)
        code, text = invoke("compile", BRAILLE, "-t", "fpga-ice40up5k", "-o", tmp_path / "fpga")
    assert code == 0, text
    small = tmp_path / "small"
    small.mkdir()
    with np.load(data / "part0.npz") as z:
        np.savez(small / "x.npz", input=z["input"][:2, :30])
    args = ("--inputs", small, "--verify", "--shard-size", "1")
    code, text = invoke("evaluate", tmp_path / "fpga", *args, "-o", tmp_path / "ok")
    assert code == 0 and "output.output: 0 of 420 values differ from sim" in text, text
    weights = tmp_path / "fpga" / "core1_weights.mem"
    weights.write_text("".join("0" * (len(w) - 1) + "\n" for w in weights.read_text().splitlines()))
    code, text = invoke("evaluate", tmp_path / "fpga", *args, "-o", tmp_path / "bad")
    assert code == MismatchError.exit_code, text
    assert text.count("error:") == 1 and "rtl differs from sim in 1 output(s)" in text
    result = json.loads((tmp_path / "bad" / "evaluation.json").read_text())
    assert not result["verify"]["passed"] and result["verify"]["arrays"]["output.output"]["first"]


def test_time_first_data_sets_give_the_same_figures(sim_out: Path, data: Path, tmp_path: Path):
    """``--time-first``: inputs ``[time, batch, *shape]`` (an .npz, or memory-mapped .npy cut
    on axis 1), labels ``[batch]``; the same samples in the same shards as batch first."""
    npy = tmp_path / "npy"
    npy.mkdir()
    with np.load(data.parent / "all.npz") as z:
        x, y = np.swapaxes(z["input"], 0, 1), z["labels"]
    np.savez(tmp_path / "t.npz", input=x, labels=y)
    np.save(npy / "input.npy", x)
    np.save(npy / "labels.npy", y)
    a = evaluate(sim_out, data.parent / "all.npz", tmp_path / "a", "--labels", "labels")
    for name, given in (("b", tmp_path / "t.npz"), ("c", npy)):
        extra = ("--labels", "labels", "--shard-size", "4", "--time-first")
        b = evaluate(sim_out, given, tmp_path / name, *extra)
        for key in ("accuracy", "agreement", "energy", "firing_rates", "samples", "steps"):
            assert a[key] == b[key], key


def test_a_time_first_file_too_short_for_steps_is_refused(sim_out: Path, tmp_path: Path):
    with np.load(INPUTS) as z:
        np.savez(tmp_path / "t.npz", input=np.swapaxes(z["input"][:, :80], 0, 1))  # [80, 4, 12]
    code, text = invoke(
        "evaluate", sim_out, "--inputs", tmp_path / "t.npz", "--steps", "40", "-o", tmp_path / "r"
    )
    assert code == 4
    assert text.strip().splitlines()[-1] == (
        "error: t.npz[0:80] array 'input' [80, 4, 12]: read as 80 samples x 4 steps, fewer "
        "than the 40 steps of --steps; if it is the other way round, pass --time-first, else "
        "give [batch, time, ...] with more steps"
    )
