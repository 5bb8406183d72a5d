"""The decision rule (docs/SEMANTICS.md §5): ties go to the lowest index, a read-out with every
output equal (silent) is no decision; report.json and the summary state it."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from snn_deploy import api
from snn_deploy.reports.decision import DECISION_RULE, NO_DECISION, decide
from snn_deploy.reports.render import summary


def test_ties_go_to_the_lowest_index_and_silence_is_no_decision():
    summed = np.array([[0.0, 3.0, 3.0, 1.0], [2.0, -1.0, 2.0, 2.0], [0.0] * 4, [-2.0] * 4])
    assert decide(summed).tolist() == [1, 0, NO_DECISION, NO_DECISION]
    assert decide(summed, undecided=3).tolist() == [1, 0, 3, 3]
    assert decide(summed[None]).shape == (1, 4)  # any leading axes


def _integrator(tmp_path: Path) -> Path:
    """Input(2) -> Linear -> I(3) -> Output: outputs 0 and 1 see the same weights (they tie)."""
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 0.25]])),
            "integ": nir.I(r=np.ones(3)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "integ"), ("integ", "output")],
        type_check=False,
    )
    path = tmp_path / "integ.nir"
    nir.write(path, graph)
    return path


def test_report_counts_undecided_read_outs_and_states_the_rule(tmp_path):
    x = np.zeros((3, 8, 2))  # sample 0 silent; sample 1 ties outputs 0 and 1; sample 2: output 2
    x[1, :, 0] = 1
    x[2, :, 1] = 1
    report = api.compile(_integrator(tmp_path), "sim", inputs={"input": x}).report
    out = report["agreement"]["outputs"]["output"]
    assert out == {
        "prediction_agreement": 1.0,
        "float_active_samples": 2,
        "float_undecided_samples": 1,
        "quantized_undecided_samples": 1,
    }
    assert report["agreement"]["decision_rule"] == DECISION_RULE
    assert f"decision rule: {DECISION_RULE}" in summary(report)
