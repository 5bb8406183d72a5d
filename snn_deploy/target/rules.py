"""Design rules: small named checks of a lowered net against a target's limits.

Each rule returns every violation it finds; ``check_design_rules`` runs them all and raises one
``DesignRuleError`` listing all violations, each with node, resource, used, limit and a fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.ir.types import WeightExpScope
from snn_deploy.target import cost
from snn_deploy.target.load import available, load_target
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


def products_supported(net: Net, target: Target) -> list[Violation]:
    """Every product unit is one the target's backend runs (``products`` in its file); the
    violation's rule is the operator's name, ``attention`` or ``gate``, and it quotes the
    file's reason when it gives one (``products = { value = [], source = "why" }``)."""
    found = []
    why = target.sources.get("products")
    for unit in net.products.values():
        kind = type(unit).__name__
        if kind in target.products:
            continue
        runs = [n for n in available() if kind in load_target(n).products]
        found.append(
            Violation(
                kind.lower(),
                unit.name,
                "product unit",
                kind,
                f"not supported on this target: {why}"
                if why
                else "not yet supported on this target",
                f"use a target that runs {kind} ({', '.join(runs)})",
            )
        )
    return found


def product_registers_fit(net: Net, target: Target) -> list[Violation]:
    """Every product unit's registers fit the target: state register width
    (``product-state``), output register width as a graded payload (``product-payload``) and
    all its state in one core (``product-state-memory``; docs/SEMANTICS.md §4.4)."""
    lim = target.limits
    found = []
    for unit in net.products.values():
        if unit.fixed is None or type(unit).__name__ not in target.products:
            continue
        kind = type(unit).__name__
        checks = [
            (
                "product-payload",
                "output register (bits)",
                unit.fixed.output.width,
                lim.product_payload_bits,
                "fewer spike levels, a shorter clip (steps) or a decay; for a Gate on a voltage, "
                "a reading projection that lets quantize shift the product",
            ),
            (
                "product-state-memory",
                "state (bits)",
                cost.product_state_bits(net, unit),
                lim.product_state_bits_per_core,
                "fewer channels per head (more heads), or causal attention (no kept q)",
            ),
        ]
        if unit.fixed.state is not None:
            checks.insert(
                0,
                (
                    "product-state",
                    "state register (bits)",
                    unit.fixed.state.width,
                    lim.product_state_bits,
                    "fewer spike levels, a shorter clip (steps) or a decay",
                ),
            )
        found += [
            Violation(rule, f"{kind} {unit.name}", resource, used, limit, fix)
            for rule, resource, used, limit, fix in checks
            if limit is not None and used > limit
        ]
    return found


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


def reset_timing_supported(net: Net, target: Target) -> list[Violation]:
    """Every spiking population's reset timing (docs/SEMANTICS.md §1.2) is one the target
    runs (``reset_timings`` in its file), quoting the file's reason."""
    why = target.sources.get("reset_timings", "the target file lists none but immediate")
    refused = [
        p
        for p in net.populations.values()
        if p.spiking and p.reset_timing not in target.reset_timings
    ]
    runs = _targets_running(net) if refused else ""
    return [
        Violation(
            "reset-timing",
            p.name,
            "reset timing",
            p.reset_timing.value,
            f"{' or '.join(sorted(m.value for m in target.reset_timings))} ({why})",
            "train with a reset in the spiking step (snnTorch reset_delay=False), or use "
            f"--target {runs}",
        )
        for p in refused
    ]


def threshold_compare_supported(net: Net, target: Target) -> list[Violation]:
    """Every spiking population's threshold compare (``>`` or ``>=``) is one the target runs
    (``threshold_compares`` in its file), quoting the file's reason."""
    why = target.sources.get("threshold_compares", "the target file lists only >")
    refused = [
        p
        for p in net.populations.values()
        if p.spiking and p.threshold_compare not in target.threshold_compares
    ]
    runs = _targets_running(net) if refused else ""
    return [
        Violation(
            "threshold-compare",
            p.name,
            "threshold compare",
            f"v {p.threshold_compare.value} θ",
            f"{' or '.join(sorted(m.value for m in target.threshold_compares))} ({why})",
            f"use --target {runs}",
        )
        for p in refused
    ]


