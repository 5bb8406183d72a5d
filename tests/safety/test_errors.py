"""Hostile and careless inputs: every failure is one ``error:`` line and its exit code.

Each case builds its input in ``tmp_path``, runs the CLI and checks the exit code, exactly one
line starting with ``error: `` (or a visible ``warning:``), the key words of the message, and
that no traceback or "internal error" leaked out. Every case failed on the main of issue 17's
audit (a traceback, a budget passed by accident, a silently wrong value, or a missing option).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
from click.testing import CliRunner, Result

from snn_deploy.cli.main import cli
from tests.conftest import NIR_FIXTURES, REPO
from tests.graphs import lif_node

MODEL = NIR_FIXTURES / "lif_norse.nir"  # Input(1) -> Affine -> LIF(1) -> Output
SIM_TOML = (REPO / "targets" / "sim.toml").read_text()


def run(*args: object) -> Result:
    """Invoke the CLI; no traceback and no internal error, whatever the outcome."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result


def assert_one_error(result: Result, code: int, *words: str) -> str:
    """Exit ``code`` and exactly one ``error:`` line (on stderr) holding ``words``."""
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert result.exit_code == code and len(lines) == 1, result.output
    assert lines[0] in result.stderr.splitlines()
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


# ---------------------------------------------------------------- builders


def npz(tmp: Path, name: str = "x.npz", **arrays: Any) -> Path:
    np.savez(tmp / name, **arrays)
    return tmp / name


def target(tmp: Path, text: str, name: str = "t") -> Path:
    """A target file beside a copy of the shared arithmetic (targets/formats/)."""
    shutil.copytree(REPO / "targets" / "formats", tmp / "formats", dirs_exist_ok=True)
    (tmp / f"{name}.toml").write_bytes(text.encode() if isinstance(text, str) else text)
    return tmp / f"{name}.toml"


def with_limit(key: str, value: str) -> str:
    return SIM_TOML + f'\n[limits]\n{key} = {{ value = {value}, source = "x" }}\n'


def energy(value: str) -> str:
    return SIM_TOML.replace("synop_pj = { value = 0.9,", f"synop_pj = {{ value = {value},")


def graph_file(tmp: Path, graph: nir.NIRGraph, name: str = "m.nir") -> Path:
    nir.write(tmp / name, graph)
    return tmp / name


def chain(links: int, threshold: float = 1.0) -> nir.NIRGraph:
    """Input(2) -> ``links`` Linear nodes -> LIF(2) -> Output."""
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([2])})}
    names = [f"w{i}" for i in range(links)]
    nodes.update({k: nir.Linear(weight=np.eye(2)) for k in names})
    nodes["lif"] = lif_node(2, v_threshold=threshold)
    nodes["output"] = nir.Output(output_type={"output": np.array([2])})
    path = ["input", *names, "lif", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(path)), type_check=False)


