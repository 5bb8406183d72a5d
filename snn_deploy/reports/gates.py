"""CI budgets on a report: ``snn-deploy report DIR --max-cores N --max-energy-uj X ...``.

``check_budgets`` is pure: it returns one message per broken budget (empty: all kept). A
budget the report cannot answer (no placement, compiled without ``--inputs``) is broken too,
so a CI gate never passes by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_budgets(
    report: Mapping[str, Any],
    max_cores: int | None = None,
    max_energy_uj: float | None = None,
    min_agreement: float | None = None,
) -> list[str]:
    """The budgets ``report`` breaks, each as a message naming the budget, value and limit.

    Args:
        report: a ``report.json`` dict.
        max_cores: most cores the placement may use (``placement.cores_used``).
        max_energy_uj: most hardware-model energy per inference, in uJ
            (``energy.total_uj_per_inference``).
        min_agreement: least float-vs-quantized prediction agreement of every output
            (``agreement.outputs[*].prediction_agreement``, a fraction in [0, 1]).

    Returns:
        Messages of the broken budgets, in argument order; empty if every budget holds.

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
        elif placement["cores_used"] > max_cores:
            broken.append(
                f"--max-cores {max_cores}: the placement uses {placement['cores_used']} cores"
            )
    if max_energy_uj is not None:
        energy = report.get("energy")
        if energy is None:
            broken.append(
                f"--max-energy-uj {max_energy_uj:g}: the report has no energy (compile with "
                "--inputs data.npz)"
            )
        elif energy["total_uj_per_inference"] > max_energy_uj:
            broken.append(
                f"--max-energy-uj {max_energy_uj:g}: the energy per inference is "
                f"{energy['total_uj_per_inference']:.6g} uJ (target {report.get('target')})"
            )
    if min_agreement is not None:
        agreement = report.get("agreement")
        if agreement is None or not agreement.get("outputs"):
            broken.append(
                f"--min-agreement {min_agreement:g}: the report has no agreement (compile with "
                "--inputs data.npz)"
            )
        else:
            for name, out in agreement["outputs"].items():
                value = out["prediction_agreement"]
                if value < min_agreement:
                    broken.append(
                        f"--min-agreement {min_agreement:g}: output {name!r} prediction "
                        f"agreement is {value:.6g}"
                    )
    return broken
