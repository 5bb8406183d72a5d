"""Design rules: small named checks of a lowered net against a target's limits.

Each rule returns every violation it finds; ``check_design_rules`` runs them all and raises one
``DesignRuleError`` listing all violations, each with node, resource, used, limit and a fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.target.schema import Target


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken limit."""

    rule: str
    node: str
    resource: str
    used: object
    limit: object
    fix: str

    def __str__(self) -> str:
        return (
            f"[{self.rule}] {self.node}: {self.resource} is {self.used}, limit {self.limit}; "
            f"fix: {self.fix}"
        )


def reset_mode_supported(net: Net, target: Target) -> list[Violation]:
    """Every spiking population uses a reset mode the target implements."""
    allowed = sorted(m.value for m in target.reset_modes)
    return [
        Violation(
            "reset-mode",
            p.name,
            "reset mode",
            p.reset.value,
            " or ".join(allowed),
            f"train with reset {' or '.join(allowed)}, or use --target sim",
        )
        for p in net.populations.values()
        if p.spiking and p.reset not in target.reset_modes
    ]


def delay_within_limit(net: Net, target: Target) -> list[Violation]:
    """Every projection's delay fits the target's delay field."""
    limit = target.limits.max_delay_steps
    return [
        Violation(
            "max-delay",
            p.name,
            "synaptic delay (steps)",
            p.delay + 1,
            limit + 1,
            "shorten the delay or chain it through relay neurons",
        )
        for p in net.projections
        if limit is not None and p.delay > limit
    ]


def neurons_fit_system(net: Net, target: Target) -> list[Violation]:
    """The whole network has no more neurons than all cores of all chips hold."""
    lim = target.limits
    if None in (lim.neurons_per_core, lim.cores_per_chip, lim.chips):
        return []
    capacity = lim.neurons_per_core * lim.cores_per_chip * lim.chips  # type: ignore[operator]
    used = sum(p.size for p in net.populations.values())
    if used <= capacity:
        return []
    return [
        Violation(
            "system-neurons",
            "(network)",
            "neurons",
            used,
            capacity,
            "use a target with more chips or prune the network",
        )
    ]


DESIGN_RULES: list[Callable[[Net, Target], list[Violation]]] = [
    reset_mode_supported,
    delay_within_limit,
    neurons_fit_system,
]


def check_design_rules(net: Net, target: Target) -> None:
    """Run every rule; raise one ``DesignRuleError`` listing all violations."""
    found = [v for rule in DESIGN_RULES for v in rule(net, target)]
    if found:
        lines = "\n  ".join(str(v) for v in found)
        raise DesignRuleError(
            f"{len(found)} design-rule violation(s) for target {target.name!r}:\n  {lines}"
        )
