"""Shared fixtures. Toolchain tests skip on a user machine without the tool and fail under CI.

Mark a test ``@pytest.mark.toolchain("lava")`` (or "shared" for data read from ../shared,
which CI always has). Under ``CI=true`` a missing toolchain is a failure, never a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from snn_deploy.backends.fpga.synth import yosys_command

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NIR_FIXTURES = FIXTURES / "nir"

_AVAILABLE = {
    "lava": lambda: importlib.util.find_spec("lava") is not None,
    "shared": lambda: (SHARED / "external" / "nir").is_dir(),
    "iverilog": lambda: shutil.which("iverilog") is not None and shutil.which("vvp") is not None,
    "yosys": lambda: yosys_command() is not None,
    "snntorch": lambda: importlib.util.find_spec("snntorch") is not None,
    "norse": lambda: importlib.util.find_spec("norse") is not None,
    "spikingjelly": lambda: importlib.util.find_spec("spikingjelly") is not None,
    "sinabs": lambda: importlib.util.find_spec("sinabs") is not None,
    "rockpool": lambda: importlib.util.find_spec("rockpool") is not None,
    "onnx": lambda: importlib.util.find_spec("onnx") is not None,
    "atheris": lambda: importlib.util.find_spec("atheris") is not None,
    "espeak": lambda: shutil.which("espeak-ng") is not None,
    "ray": lambda: importlib.util.find_spec("ray") is not None,
    "xylosim": lambda: importlib.util.find_spec("xylosim") is not None,
}


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("toolchain"):
        name = mark.args[0]
        if _AVAILABLE[name]():
            continue
        message = f"toolchain {name!r} is not available"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}, and CI must run this test", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def external_nir() -> Path:
    """The NIR test material in ../shared/external/nir (read in place, never vendored)."""
    return SHARED / "external" / "nir"