def synaptic_currents_supported(net: Net, target: Target) -> list[Violation]:
    """Every population has no more synaptic currents (``Population.currents``: a second one
    with ``alpha2``) than the target's neurons (``synaptic-currents``): ``synaptic_currents``,
    and on a core of three matrices ``output_synaptic_currents`` for the read-outs."""
    lim = target.limits
    readouts = set(net.readouts()) if lim.output_neurons is not None else set()
    found = []
    for name, pop in net.populations.items():
        limit = lim.output_synaptic_currents if name in readouts else lim.synaptic_currents
        if limit is None or pop.currents <= limit:
            continue
        if name in readouts:
            kind, fix = "read-out neuron", "feed the read-out through one current"
        else:
            runs = [n for n in available() if _currents_of(load_target(n)) >= pop.currents]
            kind = "neuron"
            fix = f"feed it through one current, or use a target with two ({', '.join(runs)})"
        found.append(
            Violation(
                "synaptic-currents",
                name,
                f"synaptic currents per {kind}",
                pop.currents,
                limit,
                fix,
            )
        )
    return found


def _currents_of(target: Target) -> float:
    """The synaptic currents a target's (hidden) neurons have (None: any number)."""
    limit = target.limits.synaptic_currents
    return float("inf") if limit is None else limit


def _targets_running(net: Net) -> str:
    """The shipped targets that run every population's reset timing and threshold compare
    (loaded only when a violation needs the suggestion), or ``sim``."""
    return " or ".join(n for n in available() if _runs_all(net, load_target(n))) or "sim"


def _runs_all(net: Net, target: Target) -> bool:
    """True if ``target`` runs every population's reset mode, timing and compare."""
    return all(
        p.reset in target.reset_modes
        and p.reset_timing in target.reset_timings
        and p.threshold_compare in target.threshold_compares
        for p in net.populations.values()
        if p.spiking
    )


def spike_payload_fits(net: Net, target: Target) -> list[Violation]:
    """Every multi-level population's spikes (0..D) fit the target's spike payload:
    ``ceil(log2(D + 1))`` bits, where 0 bits means the target sends binary spikes only."""
    limit = target.limits.spike_payload_bits
    if limit is None or all(p.levels <= 1 for p in net.populations.values()):
        return []
    fix = f"use at most {2**limit - 1} spike levels"
    if limit == 0:
        bits = max(p.levels.bit_length() for p in net.populations.values())
        payloads = {n: load_target(n).limits.spike_payload_bits for n in available()}
        fit = [n for n, b in payloads.items() if b is None or b >= bits]
        fix = (
            "train with binary spikes (spike levels 1), or use a target with graded spikes "
            f"({', '.join(fit)})"
        )
    return payload_violations(net, "spike-payload", limit, fix)


