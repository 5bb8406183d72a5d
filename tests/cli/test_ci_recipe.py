"""docs/CI.md cannot go stale: every command of its GitHub Actions and GitLab jobs runs here,
on the Braille model, in a folder laid out as the recipe expects."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snn_deploy import api
from tests.cli.test_cli import BRAILLE, INPUTS, invoke
from tests.conftest import REPO

DOC = (REPO / "docs" / "CI.md").read_text()
INSTALL = ("pip install ", "sudo apt-get install ")  # setting up the CI machine: not run here


def blocks(language: str) -> list[str]:
    """The fenced code blocks of docs/CI.md in ``language``."""
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def github_commands(yaml: str) -> list[str]:
    """The ``run:`` steps of a GitHub Actions job."""
    return re.findall(r"^\s*- run: (.+)$", yaml, flags=re.MULTILINE)


def gitlab_commands(yaml: str) -> list[str]:
    """The items of a GitLab job's ``before_script:`` and ``script:`` lists."""
    commands, inside = [], False
    for line in yaml.splitlines():
        if line.strip() in ("before_script:", "script:"):
            inside = True
        elif inside and line.lstrip().startswith("- "):
            commands.append(line.lstrip()[2:])
        else:
            inside = False
    return commands


def run_recipe(commands: list[str], cwd: Path) -> None:
    """Run the snn-deploy and pytest commands in ``cwd``; the rest may only install things."""
    for command in commands:
        args = shlex.split(command)
        if args[0] == "snn-deploy":
            code, text = invoke(*args[1:])
            assert code == 0, f"{command}\n{text}"
        elif args[0] == "pytest":
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args[1:]],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        else:
            assert command.startswith(INSTALL), f"docs/CI.md runs an unknown command: {command}"


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's repository as docs/CI.md describes it, as the current directory."""
    shutil.copy(BRAILLE, tmp_path / "model.nir")
    with np.load(INPUTS) as z:
        np.savez(tmp_path / "inputs.npz", input=z["input"][:2, :60])
    api.compile(
        tmp_path / "model.nir",
        "sim",
        out_dir=tmp_path / "ref",
        inputs=api.read_inputs(tmp_path / "inputs.npz"),
    )
    shutil.copy(tmp_path / "ref" / "vectors.npz", tmp_path / "reference.npz")
    (tmp_path / "tests").mkdir()
    (python,) = blocks("python")
    (tmp_path / "tests" / "test_deployment.py").write_text(python)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("snn_deploy.backends.fpga.synth.yosys_command", lambda: None)  # speed
    return tmp_path


@pytest.mark.toolchain("iverilog")
def test_the_github_actions_job(repository: Path):
    (job,) = [b for b in blocks("yaml") if "runs-on:" in b]
    commands = github_commands(job)
    assert sum(c.startswith("snn-deploy verify") for c in commands) == 2
    run_recipe(commands, repository)
    assert (repository / "verify-rtl.xml").is_file() and (repository / "verify-sim.xml").is_file()


def test_the_gitlab_job(repository: Path):
    (job,) = [b for b in blocks("yaml") if "script:" in b]
    commands = gitlab_commands(job)
    assert commands[0].startswith("pip install") and len(commands) == 5
    run_recipe(commands, repository)
    assert (repository / "verify.xml").is_file() and (repository / "pytest.xml").is_file()


def test_a_changed_reference_fails_the_job(repository: Path):
    """The regression step is not vacuous: one changed spike in the reference fails it."""
    (job,) = [b for b in blocks("yaml") if "script:" in b]
    with np.load(repository / "reference.npz") as z:
        arrays = dict(z)
    arrays["output.output"][0, 10, 0] = 1 - arrays["output.output"][0, 10, 0]
    np.savez(repository / "reference.npz", **arrays)
    with pytest.raises(AssertionError, match="simulate build/model"):
        run_recipe(gitlab_commands(job), repository)
