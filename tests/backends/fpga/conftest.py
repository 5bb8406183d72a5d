"""The FPGA tests' shared compile: the braille example for a board, once per test process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from snn_deploy import api
from tests.backends.fpga.nets import BRAILLE, braille_inputs


@pytest.fixture(scope="session")
def compiled_braille(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The output folder of ``api.compile`` of the braille example for an FPGA target (with
    ``braille_inputs``), compiled on first use per target in this test process: a Yosys
    synthesis takes 40-70 s."""
    folders: dict[str, Path] = {}

    def compiled(target: str) -> Path:
        if target not in folders:
            folders[target] = tmp_path_factory.mktemp("braille") / target
            api.compile(BRAILLE, target, out_dir=folders[target], inputs=braille_inputs())
        return folders[target]

    return compiled