def payload_violations(net: Net, rule: str, limit: int, fix: str) -> list[Violation]:
    """A ``rule`` violation for each multi-level population whose payload, ``ceil(log2(D + 1))``
    bits, exceeds ``limit`` bits."""
    return [
        Violation(
            rule,
            p.name,
            f"spike payload bits ({p.levels} spike levels)",
            p.levels.bit_length(),  # == ceil(log2(levels + 1))
            limit,
            fix,
        )
        for p in net.populations.values()
        if p.levels > 1 and p.levels.bit_length() > limit
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


def _fix_synapses() -> str:
    return "fewer weight bits, prune synapses, or split the neuron's fan-in over relay neurons"


def neuron_fits_core(net: Net, target: Target) -> list[Violation]:
    """One neuron's incoming synapses and sources fit an empty core (else it cannot be placed).

    Per population, the worst neuron: synapse memory under the encoding model of
    ``target.cost`` (a lone neuron always pays its whole row) and fan-in axons (its incoming
    synapses, summed over projections).
    """
    lim = target.limits
    if not net.quantized or (
        lim.synapse_memory_bits_per_core is None and lim.fan_in_axons_per_core is None
    ):
        return []
    costs = cost.population_costs(net, lim)
    found = []
    for name, pop in net.populations.items():
        if pop.size == 0 or not costs[name]:
            continue
        bits = sum(c.row_bits for c in costs[name]) + sum(
            c.pattern_bits for c in costs[name] if c.pattern_bits is not None
        )
        fan_in = sum(np.diff(cost.codes_of(p).indptr) for p in net.incoming(name))
        worst_bits, worst_in = int(np.max(bits)), int(np.max(fan_in))
        if lim.synapse_memory_bits_per_core is not None and (
            worst_bits > lim.synapse_memory_bits_per_core
        ):
            found.append(
                Violation(
                    "neuron-synapse-memory",
                    f"{name}[{int(np.argmax(bits))}]",
                    "synapse memory of one neuron (bits)",
                    worst_bits,
                    lim.synapse_memory_bits_per_core,
                    _fix_synapses(),
                )
            )
        if lim.fan_in_axons_per_core is not None and worst_in > lim.fan_in_axons_per_core:
            found.append(
                Violation(
                    "neuron-fan-in",
                    f"{name}[{int(np.argmax(fan_in))}]",
                    "fan-in axons of one neuron",
                    worst_in,
                    lim.fan_in_axons_per_core,
                    "prune inputs or split the neuron's fan-in over relay neurons",
                )
            )
    return found


def neuron_fan_out_fits_core(net: Net, target: Target) -> list[Violation]:
    """One neuron reaches at least ceil(out-degree / neurons_per_core) cores; that must fit."""
    lim = target.limits
    if lim.fan_out_axons_per_core is None or lim.neurons_per_core is None:
        return []
    found = []
    for name, by_dst in cost.out_degree_per_neuron(net).items():
        if name not in net.populations:  # an input: the host sends it
            continue
        deg = sum(by_dst.values(), np.zeros(net.populations[name].size, dtype=np.int64))
        if deg.size == 0:
            continue
        reach = -(-deg // lim.neurons_per_core)
        if int(reach.max()) > lim.fan_out_axons_per_core:
            found.append(
                Violation(
                    "neuron-fan-out",
                    f"{name}[{int(np.argmax(reach))}]",
                    "destination cores of one neuron (at least)",
                    int(reach.max()),
                    lim.fan_out_axons_per_core,
                    "relay the neuron's output through copies, or prune its outgoing synapses",
                )
            )
    return found


def cores_fit_system(net: Net, target: Target) -> list[Violation]:
    """Placed: the chips used exist. Unplaced: the lower bound on cores fits all chips."""
    lim = target.limits
    if lim.chips is None:
        return []
    fix = (
        "use a system with more chips, or need fewer cores: fewer weight bits, prune "
        "synapses, smaller layers"
    )
    placed = [pl for p in net.populations.values() for pl in p.placement or ()]
    if placed:
        chips = max(pl.chip for pl in placed) + 1
        if chips <= lim.chips:
            return []
        return [Violation("system-chips", "(network)", "chips", chips, lim.chips, fix)]
    if lim.cores_per_chip is None or not net.quantized:
        return []
    bounds = cost.core_lower_bounds(net, lim)
    if not bounds:
        return []
    binding = max(bounds, key=lambda k: bounds[k])
    need, have = bounds[binding], lim.cores_per_chip * lim.chips
    if need <= have or binding == "neurons":  # neurons: reported by system-neurons
        return []
    return [
        Violation("system-cores", "(network)", f"cores (at least, by {binding})", need, have, fix)
    ]


_CORE_FIX = {
    "neurons": "re-run map: the placement puts too many neurons on one core",
    "populations": "re-run map: the target builds at most this many populations into a core",
    "synapse memory (bits)": "fewer weight bits, prune synapses, or split the layer",
    "fan-in axons": "split the layer's fan-in (fewer distinct sources per core) or prune",
    "fan-out axons": "split the source layer or group its destinations on fewer cores",
}


def placed_cores_within_limits(net: Net, target: Target) -> list[Violation]:
    """Every placed core: neurons, populations, synapse memory, fan-in and fan-out axons
    within limits."""
    lim = target.limits
    if not net.quantized or not any(p.placement for p in net.populations.values()):
        return []
    found = []
    for u in cost.core_usage(net, lim):
        node = f"chip {u.chip} core {u.core} ({', '.join(u.populations)})"
        for resource, used, limit in (
            ("neurons", u.neurons, lim.neurons_per_core),
            ("populations", len(u.populations), lim.populations_per_core),
            ("synapse memory (bits)", u.synapse_bits, lim.synapse_memory_bits_per_core),
            ("fan-in axons", u.fan_in, lim.fan_in_axons_per_core),
            ("fan-out axons", u.fan_out, lim.fan_out_axons_per_core),
        ):
            if limit is not None and used > limit:
                found.append(
                    Violation("core-capacity", node, resource, used, limit, _CORE_FIX[resource])
                )
    return found


def placement_covers_every_neuron(net: Net, target: Target) -> list[Violation]:
    """A placed population's ranges cover each of its neurons exactly once."""
    found = []
    for pop in net.populations.values():
        if pop.placement is None:
            continue
        ranges = sorted((pl.start, pl.stop) for pl in pop.placement)
        ends = [0] + [stop for _, stop in ranges]
        if [start for start, _ in ranges] != ends[:-1] or ends[-1] != pop.size:
            found.append(
                Violation(
                    "placement-coverage",
                    pop.name,
                    "placed neuron ranges",
                    ranges,
                    f"[0, {pop.size}) exactly once",
                    "re-run the map pass",
                )
            )
    return found


def _hidden(net: Net) -> list[str]:
    """The populations that are not read-outs (``Net.readouts``): a Xylo core's hidden ones."""
    readouts = net.readouts()
    return [k for k in net.populations if k not in readouts]


def _recurrent_fan_out(net: Net, synapse: int | None = None) -> npt.NDArray[np.int64]:
    """Per hidden neuron (hidden populations in order), its synapses to hidden neurons (into
    the synaptic current ``synapse`` of their targets; None: into either)."""
    hidden = _hidden(net)
    parts = []
    for name in hidden:
        deg = np.zeros(net.populations[name].size, np.int64)
        for p in net.projections:
            if p.src == name and p.dst in hidden and synapse in (None, p.synapse):
                deg += np.diff(sp.csc_matrix(cost.codes_of(p)).indptr)
        parts.append(deg)
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def core_sizes_fit(net: Net, target: Target) -> list[Violation]:
    """A core of three matrices (Xylo): every input channel, hidden neuron (alias neurons
    included, which carry a fan-out beyond ``hidden_fan_out``) and read-out neuron within
    the limit (``input-channels``, ``hidden-neurons``, ``output-neurons``)."""
    lim = target.limits
    hidden = _hidden(net)
    aliases = 0
    if lim.hidden_fan_out is not None and lim.aliases_per_neuron:
        fan_out = _recurrent_fan_out(net)
        aliases = int(np.sum(np.maximum(0, -(-fan_out // lim.hidden_fan_out) - 1)))
    n_hidden = sum(net.populations[k].size for k in hidden)
    checks = [
        (
            "input-channels",
            "(inputs)",
            "input channels",
            sum(net.size_of(k) for k in net.inputs),
            lim.input_channels,
            "reduce the input features (e.g. fewer filter-bank channels)",
        ),
        (
            "hidden-neurons",
            f"({', '.join(hidden)})" if hidden else "(network)",
            "hidden neurons" + (f" ({n_hidden} + {aliases} alias neurons)" if aliases else ""),
            n_hidden + aliases,
            lim.hidden_neurons,
            "smaller hidden layers, or fewer recurrent synapses per neuron (alias neurons)",
        ),
        (
            "output-neurons",
            f"({', '.join(net.readouts())})",
            "read-out neurons",
            sum(net.populations[k].size for k in net.readouts()),
            lim.output_neurons,
            "fewer classes, or read a hidden population",
        ),
    ]
    return [
        Violation(rule, node, resource, used, limit, fix)
        for rule, node, resource, used, limit, fix in checks
        if limit is not None and used > limit
    ]


def recurrent_synapses_fit(net: Net, target: Target) -> list[Violation]:
    """Recurrent synapses (between hidden populations): at most ``hidden_fan_out`` from one
    neuron when the target has no alias neurons to carry more (``recurrent-fan-out``), and at
    most ``synapse_bank_entries`` in each synaptic state (``synapse-bank-entries``: the
    synapses into the first currents, and those into the second ones)."""
    lim = target.limits
    if lim.hidden_fan_out is None and lim.synapse_bank_entries is None:
        return []
    fan_out = _recurrent_fan_out(net)
    found = []
    if lim.hidden_fan_out is not None and not lim.aliases_per_neuron and fan_out.size:
        worst = int(np.argmax(fan_out))
        if fan_out[worst] > lim.hidden_fan_out:
            found.append(
                Violation(
                    "recurrent-fan-out",
                    f"hidden neuron {worst}",
                    "recurrent synapses of one neuron",
                    int(fan_out[worst]),
                    lim.hidden_fan_out,
                    "prune the recurrent weights",
                )
            )
    for synapse in (0, 1):  # one bank per synaptic current
        entries = int(_recurrent_fan_out(net, synapse).sum())
        if lim.synapse_bank_entries is not None and entries > lim.synapse_bank_entries:
            found.append(
                Violation(
                    "synapse-bank-entries",
                    "(recurrent matrix)" if synapse == 0 else "(recurrent matrix, synapse 1)",
                    "recurrent synapses in one synaptic state",
                    entries,
                    lim.synapse_bank_entries,
                    "prune the recurrent weights",
                )
            )
    return found


def core_structure_fits(net: Net, target: Target) -> list[Violation]:
    """A core of three matrices (targets with ``output_neurons``): no input reaches a
    read-out directly (``input-to-output``: there is no such matrix); every neuron spikes
    (``non-spiking``); hidden and read-out neurons have the chip's spike levels
    (``spike-levels``); projections of one matrix share one weight shift
    (``weight-shift-per-matrix``, where the format says so)."""
    lim = target.limits
    if lim.output_neurons is None:
        return []
    readouts = set(net.readouts())
    found = [
        Violation(
            "input-to-output",
            p.name,
            "projection",
            f"{p.src} (input) -> {p.dst} (read-out)",
            "inputs reach hidden neurons only",
            "put a hidden layer between the input and the read-out",
        )
        for p in net.projections
        if p.src in net.inputs and p.dst in readouts
    ]
    for name, pop in net.populations.items():
        if not pop.spiking:
            found.append(
                Violation(
                    "non-spiking",
                    name,
                    "neuron",
                    f"{pop.node_type} (outputs its voltage)",
                    "spiking neurons",
                    "give it a threshold (LIF or CubaLIF)",
                )
            )
            continue
        want = lim.output_spike_levels if name in readouts else lim.hidden_spike_levels
        if want is not None and pop.levels != want:
            found.append(
                Violation(
                    "spike-levels",
                    name,
                    f"spike levels of a {'read-out' if name in readouts else 'hidden'} neuron",
                    pop.levels,
                    want,
                    f"set metadata snn_deploy.spike_levels = {want} on the node (train with "
                    "it: the chip's neurons emit that many)",
                )
            )
    numeric = net.numeric
    if numeric is not None and numeric.weight_exp_scope is WeightExpScope.MATRIX:
        exps: dict[str, set[int]] = {}
        for p in net.projections:
            if p.fixed is not None:
                exps.setdefault(net.matrix_of(p), set()).add(p.fixed.exp)
        found += [
            Violation(
                "weight-shift-per-matrix",
                f"({matrix} matrix)",
                "weight exponents",
                sorted(e),
                "one per matrix",
                "quantize with the target's format (the default quantize pass)",
            )
            for matrix, e in exps.items()
            if len(e) > 1
        ]
    return found


DESIGN_RULES: list[Callable[[Net, Target], list[Violation]]] = [
    synaptic_currents_supported,
    reset_mode_supported,
    reset_timing_supported,
    threshold_compare_supported,
    product_registers_fit,
    spike_payload_fits,
    delay_within_limit,
    neurons_fit_system,
    neuron_fits_core,
    neuron_fan_out_fits_core,
    cores_fit_system,
    placement_covers_every_neuron,
    placed_cores_within_limits,
    core_sizes_fit,
    recurrent_synapses_fit,
    core_structure_fits,
]


def check_design_rules(net: Net, target: Target) -> None:
    """Run every rule; raise one ``DesignRuleError`` listing all violations.

    Product units the target cannot run are reported first and alone: the other rules count
    core resources of populations and projections, which such a unit has no place in.
    """
    raise_violations(products_supported(net, target), target)
    raise_violations([v for rule in DESIGN_RULES for v in rule(net, target)], target)


def raise_violations(found: list[Violation], target: Target) -> None:
    """Raise one ``DesignRuleError`` listing ``found``, if it is not empty."""
    if found:
        lines = "\n  ".join(str(v) for v in found)
        raise DesignRuleError(
            f"{len(found)} design-rule violation(s) for target {target.name!r}:\n  {lines}",
            found,
        )
