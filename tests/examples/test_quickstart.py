"""examples/quickstart.py runs as shipped: compile a live snnTorch model, verify, save."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.toolchain("snntorch")


def test_quickstart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("snntorch")
    from examples import quickstart

    result = quickstart.main(tmp_path / "out")
    assert result.report["agreement"]["outputs"]["output"]["prediction_agreement"] == 1.0
    assert "verify: passed" in capsys.readouterr().out
    assert (tmp_path / "quickstart_model.pt").is_file()