def checkpoint(tmp: Path, **entries: Any) -> Path:
    import torch

    linear = [["torch.nn.Linear", {"in_features": 2, "out_features": 3}]]
    weights = {"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(3)}
    torch.save({"architecture": linear, "state_dict": weights, **entries}, tmp / "m.pt")
    return tmp / "m.pt"


def ann(tmp: Path, *, weights: bool = True, pool: bool = False) -> Path:
    """A ReLU ANN in ONNX, Gemm(3 -> 4) -> Relu -> Gemm(4 -> 2); without its weight
    initialisers, or a bare AveragePool without kernel_shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(2, 4)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2"], ["y"], transB=1, name="fc2"),
    ]
    if pool:
        nodes = [helper.make_node("AveragePool", ["x"], ["y"], name="pool")]
    graph = helper.make_graph(
        nodes,
        "ann",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        inits if weights else [],
    )
    onnx.save(helper.make_model(graph), str(tmp / "ann.onnx"))
    return tmp / "ann.onnx"


def convert(tmp: Path, model: Path | None = None, **arrays: Any) -> list[object]:
    arrays = arrays or {"x": np.random.default_rng(0).random((8, 3))}
    return ["convert", model or ann(tmp), "--calibrate", npz(tmp, "cal.npz", **arrays)]


def compiled(tmp: Path, *extra: object, inputs: Any = None) -> Path:
    """A compile output folder of MODEL on (silent: all-zero) inputs."""
    tmp.mkdir(exist_ok=True)
    x = np.zeros((2, 5, 1)) if inputs is None else inputs
    result = run("compile", MODEL, "-o", tmp / "out", "--inputs", npz(tmp, input=x), *extra)
    assert result.exit_code == 0, result.output
    return tmp / "out"


def edited_report(tmp: Path, edit: Callable[[dict[str, Any]], object]) -> Path:
    """A compile output folder whose report.json was edited."""
    out = compiled(tmp)
    report = json.loads((out / "report.json").read_text())
    edit(report)
    (out / "report.json").write_text(json.dumps(report))
    return out


def no_energy_target(tmp: Path) -> Path:
    """The sim target without its [energy] table: a target that models no energy."""
    return target(tmp, SIM_TOML[: SIM_TOML.index("[energy]")], "bare")


ONNX = pytest.mark.toolchain("onnx")

# id -> (build args from tmp_path, exit code, key words of the error line)
CASES: dict[str, Any] = {
    # report: malformed report.json
    "report-bare-nan": (
        lambda p: ["report", _bare_nan(p), "--max-energy-uj", "1"],
        4,
        ("NaN is not JSON",),
    ),
    "report-no-resources": (
        lambda p: ["report", edited_report(p, lambda r: r.pop("resources"))],
        4,
        ("malformed report", "resources"),
    ),
    "report-cores-not-a-number": (
        lambda p: [
            "report",
            edited_report(p, lambda r: r["placement"].update(cores_used="3")),
            "--max-cores",
            "2",
        ],
        4,
        ("placement.cores_used is '3'", "not a finite number"),
    ),
    # report: gates that cannot be passed by accident
    "budget-nan-energy": (
        lambda p: ["report", compiled(p), "--max-energy-uj", "nan"],
        2,
        ("--max-energy-uj", "'nan' is not a finite number"),
    ),
    "budget-infinite-energy": (
        lambda p: ["report", compiled(p), "--max-energy-uj", "inf"],
        2,
        ("--max-energy-uj", "not a finite number"),
    ),
    "budget-silent-output": (
        lambda p: ["report", compiled(p), "--min-agreement", "0.5"],
        3,
        ("--min-agreement 0.5", "output 'output' has no output spikes in the float reference"),
    ),
    "budget-unmodelled-energy": (
        lambda p: [
            "report",
            compiled(p, "--target", no_energy_target(p), inputs=np.ones((2, 5, 1))),
            "--max-energy-uj",
            "1000",
        ],
        3,
        ("--max-energy-uj 1000", "models no energy"),
    ),
    "budget-with-compare": (
        lambda p: ["report", compiled(p), "--compare", compiled(p / "b"), "--max-cores", "0"],
        2,
        ("--compare checks no budget",),
    ),
    # target files: missing, non-numeric, negative, NaN, boolean, unknown values
    "target-empty-file": (
        lambda p: ["check", MODEL, "-t", target(p, "")],
        4,
        ("t.toml", "name is missing"),
    ),
    "target-binary-file": (
        lambda p: ["check", MODEL, "-t", target(p, b"\xff\xfe\x00name")],
        4,
        ("cannot read target file", "utf-8"),
    ),
    "target-no-numeric-from": (
        lambda p: [
            "check",
            MODEL,
            "-t",
            target(p, SIM_TOML.replace("numeric_from = {", "numeric_fro = {")),
        ],
        4,
        ("numeric_from is missing",),
    ),
    "target-name-not-a-string": (
        lambda p: ["check", MODEL, "-t", target(p, SIM_TOML.replace('value = "sim"', "value = 3"))],
        4,
        ("name is 3", "expected a string"),
    ),
    "target-unknown-backend": (
        lambda p: [
            "compile",
            MODEL,
            "-o",
            p / "out",
            "-t",
            target(p, SIM_TOML.replace('backend = { value = "sim"', 'backend = { value = "gpu"')),
        ],
        4,
        ("backend 'gpu' is unknown", "sim, lava, fpga"),
    ),
    "target-energy-not-a-number": (
        lambda p: ["check", MODEL, "-t", target(p, energy('"abc"'))],
        4,
        ("energy.synop_pj is 'abc'", "expected a number"),
    ),
    "target-negative-energy": (
        lambda p: ["check", MODEL, "-t", target(p, energy("-0.9"))],
        4,
        ("energy.synop_pj is -0.9", "non-negative"),
    ),
    "target-nan-energy": (
        lambda p: ["check", MODEL, "-t", target(p, energy("nan"))],
        4,
        ("energy.synop_pj is nan",),
    ),
    "target-negative-limit": (
        lambda p: ["check", MODEL, "-t", target(p, with_limit("neurons_per_core", "-5"))],
        4,
        ("limits.neurons_per_core is -5", "positive"),
    ),
    "target-limit-not-a-number": (
        lambda p: ["check", MODEL, "-t", target(p, with_limit("neurons_per_core", '"many"'))],
        4,
        ("limits.neurons_per_core is 'many'", "integer"),
    ),
    "target-fractional-limit": (
        lambda p: ["check", MODEL, "-t", target(p, with_limit("neurons_per_core", "1.5"))],
        4,
        ("limits.neurons_per_core is 1.5", "integer"),
    ),
    "target-boolean-limit": (
        lambda p: ["check", MODEL, "-t", target(p, with_limit("chips", "true"))],
        4,
        ("limits.chips is True",),
    ),
    # inputs
    "inputs-zero-steps": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--inputs", npz(p, input=np.zeros((1, 0, 1)))],
        4,
        ("input 'input' has shape [1, 0, 1]", "one time step"),
    ),
    "inputs-batch-0": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--inputs", npz(p, input=np.zeros((0, 5, 1)))],
        4,
        ("input 'input' has shape [0, 5, 1]", "one sample"),
    ),
    "inputs-beyond-int64": (
        lambda p: [
            "compile",
            MODEL,
            "-o",
            p / "o",
            "--inputs",
            npz(p, input=np.full((1, 5, 1), 1e30)),
        ],
        4,
        ("input 'input' has value 1e+30 at [0, 0, 0]", "2**53"),
    ),
    "calibrate-zero-steps": (
        lambda p: [
            "compile",
            MODEL,
            "-o",
            p / "o",
            "--calibrate",
            npz(p, input=np.zeros((1, 0, 1))),
        ],
        4,
        ("has shape [1, 0, 1]",),
    ),
    # pipelines
    "passes-without-lower": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--passes", "quantize"],
        4,
        ("quantize takes a float net", "after lower"),
    ),
    "passes-lower-twice": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--passes", "lower,lower"],
        4,
        ("lower takes a model graph", "passes run before: lower"),
    ),
    "passes-map-before-quantize": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--passes", "lower,map"],
        4,
        ("map takes a quantized net",),
    ),
    "passes-without-quantize": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--passes", "lower"],
        4,
        ("leaves a float net", "add quantize"),
    ),
    "dump-ir-after-unknown-pass": (
        lambda p: ["compile", MODEL, "-o", p / "o", "--dump-ir-after", "lowr"],
        2,
        ("--dump-ir-after", "'lowr' is not one of"),
    ),
    # models
    "negative-threshold": (
        lambda p: ["compile", graph_file(p, chain(1, threshold=-0.5)), "-o", p / "o"],
        4,
        ("population 'lif' neuron 0 has threshold -0.5 < 0", "unsigned"),
    ),
    "pt-bad-class-argument": (
        lambda p: [
            "inspect",
            checkpoint(
                p, architecture=[["torch.nn.Linear", {"in_featurez": 2, "out_features": 3}]]
            ),
        ],
        4,
        ("architecture[0] torch.nn.Linear", "in_featurez"),
    ),
    "pt-architecture-not-a-list": (
        lambda p: ["inspect", checkpoint(p, architecture=5)],
        4,
        ("architecture is a int",),
    ),
    "pt-state-dict-not-a-dict": (
        lambda p: ["inspect", checkpoint(p, state_dict=[1])],
        4,
        ("state_dict does not fit",),
    ),
    "pt-dt-not-a-number": (
        lambda p: ["inspect", checkpoint(p, dt="abc")],
        4,
        ("dt is 'abc'", "positive number of seconds"),
    ),
    "pt-input-shape-not-integers": (
        lambda p: ["inspect", checkpoint(p, input_shape="ab")],
        4,
        ("input_shape is 'ab'", "positive integers"),
    ),
    "onnx-weights-not-initialisers": pytest.param(
        lambda p: convert(p, ann(p, weights=False)),
        4,
        ("Gemm 'fc1': input 1 ('w1') is not an initialiser",),
        marks=ONNX,
    ),
    "onnx-pool-without-kernel": pytest.param(
        lambda p: convert(p, ann(p, pool=True)),
        4,
        ("AveragePool 'pool' has no kernel_shape",),
        marks=ONNX,
    ),
    "onnx-calibration-wrong-shape": pytest.param(
        lambda p: convert(p, x=np.ones((8, 5))),
        4,
        ("calibration inputs have shape [8, 5]", "[batch >= 1, 3]"),
        marks=ONNX,
    ),
    "onnx-calibration-batch-0": pytest.param(
        lambda p: convert(p, x=np.ones((0, 3))),
        4,
        ("calibration inputs have shape [0, 3]",),
        marks=ONNX,
    ),
    "onnx-calibration-two-arrays": pytest.param(
        lambda p: convert(p, x=np.ones((8, 3)), y=np.ones((8, 3))),
        4,
        ("one calibration array", "['x', 'y']"),
        marks=ONNX,
    ),
    "convert-nan-percentile": pytest.param(
        lambda p: [*convert(p), "--percentile", "nan"],
        2,
        ("--percentile", "not a finite number"),
        marks=ONNX,
    ),
    "convert-into-missing-folder": pytest.param(
        lambda p: [*convert(p), "-o", p / "missing" / "snn.nir"],
        4,
        ("cannot write", "snn.nir"),
        marks=ONNX,
    ),
}


def _bare_nan(tmp: Path) -> Path:
    """A report whose energy total is a bare NaN (Python's json writes and reads it)."""
    out = compiled(tmp)
    text = (out / "report.json").read_text()
    key = '"total_uj_per_inference": '
    (out / "report.json").write_text(text.replace(key, f'{key}NaN, "was": '))
    return out


def _case(name: str) -> Any:
    case = CASES[name]
    return case if hasattr(case, "marks") else pytest.param(*case)


@pytest.mark.parametrize(("build", "code", "words"), [_case(k) for k in CASES], ids=list(CASES))
def test_hostile_input_gives_one_error_line(
    build: Callable[[Path], list[object]], code: int, words: tuple[str, ...], tmp_path: Path
):
    assert_one_error(run(*build(tmp_path)), code, *words)


def test_a_1000_node_chain_compiles(tmp_path: Path):
    """``lower`` folded stateless chains recursively: RecursionError at ~1000 nodes."""
    result = run("compile", graph_file(tmp_path, chain(1000)), "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output


def test_a_silent_output_is_a_visible_warning(tmp_path: Path):
    """Both runs silent: the prediction agreement is 1.0 and says nothing; compile says so."""
    result = run(
        "compile", MODEL, "-o", tmp_path / "o", "--inputs", npz(tmp_path, input=np.zeros((2, 5, 1)))
    )
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert result.exit_code == 0 and len(warnings) == 2, result.output
    assert "output 'output' is silent in the float reference" in warnings[0]
    assert "population '1' is silent in the float reference" in warnings[1]


# ---------------------------------------------------------------- --json on every command


def strict_json(text: str) -> Any:
    """Parse ``text`` as RFC 8259 JSON: NaN and Infinity are refused."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("build", "check"),
    [
        pytest.param(
            lambda p: ["targets"],
            lambda d: {"sim", "loihi2"} <= {t["name"] for t in d},
            id="targets",
        ),
        pytest.param(
            lambda p: ["inspect", MODEL],
            lambda d: [n["type"] for n in d["nodes"]] == ["Affine", "LIF", "Input", "Output"],
            id="inspect",
        ),
        pytest.param(
            lambda p: ["check", MODEL],
            lambda d: d["violations"] == [] and d["cores"] == 1,
            id="check",
        ),
        pytest.param(
            lambda p: ["compile", MODEL, "-o", p / "o"],
            lambda d: d["target"] == "sim",
            id="compile",
        ),
        pytest.param(lambda p: ["report", compiled(p)], lambda d: "agreement" in d, id="report"),
        pytest.param(
            lambda p: [*convert(p), "-o", p / "snn.nir"],
            lambda d: d["output"].endswith("snn.nir") and d["samples"] == 8,
            marks=ONNX,
            id="convert",
        ),
    ],
)
def test_json_output_is_strict_json(
    build: Callable[[Path], list[object]], check: Callable[[Any], bool], tmp_path: Path
):
    result = run(*build(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert check(strict_json(result.stdout))


def test_check_json_lists_every_violation_and_still_fails(tmp_path: Path):
    result = run("check", MODEL, "--target", "loihi1", "--reset", "subtract", "--json")
    assert_one_error(result, 5, "1 design-rule violation(s)", "listed in the JSON output")
    (violation,) = strict_json(result.stdout)["violations"]
    assert violation["rule"] == "reset-mode" and violation["node"] == "1"
    assert {"resource", "used", "limit", "fix"} <= set(violation)


def test_an_error_under_json_is_one_line_on_stderr(tmp_path: Path):
    result = run("inspect", tmp_path / "missing.nir", "--json")
    assert_one_error(result, 4, "missing.nir")
    assert result.stdout == ""
