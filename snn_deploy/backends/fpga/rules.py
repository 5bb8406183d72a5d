"""Design rules of the FPGA backend: the arithmetic it implements and the board's capacity.

Each rule has the signature of ``snn_deploy.target.rules`` rules and returns every
``Violation`` it finds; ``check_board`` runs them all and raises one ``DesignRuleError`` in the
format of ``target.rules.check_design_rules``. Board capacity is checked against the
analytical estimate (``synth.estimate``) here, and against Yosys' numbers in ``emit``.
"""

from __future__ import annotations

from collections.abc import Callable

from snn_deploy.backends.fpga.lower import build_cores, build_units
from snn_deploy.backends.fpga.synth import estimate, over_capacity, units_over_capacity
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import Overflow
from snn_deploy.target.rules import (
    Violation,
    payload_violations,
    raise_violations,
    reset_timing_supported,
    threshold_compare_supported,
)
from snn_deploy.target.schema import Target

MAX_INDEX = 1 << 16
"""Populations, inputs and projection sources are addressed with 16-bit fields."""
MAX_SPIKE_PAYLOAD_BITS = 8
"""Widest spike count ``lif_core.v`` is built for (``LB``, up to 255 levels): the level logic
is ``LB`` chained compare-and-add steps in the update cycle (docs/FPGA.md §2.2)."""


def numeric_format_supported(net: Net, target: Target) -> list[Violation]:
    """The net's arithmetic is the one ``lif_core.v`` implements (u wraps once, v saturates)."""
    spec = net.numeric
    if spec is None or (
        spec.current.overflow is Overflow.WRAP_ONCE
        and spec.voltage.overflow is Overflow.SATURATE
        and spec.voltage.symmetric
        and spec.current.width == spec.voltage.width
    ):
        return []
    return [
        Violation(
            "fpga-numeric-format",
            "(network)",
            "state overflow rules",
            f"u {spec.current.overflow.value}, v {spec.voltage.overflow.value}",
            "u wrap-once, v saturate-symmetric, equal widths",
            'use a target with numeric_from = "lava_fixed_pt"',
        )
    ]


def spike_levels_supported(net: Net, target: Target) -> list[Violation]:
    """Every population's spike count 0..D fits the payload ``lif_core.v`` sends and the
    history buffers store: ``ceil(log2(D + 1))`` bits, at most ``MAX_SPIKE_PAYLOAD_BITS`` and
    at most the target's ``spike_payload_bits``."""
    declared = target.limits.spike_payload_bits
    limit = MAX_SPIKE_PAYLOAD_BITS if declared is None else min(declared, MAX_SPIKE_PAYLOAD_BITS)
    fix = (
        "train with binary spikes (spike levels 1)"
        if limit == 0
        else f"use at most {2**limit - 1} spike levels (the FPGA cores send {limit}-bit spikes)"
    )
    return payload_violations(net, "fpga-spike-levels", limit, fix)


def parameters_fit_formats(net: Net, target: Target) -> list[Violation]:
    """Every integer parameter fits the register the RTL stores it in."""
    spec = net.numeric
    if spec is None:
        return []
    checks = []
    for p in net.projections:
        assert p.fixed is not None
        checks.append((p.name, "weight codes", p.fixed.codes.data, spec.weight))
    for pop in net.populations.values():
        f = pop.fixed
        assert f is not None
        checks += [
            (pop.name, "du", f.du, spec.decay),
            (pop.name, "dv", f.dv, spec.decay),
            (pop.name, "bias_mant", f.bias_mant, spec.bias),
        ]
        if f.vth is not None:
            checks.append((pop.name, "vth", f.vth, spec.threshold))
    return [
        Violation(
            "fpga-parameter-range",
            node,
            what,
            f"[{int(v.min())}, {int(v.max())}]",
            f"[{reg.min}, {reg.max}]",
            "re-quantize the network for this target",
        )
        for node, what, v, reg in checks
        if v.size and (v.min() < reg.min or v.max() > reg.max)
    ]


def sizes_addressable(net: Net, target: Target) -> list[Violation]:
    """Every population, product unit and input has fewer than 2**16 neurons, elements or
    values."""
    return [
        Violation(
            "fpga-index-width",
            name,
            "neurons (or elements, input values)",
            net.size_of(name),
            MAX_INDEX - 1,
            "split the population",
        )
        for name in (*net.inputs, *net.populations, *net.products)
        if net.size_of(name) >= MAX_INDEX
    ]


def current_bounded(net: Net, target: Target) -> list[Violation]:
    """A population whose u can wrap and has no current decay would grow without bound."""
    spec = net.numeric
    if spec is None:
        return []
    full = 1 << spec.current.width
    return [
        Violation(
            "fpga-current-range",
            core.pop.name,
            "largest |a << input_shift| without current decay",
            core.a_in,
            full,
            "give the population a current decay or smaller weights",
        )
        for core in build_cores(net)
        if core.a_in > full
        and int(core.pop.fixed.du.min(initial=1)) + spec.current_decay_offset == 0  # type: ignore[union-attr]
    ]


def products_fit_board(net: Net, target: Target) -> list[Violation]:
    """Each product unit alone fits the board (estimated LUTs, flip-flops, block RAMs for the
    attention state and query buffer, DSPs): ``fpga-attention`` / ``fpga-gate`` name the unit,
    the resource, its use and the board's limit."""
    if target.fpga is None or net.numeric is None or not net.products:
        return []
    cores = build_cores(net)
    usage = estimate(cores, net.numeric, target.fpga, build_units(net, cores))
    return units_over_capacity(usage, target.fpga)


def resources_fit_board(net: Net, target: Target) -> list[Violation]:
    """The estimated LUTs, flip-flops, block RAMs and DSPs of all cores and units fit the board."""
    if target.fpga is None or net.numeric is None:
        return []
    cores = build_cores(net)
    usage = estimate(cores, net.numeric, target.fpga, build_units(net, cores))
    return over_capacity(usage, target.fpga)


def placement_is_cores(net: Net, target: Target) -> list[Violation]:
    """A placed net has each population whole on chip 0 and core ``i``, the ``i``-th
    population: the core ``lower`` generates for it (``lower.build_cores``), so
    ``placement.json`` and the report's placement describe the RTL. ``map`` places so on a
    target with ``populations_per_core = 1`` (the FPGA target files); an unplaced net (a
    pipeline without ``map``) has nothing to compare."""
    found = []
    for i, pop in enumerate(net.populations.values()):
        if pop.placement is None:
            continue
        placed = sorted((pl.chip, pl.core, pl.start, pl.stop) for pl in pop.placement)
        if placed != [(0, i, 0, pop.size)]:
            found.append(
                Violation(
                    "fpga-placement",
                    pop.name,
                    "placed (chip, core, start, stop)",
                    placed,
                    f"[(0, {i}, 0, {pop.size})]: its generated core",
                    "give the target populations_per_core = 1 and run the map pass",
                )
            )
    return found


FPGA_RULES: list[Callable[[Net, Target], list[Violation]]] = [
    placement_is_cores,
    numeric_format_supported,
    reset_timing_supported,  # lif_core.v: immediate reset, v > th (the target files say so)
    threshold_compare_supported,
    spike_levels_supported,
    parameters_fit_formats,
    sizes_addressable,
    current_bounded,
    products_fit_board,
    resources_fit_board,
]


def check_board(net: Net, target: Target) -> None:
    """Run every FPGA rule; raise one ``DesignRuleError`` listing all violations."""
    raise_violations([v for rule in FPGA_RULES for v in rule(net, target)], target)
