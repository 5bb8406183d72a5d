"""The text summary of a target without per-core limits or energy figures (issue 21 item 2)."""

from __future__ import annotations

import pytest

from snn_deploy.reports.render import summary

pytestmark = pytest.mark.toolchain("snntorch")


def test_fpga_summary_has_no_placeholder_figures() -> None:
    import snn_deploy as sd
    from tests.test_api import _inputs, _model

    text = summary(sd.compile(_model(), "fpga-ice40up5k", inputs=_inputs()).report)
    for placeholder in ("cores >= -", "lower bound None", "0 uJ per inference"):
        assert placeholder not in text
    assert "total: not modelled" in text
    placement = text[text.index("Placement") :].splitlines()[1]
    assert placement.split() == ["chip", "core", "neurons", "synapse", "bits", "fan-in", "fan-out"]
