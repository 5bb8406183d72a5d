"""CI budgets: each broken budget gives one message naming the budget, the value, the limit;
a budget the report cannot answer is broken, never passed by accident."""

from __future__ import annotations

import pytest

from snn_deploy.errors import InputFileError
from snn_deploy.reports.gates import check_budgets

REPORT = {
    "target": "loihi1",
    "placement": {"cores_used": 3},
    "energy": {"total_uj_per_inference": 0.25, "energy_pj": {"synops": 23.6}},
    "agreement": {
        "outputs": {
            "y": {"prediction_agreement": 0.995, "float_active_samples": 4},
            "z": {"prediction_agreement": 0.75, "float_active_samples": 1},
        }
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


def test_an_energy_the_target_does_not_model_breaks_the_budget():
    """The FPGA targets have no energy figure: their total is None ("not modelled"), and a
    report written before, whose total was 0 uJ, is no measurement either."""
    fpga = {**REPORT, "target": "fpga-artix7-35t"}
    for old_total in (None, 0.0):
        fpga["energy"] = {"total_uj_per_inference": old_total, "energy_pj": {}}
        (got,) = check_budgets(fpga, max_energy_uj=1.0)
        assert got == (
            "--max-energy-uj 1: target fpga-artix7-35t models no energy (no per-event energy "
            "figure in its target file), so the energy per inference is unknown"
        )


def test_an_output_silent_in_the_float_reference_breaks_the_agreement_budget():
    """Both runs silent: every neuron ties, the argmax agrees on every sample, and says nothing."""
    silent = {**REPORT}
    silent["agreement"] = {
        "outputs": {"y": {"prediction_agreement": 1.0, "float_active_samples": 0}}
    }
    (got,) = check_budgets(silent, min_agreement=0.5)
    assert "output 'y' has no output spikes in the float reference" in got


@pytest.mark.parametrize(
    ("report", "kwargs", "field"),
    [
        ({"placement": {"cores_used": "3"}}, {"max_cores": 4}, "placement.cores_used"),
        (
            {"energy": {"total_uj_per_inference": None, "energy_pj": {"synops": 1.0}}},
            {"max_energy_uj": 1.0},
            "energy.total_uj_per_inference",
        ),
        (
            {"agreement": {"outputs": {"y": {"prediction_agreement": 0.9}}}},
            {"min_agreement": 0.5},
            "agreement.outputs.y.float_active_samples",
        ),
        (
            {"agreement": {"outputs": {"y": {"float_active_samples": 2}}}},
            {"min_agreement": 0.5},
            "agreement.outputs.y.prediction_agreement",
        ),
    ],
)
def test_a_value_that_is_not_a_finite_number_is_a_bad_report(report, kwargs, field):
    with pytest.raises(InputFileError, match=f"report.json: {field} is"):
        check_budgets(report, **kwargs)


def _with_populations(**pops):
    return {**REPORT, "agreement": {**REPORT["agreement"], "populations": pops}}


def test_a_silent_or_saturated_population_breaks_min_agreement():
    """Slot agreement of a silent population is 1 by construction: the gate cannot pass on it."""
    report = _with_populations(
        hidden={"spike_f1": None, "float_rate": 0.0, "flag": "silent"},
        out={"spike_f1": 1.0, "float_rate": 0.97, "flag": "saturated"},
    )
    broken = check_budgets(report, min_agreement=0.5)
    assert broken == [
        "--min-agreement 0.5: population 'hidden' is silent in the float reference (spike rate "
        "0.0), so its agreement says nothing",
        "--min-agreement 0.5: population 'out' is saturated in the float reference (spike rate "
        "0.97), so its agreement says nothing",
    ]


def test_min_spike_f1_is_per_population_and_inclusive():
    report = _with_populations(
        a={"spike_f1": 0.9, "float_rate": 0.1, "flag": None},
        b={"spike_f1": None, "float_rate": 0.0, "flag": "silent"},
    )
    assert check_budgets(report, min_spike_f1=0.9) == [
        "--min-spike-f1 0.9: population 'b' never spikes in either run"
    ]
    assert check_budgets(report, min_spike_f1=0.95)[0] == (
        "--min-spike-f1 0.95: population 'a' spike-train F1 is 0.9"
    )
