"""CI budgets: each broken budget gives one message naming the budget, the value, the limit."""

from __future__ import annotations

import pytest

from snn_deploy.reports.gates import check_budgets

REPORT = {
    "target": "loihi1",
    "placement": {"cores_used": 3},
    "energy": {"total_uj_per_inference": 0.25},
    "agreement": {
        "outputs": {"y": {"prediction_agreement": 0.995}, "z": {"prediction_agreement": 0.75}}
    },
}


def test_no_budget_no_message():
    assert check_budgets(REPORT) == []


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"max_cores": 3}, True),
        ({"max_cores": 2}, False),
        ({"max_energy_uj": 0.25}, True),
        ({"max_energy_uj": 0.2}, False),
        ({"min_agreement": 0.75}, True),
        ({"min_agreement": 0.8}, False),
    ],
)
def test_limits_are_inclusive(kwargs, ok):
    assert (check_budgets(REPORT, **kwargs) == []) is ok


def test_messages_name_budget_value_and_limit():
    got = check_budgets(REPORT, max_cores=2, max_energy_uj=0.1, min_agreement=0.99)
    assert got == [
        "--max-cores 2: the placement uses 3 cores",
        "--max-energy-uj 0.1: the energy per inference is 0.25 uJ (target loihi1)",
        "--min-agreement 0.99: output 'z' prediction agreement is 0.75",
    ]


def test_budgets_a_report_cannot_answer_are_broken():
    bare = {"target": "sim", "placement": None, "energy": None, "agreement": None}
    got = check_budgets(bare, max_cores=1, max_energy_uj=1.0, min_agreement=0.9)
    assert len(got) == 3
    assert "no placement" in got[0] and "--inputs" in got[1] and "--inputs" in got[2]
    assert check_budgets(bare) == []
