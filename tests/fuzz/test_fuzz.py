"""Run the atheris loader fuzzers for a bounded number of inputs (issue 9): any exception other
than an SnnDeployError is a crash and fails the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_loaders.py")


@pytest.mark.toolchain("atheris")
@pytest.mark.parametrize("kind", ["nir", "net", "npz"])
def test_loader_fuzzing_finds_no_crash(kind, tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            kind,
            "-runs=600",
            "-seed=1",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 600 runs" in result.stderr
