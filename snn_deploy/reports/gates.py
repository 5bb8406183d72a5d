"""CI budgets on a report: ``snn-deploy report DIR --max-cores N --max-energy-uj X ...``.

``check_budgets`` is pure: it returns one message per broken budget (empty: all kept). A
budget the report cannot answer is broken too, so a CI gate never passes by accident: no
placement, compiled without ``--inputs``, an energy the target does not model (no energy
figure at all, e.g. the FPGA targets), or an output that is silent in the float reference on
every sample (its prediction agreement compares two silences and says nothing), or a spiking
population that is silent or saturated in the float reference (its slot agreement is 1 by
construction, ``agreement.populations[*].flag``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from snn_deploy.errors import InputFileError


def check_budgets(
    report: Mapping[str, Any],
    max_cores: int | None = None,
    max_energy_uj: float | None = None,
    min_agreement: float | None = None,
    min_spike_f1: float | None = None,
) -> list[str]:
    """The budgets ``report`` breaks, each as a message naming the budget, value and limit.

    Args:
        report: a ``report.json`` dict.
        max_cores: most cores the placement may use (``placement.cores_used``).
        max_energy_uj: most hardware-model energy per inference, in uJ
            (``energy.total_uj_per_inference``).
        min_agreement: least float-vs-quantized prediction agreement of every output
            (``agreement.outputs[*].prediction_agreement``, a fraction in [0, 1]); a
            population flagged silent or saturated breaks it too.
        min_spike_f1: least spike-train F1 of every spiking population
            (``agreement.populations[*].spike_f1``).

    Returns:
        Messages of the broken budgets, in argument order; empty if every budget holds.

    Raises:
        InputFileError: a value a budget reads is not a finite number (a tampered report).

    Examples:
        >>> check_budgets({"placement": {"cores_used": 3}}, max_cores=2)
        ['--max-cores 2: the placement uses 3 cores']
        >>> check_budgets({"placement": {"cores_used": 2}}, max_cores=2)
        []
    """
    broken: list[str] = []
    if max_cores is not None:
        placement = report.get("placement")
        if placement is None:
            broken.append(
                f"--max-cores {max_cores}: the report has no placement (the net was not mapped)"
            )
        elif (cores := _number(placement, "placement", "cores_used")) > max_cores:
            broken.append(f"--max-cores {max_cores}: the placement uses {cores:g} cores")
    if max_energy_uj is not None:
        broken += _energy_budget(report, max_energy_uj)
    if min_agreement is not None:
        broken += _agreement_budget(report, min_agreement)
    if min_spike_f1 is not None:
        broken += _f1_budget(report, min_spike_f1)
    return broken


def _energy_budget(report: Mapping[str, Any], limit: float) -> list[str]:
    energy = report.get("energy")
    budget = f"--max-energy-uj {limit:g}"
    if energy is None:
        return [f"{budget}: the report has no energy (compile with --inputs data.npz)"]
    if not energy.get("energy_pj"):
        return [
            f"{budget}: target {report.get('target')} models no energy (no per-event energy "
            "figure in its target file), so the energy per inference is unknown"
        ]
    total = _number(energy, "energy", "total_uj_per_inference")
    if total > limit:
        target = report.get("target")
        return [f"{budget}: the energy per inference is {total:.6g} uJ (target {target})"]
    return []


def _agreement_budget(report: Mapping[str, Any], limit: float) -> list[str]:
    agreement = report.get("agreement")
    budget = f"--min-agreement {limit:g}"
    if agreement is None or not agreement.get("outputs"):
        return [f"{budget}: the report has no agreement (compile with --inputs data.npz)"]
    broken = []
    for name, out in agreement["outputs"].items():
        where = f"agreement.outputs.{name}"
        if _number(out, where, "float_active_samples") == 0:
            broken.append(
                f"{budget}: output {name!r} has no output spikes in the float reference "
                "(silent on every sample), so its agreement says nothing"
            )
        elif (value := _number(out, where, "prediction_agreement")) < limit:
            broken.append(f"{budget}: output {name!r} prediction agreement is {value:.6g}")
    for name, pop in agreement.get("populations", {}).items():
        flag = pop.get("flag")
        if flag is not None:
            broken.append(
                f"{budget}: population {name!r} is {flag} in the float reference (spike rate "
                f"{pop.get('float_rate')}), so its agreement says nothing"
            )
    return broken


def _f1_budget(report: Mapping[str, Any], limit: float) -> list[str]:
    agreement = report.get("agreement")
    budget = f"--min-spike-f1 {limit:g}"
    if agreement is None or not agreement.get("populations"):
        return [f"{budget}: the report has no agreement (compile with --inputs data.npz)"]
    broken = []
    for name, pop in agreement["populations"].items():
        if pop.get("spike_f1") is None:
            broken.append(f"{budget}: population {name!r} never spikes in either run")
        elif (value := _number(pop, f"agreement.populations.{name}", "spike_f1")) < limit:
            broken.append(f"{budget}: population {name!r} spike-train F1 is {value:.6g}")
    return broken


def _number(table: Mapping[str, Any], where: str, key: str) -> float:
    """``table[key]`` as a finite number, or an error naming the report field."""
    value = table.get(key) if isinstance(table, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputFileError(
            f"report.json: {where}.{key} is {value!r}, not a finite number (compiled by an "
            "older snn-deploy, or edited? compile again)"
        )
    return value
