"""``quantize``: float ``Net`` -> the target's fixed-point formats (docs/SEMANTICS.md §3).

Per population one power-of-two voltage scale ``S`` (integer units per unit of ``v``) is shared
by threshold, bias, current and voltage; each projection gets one weight exponent. ``S`` is the
largest power of two for which the threshold mantissa, every weight (after its exponent), the
bias and the largest current (worst case, or measured on calibration inputs) all fit their
registers, so nothing wraps that could be avoided.
Every cast saturates; how many values were clipped is recomputed by ``reports.quantization``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import InputFileError, PassError, QuantizationError
from snn_deploy.ir.net import (
    Attention,
    Net,
    NeuronFixed,
    NumericSpec,
    Operand,
    Population,
    Product,
    ProductFixed,
    Projection,
    SynapseFixed,
)
from snn_deploy.ir.types import CurrentUpdate, DecayForm, FixedPoint, WeightExpScope
from snn_deploy.passes.base import Pass, PassContext

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


CALIBRATION_MARGIN = 2.0
"""With calibration data, the current register is sized for twice the largest observed |u|."""

COMPENSATION_DAMPING = 0.1
"""Ridge on the calibration Gram matrix, as a fraction of its mean diagonal (GPTQ uses 0.01; on
the multi-level KWS model 0.01 to 1 all gave 98.9-99.1 % float agreement on 800 training clips
outside the calibration set, docs/SEMANTICS.md §3)."""

MAX_PRODUCT_BITS = 62
"""Widest product-unit register the simulator holds exactly (int64 with a sign bit to spare)."""

COMPENSATION_BLOCK = 128
"""Columns rounded between two matrix-product updates of the rest (the result does not depend
on it)."""


@dataclass(frozen=True, kw_only=True)
class Quantize(Pass):
    """Fit every population and projection to the target's ``NumericSpec``.

    ``method`` chooses what the scale must leave room for: ``max-abs`` (the default) the
    worst case (every input active every step, the largest weight exact); ``percentile`` the
    same, but each projection's exponent is set by the ``percentile``-th |weight|, so rarer
    larger weights saturate (counted in the report) to give the rest more resolution;
    ``calibrate`` twice the largest |u| seen when the float net runs on the calibration
    inputs in ``ctx.calibration`` (``--calibrate``), instead of the worst case.

    Requires: a verified float ``Net``; inputs of magnitude at most ``ctx.input_max`` (default
    1: binary spikes; ``max-abs``, ``percentile``); a population's spikes are at most its
    ``levels``.
    Guarantees: ``net.numeric`` is the target's, and ``net.input_latency`` its format's;
    every population has ``fixed`` and every projection ``fixed`` (one exponent per chip
    matrix where the format says so); float fields are kept unchanged for comparison and
    reports.
    """

    name: ClassVar[str] = "quantize"
    method: str = "max-abs"
    percentile: float = 99.9

    def run(self, ir: object, ctx: PassContext) -> Net:
        """Quantize ``ir`` (a float Net) for ``ctx.target``."""
        if not isinstance(ir, Net) or ir.quantized:
            raise PassError("quantize takes a float net: put it once, after lower")
        if self.method not in ("max-abs", "percentile", "calibrate"):
            raise QuantizationError(
                f"quantize: unknown method {self.method!r}; use max-abs, percentile or calibrate"
            )
        if self.method == "calibrate" and ctx.calibration is None:
            raise QuantizationError(
                "quantize{method=calibrate} needs calibration inputs (--calibrate)"
            )
        peaks, grams = None, None
        if self.method == "calibrate" and ctx.calibration is not None:
            peaks = {k: CALIBRATION_MARGIN * v for k, v in ctx.calibration.peaks.items()}
            grams = ctx.calibration.grams
        pct = self.percentile if self.method == "percentile" else 100.0
        return quantize(
            ir,
            ctx.target.numeric,
            percentile=pct,
            state_peaks=peaks,
            grams=grams,
            input_max=ctx.input_max,
        )


def quantize(
    net: Net,
    spec: NumericSpec,
    *,
    percentile: float = 100.0,
    state_peaks: Mapping[str, float] | None = None,
    grams: Mapping[int, FloatArray] | None = None,
    input_max: Mapping[str, float] | None = None,
) -> Net:
    """Quantize every population of ``net`` and its incoming projections to ``spec``.

    Args:
        net: a float net.
        spec: the target's integer arithmetic.
        percentile: which |weight| of each projection sets its exponent (100: the largest).
        state_peaks: per population, the largest |u| (float units) the current register must
            hold; None: the worst case for binary inputs and spikes of every level.
        grams: per index into ``net.projections``, the Gram matrix of its filtered calibration
            activity (``calibration.Calibration``): that projection rounds with error
            compensation; the others round to nearest.
        input_max: per input, the largest |payload| (``input_ranges``); absent: 1.
    """
    grams = grams or {}
    tops: dict[str, float] = {k: (input_max or {}).get(k, 1.0) for k in net.inputs}
    tops.update({k: float(p.levels) for k, p in net.populations.items()})
    pops = dict(net.populations)
    projs: dict[int, Projection] = {}
    units: dict[str, ProductFixed] = {}
    settled: set[str] = set()
    used: dict[int, tuple[Projection, float]] = {}  # the weights and scale each was cast with
    pending = list(net.populations)
    while pending:  # a population fed by a unit waits for the scales the unit's registers need
        ready = [k for k in pending if _ready(net, k, pops)]
        if not ready:
            raise QuantizationError(
                f"quantize: populations {pending} feed Gate values that depend on themselves; "
                "a Gate's value operand must not depend on the Gate's own output"
            )
        for name in ready:
            pending.remove(name)
            for src in {p.src for p in net.incoming(name)} & set(net.products):
                if src not in units:
                    units[src], tops[src] = product_fixed(net.products[src], pops, spec, tops)
            pop = net.populations[name]
            gains = [input_gain(pop, spec, synapse) for synapse in range(pop.currents)]
            incoming = [
                (i, _gained(_per_integer_unit(p, units), gains[p.synapse]))
                for i, p in enumerate(net.projections)
                if p.dst == name
            ]
            peak = None if state_peaks is None else state_peaks.get(name)
            scale = pop.voltage_scale or choose_scale(
                pop,
                [p for _, p in incoming],
                spec,
                percentile=percentile,
                state_peak=peak,
                source_levels=tops,
            )
            pops[name] = dataclasses.replace(pop, fixed=_neuron_fixed(pop, scale, spec))
            for i, p in incoming:
                if p.src in net.products and p.src not in settled:  # the first reader decides
                    settled.add(p.src)
                    units[p.src] = gate_shift(units[p.src], p, scale, spec)
                    p = _gained(_per_integer_unit(net.projections[i], units), gains[p.synapse])
                fixed = _synapse_fixed(p, scale, spec, percentile, grams.get(i))
                projs[i] = dataclasses.replace(net.projections[i], fixed=fixed)
                used[i] = (p, scale)
    for name, unit in net.products.items():  # units that feed no population
        if name not in units:
            units[name], _ = product_fixed(unit, pops, spec, tops)
    if spec.weight_exp_scope is WeightExpScope.MATRIX:
        for i, exp in matrix_exponents(net, projs).items():
            if projs[i].fixed is not None and projs[i].fixed.exp != exp:  # type: ignore[union-attr]
                p, scale = used[i]
                fixed = _synapse_fixed(p, scale, spec, percentile, grams.get(i), exp=exp)
                projs[i] = dataclasses.replace(net.projections[i], fixed=fixed)
    _warn_degenerate_decays(pops.values(), net.dt, spec)
    return net.replace(
        populations=pops,
        projections=tuple(projs[i] for i in range(len(net.projections))),
        numeric=spec,
        products={k: dataclasses.replace(u, fixed=units[k]) for k, u in net.products.items()},
        input_latency=spec.input_latency,  # the target's input timing (lower sets it too)
    )


def matrix_exponents(net: Net, projs: Mapping[int, Projection]) -> dict[int, int]:
    """Per projection index, the exponent its chip matrix shares (``Net.matrix_of``): the
    largest of the matrix's projections, so no code of any of them leaves the weight format."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(net.projections):
        groups.setdefault(net.matrix_of(p), []).append(i)
    out = {}
    for members in groups.values():
        top = max(projs[i].fixed.exp for i in members)  # type: ignore[union-attr]
        out.update(dict.fromkeys(members, top))
    return out


def input_gain(pop: Population, spec: NumericSpec, synapse: int = 0) -> FloatArray | None:
    """Per neuron, the gain on incoming weights that makes a format whose current decays the
    step's own input (``CurrentUpdate.ADD_THEN_DECAY``: ``u = kept(u + a)``) follow the float
    ``u = (1 - α)·u + a``: ``1 / (1 - lost)``, ``lost`` the fraction the current's decay code
    removes (exact where α is a code's fraction); None for Lava's order (no gain). ``synapse``
    1: of the second current (``alpha2``).

    Examples:
        With Xylo's dash decays, α = 1/4 is dash 2 (gain 4/3) and α = 1 dash 1 (gain 2):

        >>> from snn_deploy.ir.types import ResetMode
        >>> from snn_deploy.target.load import load_target
        >>> xylo = dataclasses.replace(
        ...     load_target("sim").numeric, decay=FixedPoint(width=4, signed=False),
        ...     current_decay_offset=0, decay_form=DecayForm.SHIFT,
        ...     current_update=CurrentUpdate.ADD_THEN_DECAY)
        >>> pop = Population(name="p", node_type="CubaLIF", shape=(2,), alpha=[0.25, 1.0],
        ...                  beta=0.5, bias=0.0, threshold=1.0, reset=ResetMode.SUBTRACT)
        >>> input_gain(pop, xylo).tolist()
        [1.3333333333333333, 2.0]
    """
    if spec.current_update is CurrentUpdate.DECAY_THEN_ADD:
        return None
    alpha = pop.alpha if synapse == 0 else pop.alpha2
    assert alpha is not None  # Net.verify: a projection into u2 needs one
    return 1.0 / (1.0 - decay_fraction(_decay_code(alpha, spec, current=True), spec, True))


def decay_fraction(code: IntArray, spec: NumericSpec, current: bool) -> FloatArray:
    """The fraction of ``u`` (``current``) or ``v`` a decay code removes per step (for a
    large state; the shift form removes at least 1 of a small one)."""
    offset = spec.current_decay_offset if current else spec.voltage_decay_offset
    if spec.decay_form is DecayForm.SHIFT:
        out: FloatArray = np.exp2(-(code + offset).astype(np.float64))
        return out
    return (code + offset) / 2.0**spec.decay.width


def _gained(proj: Projection, gain: FloatArray | None) -> Projection:
    """``proj`` with each destination row's weights times ``gain`` (None: unchanged)."""
    if gain is None:
        return proj
    return dataclasses.replace(proj, weight=sp.diags(gain) @ proj.weight)


def input_ranges(
    net: Net,
    data: Mapping[str, Mapping[str, FloatArray]],
    declared: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per input of ``net``, the largest |payload| quantization sizes for, and where it is from.

    An input's range is the one the model declares (``declared``: NIR metadata
    ``snn_deploy.input_max`` of the Input node); else binary spikes (|x| <= 1) unless the data
    the compile is given shows larger (graded, integer) payloads: then the largest |value|
    observed in it. ``data`` maps where the arrays came from (``--calibrate``, ``--inputs``) to
    ``{input name: [batch, time, size]}`` arrays.

    Raises:
        InputFileError: the data holds a value beyond an input's declared range.

    Examples:
        >>> import numpy as np
        >>> net = Net(dt=1e-3, inputs={"x": (2,)}, populations={}, projections=(), outputs={})
        >>> input_ranges(net, {"--inputs": {"x": np.array([[[0.0, -7.0]]])}})
        {'x': {'max_abs': 7.0, 'source': 'observed in --inputs'}}
        >>> input_ranges(net, {}, {"x": 15.0})
        {'x': {'max_abs': 15.0, 'source': 'declared (snn_deploy.input_max)'}}
        >>> input_ranges(net, {})
        {'x': {'max_abs': 1.0, 'source': 'binary spikes (default)'}}
    """
    out: dict[str, dict[str, Any]] = {}
    for name in net.inputs:
        seen = {k: float(np.max(np.abs(d[name]), initial=0.0)) for k, d in data.items()}
        where = max(seen, key=lambda k: seen[k], default=None)
        bound = (declared or {}).get(name)
        if bound is not None and where is not None and seen[where] > bound:
            raise InputFileError(
                f"input {name!r}: {where} holds |x| = {seen[where]:g}, beyond the range "
                f"{bound:g} the model declares (metadata snn_deploy.input_max); the registers "
                "would wrap"
            )
        if bound is not None:
            out[name] = {"max_abs": bound, "source": "declared (snn_deploy.input_max)"}
        elif where is None or seen[where] <= 1.0:
            out[name] = {"max_abs": 1.0, "source": "binary spikes (default)"}
        else:
            out[name] = {"max_abs": seen[where], "source": f"observed in {where}"}
    return out


def _ready(net: Net, name: str, pops: Mapping[str, Population]) -> bool:
    """True once every unit feeding ``name`` has the voltage scales of its value operands."""
    return all(
        pops[op.src].fixed is not None
        for p in net.incoming(name)
        if p.src in net.products
        for op in net.products[p.src].operands
        if op.src in pops and not pops[op.src].spiking
    )


def _per_integer_unit(proj: Projection, units: Mapping[str, ProductFixed]) -> Projection:
    """``proj`` with float weights per integer unit of its source: a unit's integer output is
    ``ProductFixed.scale`` times its float output, so the weights are divided by it (exact:
    a power of two). Other sources' integer outputs equal their float ones."""
    unit = units.get(proj.src)
    if unit is None or unit.scale == 1.0:
        return proj
    return dataclasses.replace(proj, weight=proj.weight / unit.scale)


def _operand_range(
    op: Operand, pops: Mapping[str, Population], spec: NumericSpec, tops: Mapping[str, float]
) -> tuple[int, float]:
    """The largest |integer| an operand can be and its integer units per float unit: a spiking
    population's top level (scale 1), a non-spiking one's voltage register (its voltage scale),
    an input its largest |payload| in ``tops`` (as for the worst-case current)."""
    pop = pops.get(op.src)
    if pop is None:
        return math.ceil(tops.get(op.src, 1.0)), 1.0
    if pop.spiking:
        return pop.levels, 1.0
    assert pop.fixed is not None  # quantize orders the populations so (``_ready``)
    return spec.voltage.max, pop.fixed.scale


def product_fixed(
    unit: Product,
    pops: Mapping[str, Population],
    spec: NumericSpec,
    tops: Mapping[str, float] | None = None,
) -> tuple[ProductFixed, float]:
    """The registers of a product unit, sized for the worst case, and its largest |output|.

    Attention (docs/SEMANTICS.md §4.4): with operand tops ``Q, K, V`` (an input's is its
    largest |payload| in ``tops``, absent: 1) and ``d = size/heads``, the state of a head never
    exceeds ``K·V·h`` with ``h = steps`` (plain: ``steps`` updates) or
    ``h = min(steps, 2**d_h + 1)`` (decayed: the fixed point of ``S - trunc(S/2**d) + K·V`` is
    below ``K·V·(2**d_h + 1)``); the output never exceeds ``d·Q·max S``. A gate's output
    never exceeds the product of its operands' tops. Registers are signed and one bit wider
    than the bound's magnitude.

    Raises:
        QuantizationError: a register would need more than 62 bits (int64 state).
    """
    ranges = [_operand_range(op, pops, spec, tops or {}) for op in unit.operands]
    if isinstance(unit, Attention):
        (q, _), (k, _), (v, _) = ranges
        horizon = max(unit.steps if d == 0 else min(unit.steps, 2**d + 1) for d in unit.decay)
        state_max = k * v * horizon
        out_max = (unit.size // unit.heads) * q * state_max
        fixed = ProductFixed(
            output=_register(unit, "output", out_max),
            state=_register(unit, "state", state_max),
        )
        return fixed, float(out_max)
    (a, a_scale), (g, _) = ranges
    return ProductFixed(output=_register(unit, "output", a * g), scale=a_scale), float(a * g)


def gate_shift(
    fixed: ProductFixed, proj: Projection, scale: float, spec: NumericSpec
) -> ProductFixed:
    """``fixed`` with the output shift its reader ``proj`` (per integer unit, into a population
    of voltage scale ``scale``) needs: a product with a voltage operand carries that voltage's
    scale (e.g. 2**20), so the reader's codes would need an exponent below the smallest; the
    product is shifted right by the missing bits instead (no more than its scale has), and
    its register narrowed by as many. Other units are returned unchanged.
    """
    peak = _weight_peak(proj, 100.0) * scale / 2**spec.input_shift
    if fixed.scale == 1.0 or peak == 0:
        return fixed
    exp = math.ceil(math.log2(peak / spec.weight.max))
    shift = min(max(0, spec.weight_exp_min - exp), int(math.log2(fixed.scale)))
    output = FixedPoint(width=max(2, fixed.output.width - shift), signed=True)
    return dataclasses.replace(fixed, output=output, shift=shift, scale=fixed.scale / 2**shift)


def _register(unit: Product, what: str, bound: int) -> FixedPoint:
    width = bound.bit_length() + 1
    if width > MAX_PRODUCT_BITS:
        raise QuantizationError(
            f"{type(unit).__name__} {unit.name!r}: the {what} register needs {width} bits for "
            f"its worst case {bound}, limit {MAX_PRODUCT_BITS}; use fewer spike levels, a "
            "shorter clip (steps) or a decay"
        )
    return FixedPoint(width=width, signed=True)


def _weight_peak(proj: Projection, percentile: float) -> float:
    data = np.abs(proj.weight.data)
    return float(np.percentile(data, percentile)) if data.size else 0.0


def choose_scale(
    pop: Population,
    incoming: list[Projection],
    spec: NumericSpec,
    *,
    percentile: float = 100.0,
    state_peak: float | None = None,
    source_levels: Mapping[str, float] | None = None,
) -> float:
    """The largest power of two ``S`` for which every register of ``pop`` has room.

    The worst-case current (without ``state_peak``) has every source active every step: inputs
    at 1, a population at its top spike level (``source_levels``, absent: 1).

    Examples:
        A LIF with threshold 0.1 fed by one weight of 0.04 is limited by the weight: with the
        largest exponent (7) the code ``0.04 * S / 2**6 / 2**7`` must stay <= 255.

        >>> import scipy.sparse as sp
        >>> from snn_deploy.ir.types import ResetMode
        >>> from snn_deploy.target.load import load_target
        >>> pop = Population(name="p", node_type="LIF", shape=(1,), alpha=1.0, beta=0.04,
        ...                  bias=0.0, threshold=0.1, reset=ResetMode.ZERO)
        >>> proj = Projection(name="w", src="x", dst="p", weight=sp.csr_matrix([[0.04]]))
        >>> choose_scale(pop, [proj], load_target("sim").numeric) == 2**25
        True
    """
    limits: list[float] = []  # upper bounds on log2(S)
    if pop.threshold is not None and np.any(pop.threshold > 0):
        top = spec.threshold.max * 2**spec.threshold_shift
        limits.append(math.log2(top / float(np.max(pop.threshold))))
    for p in incoming:
        w = _weight_peak(p, percentile)
        if w > 0:
            top = spec.weight.max * 2.0 ** (spec.weight_exp_max + spec.input_shift)
            limits.append(math.log2(top / w))
    if state_peak is None:
        top = source_levels or {}
        u_bound = 0.0
        alphas = [pop.alpha] if pop.alpha2 is None else [pop.alpha, pop.alpha2]
        for synapse, alpha in enumerate(alphas):
            row_sums = sum(
                (
                    abs(p.weight) @ np.full(p.weight.shape[1], top.get(p.src, 1.0))
                    for p in incoming
                    if p.synapse == synapse
                ),
                np.zeros(pop.size),
            )
            u_bound = max(u_bound, float(np.max(row_sums / alpha, initial=0.0)))
    else:
        u_bound = state_peak
    if u_bound > 0:
        limits.append(math.log2((2 ** (spec.current.width - 1) - 1) / u_bound))
    if np.any(pop.bias != 0):
        top = spec.bias.max * 2.0**spec.bias_exp_max
        limits.append(math.log2(top / float(np.max(np.abs(pop.bias)))))
    if not limits:
        return 1.0
    return 2.0 ** math.floor(min(limits))


def _decay_code(fraction: FloatArray, spec: NumericSpec, *, current: bool) -> IntArray:
    """The decay code of a per-step fraction lost. Multiply form: ``round(2**bits·f) -
    offset``. Shift form (Xylo's dash): ``round(log2(1/f))`` (Rockpool's rounding of
    ``log2(τ/dt)``), 0 for ``f = 1``, the largest code for ``f = 0``; a current that takes
    its input before decaying (``ADD_THEN_DECAY``) needs a dash of 1 at least, since dash 0
    would discard every input. Saturating casts, as every cast."""
    offset = spec.current_decay_offset if current else spec.voltage_decay_offset
    if spec.decay_form is DecayForm.MULTIPLY:
        codes, _ = spec.decay.quantize(fraction * 2**spec.decay.width - offset)
        return codes
    with np.errstate(divide="ignore"):
        dash = np.where(fraction > 0, np.rint(-np.log2(np.maximum(fraction, 1e-300))), np.inf)
    low = 1 if current and spec.current_update is CurrentUpdate.ADD_THEN_DECAY else 0
    codes, _ = spec.decay.quantize(np.clip(dash - offset, low, spec.decay.max))
    return codes


def _warn_degenerate_decays(pops: Iterable[Population], dt: float, spec: NumericSpec) -> None:
    """One warning per cause when a decay's code turns the dynamics degenerate in every neuron
    of a population: a fraction ``dt/tau`` above 0 that rounds to 0 (``u`` or ``v`` never
    decays) or below 1 that rounds to 1 (nothing is kept from one step to the next), or, in a
    format that cannot drop a current at once (Xylo's dash >= 1), a fraction of 1 (no synaptic
    memory: LIF, IF) that keeps part of ``u``. The float reference keeps the exact fractions;
    a wrong ``--dt`` often shows this way."""
    found: dict[str, list[str]] = {"0 (no decay)": [], "1 (no memory)": [], "below 1": []}
    for pop in pops:
        assert pop.fixed is not None  # quantize set it
        decays = (
            ("u", "tau_syn", pop.alpha, decay_fraction(pop.fixed.du, spec, True)),
            ("v", "tau_mem", pop.beta, decay_fraction(pop.fixed.dv, spec, False)),
        )
        for state, tau, fraction, lost in decays:
            if np.all((fraction > 0) & (lost == 0)):
                cause = "0 (no decay)"
            elif np.all((fraction < 1) & (lost >= 1)):
                cause = "1 (no memory)"
            elif (
                state == "u"
                and spec.current_update is CurrentUpdate.ADD_THEN_DECAY
                and np.all((fraction == 1) & (lost < 1))
            ):
                cause = "below 1"
            else:
                continue
            found[cause].append(
                f"{pop.name!r} ({state}: {tau} {_span(dt / fraction)} s, "
                f"dt/{tau} {_span(fraction)})"
            )
    for kind, where in found.items():
        if not where:
            continue
        what = (
            "the target keeps part of the current each step (a synaptic time constant the "
            "float net does not have)"
            if kind == "below 1"
            else "is --dt right?"
        )
        warnings.warn(
            f"quantize: at dt={dt:g} s the per-step decay rounds to {kind} in every neuron "
            f"of {', '.join(where)}, in {spec.decay.width}-bit decay codes; {what}",
            UserWarning,
            stacklevel=2,
        )


def _span(values: FloatArray) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"


def _neuron_fixed(pop: Population, scale: float, spec: NumericSpec) -> NeuronFixed:
    vth = None
    if pop.threshold is not None and np.any(pop.threshold < 0):
        i = int(np.argmin(pop.threshold))
        raise QuantizationError(
            f"quantize: population {pop.name!r} neuron {i} has threshold "
            f"{float(np.ravel(pop.threshold)[i]):g} < 0, but the target's thresholds are "
            "unsigned (it would become 0 and change when the neuron fires)"
        )
    if pop.threshold is not None:
        vth, _ = spec.threshold.quantize(pop.threshold * scale / 2**spec.threshold_shift)
    target = pop.bias * scale
    exp = np.zeros(pop.size, dtype=np.int64) + spec.bias_exp_min
    while np.any(over := (np.abs(target) / 2.0**exp > spec.bias.max) & (exp < spec.bias_exp_max)):
        exp[over] += 1
    mant, _ = spec.bias.quantize(target / 2.0**exp)
    return NeuronFixed(
        scale=scale,
        du=_decay_code(pop.alpha, spec, current=True),
        dv=_decay_code(pop.beta, spec, current=False),
        vth=vth,
        bias_mant=mant,
        bias_exp=exp,
        du2=None if pop.alpha2 is None else _decay_code(pop.alpha2, spec, current=True),
    )


def _synapse_fixed(
    proj: Projection,
    scale: float,
    spec: NumericSpec,
    percentile: float,
    gram: FloatArray | None = None,
    *,
    exp: int | None = None,
) -> SynapseFixed:
    """The codes of ``proj`` into a population of voltage scale ``scale``, with the smallest
    exponent that keeps them in the weight format, or ``exp`` (a matrix's shared one)."""
    real = proj.weight * (scale / 2**spec.input_shift)
    peak = _weight_peak(proj, percentile) * scale / 2**spec.input_shift
    if exp is None:
        exp = 0
        if peak > 0:
            exp = math.ceil(math.log2(peak / spec.weight.max))
            exp = min(max(exp, spec.weight_exp_min), spec.weight_exp_max)
    if gram is not None and gram.shape != (proj.weight.shape[1],) * 2:
        raise QuantizationError(
            f"quantize: calibration statistics of {proj.name!r} are {gram.shape}, but it has "
            f"{proj.weight.shape[1]} sources (measured on another net?)"
        )
    if gram is None:
        codes = real.copy()
        codes.data, _ = spec.weight.quantize(real.data / 2.0**exp)
    else:
        codes = sp.csr_matrix(compensated_codes(real.toarray() / 2.0**exp, gram, spec.weight))
    codes.eliminate_zeros()
    return SynapseFixed(codes=codes, exp=exp, rounding="nearest" if gram is None else "compensated")


def compensated_codes(real: FloatArray, gram: FloatArray, fmt: FixedPoint) -> IntArray:
    """Round ``real`` (``[dst, src]`` unrounded codes) so that ``codes @ x`` stays close to
    ``real @ x`` for the activity ``x`` whose Gram matrix is ``gram``.

    Columns are rounded in order; each column's rounding error is spread over the columns not
    yet rounded by the least-squares update of GPTQ (Frantar et al., ICLR 2023; the Optimal
    Brain Surgeon step), in blocks of ``COMPENSATION_BLOCK`` columns. ``gram`` gets a ridge of
    ``COMPENSATION_DAMPING`` times its mean diagonal, so a source never active in calibration
    passes no error on and rounds to nearest. Every cast saturates.

    Examples:
        With uncorrelated sources there is nothing to compensate: rounding to nearest.

        >>> fmt = FixedPoint(width=9, signed=True)
        >>> compensated_codes(np.array([[1.4, 2.6, -0.5]]), np.eye(3), fmt).tolist()
        [[1, 3, 0]]

        Two sources that are always active together: the first's error moves to the second.

        >>> compensated_codes(np.array([[1.4, 1.4]]), np.ones((2, 2)), fmt).tolist()
        [[1, 2]]
    """
    size = len(gram)
    ridge = gram + COMPENSATION_DAMPING * np.mean(np.diag(gram)) * np.eye(size)
    upper = np.linalg.cholesky(np.linalg.inv(ridge)).T
    w = np.array(real, dtype=np.float64).T.copy()  # [src, dst]: a column is a contiguous row
    codes = np.empty(w.shape, dtype=np.int64)
    for start in range(0, size, COMPENSATION_BLOCK):
        stop = min(start + COMPENSATION_BLOCK, size)
        errs = np.empty((stop - start, w.shape[1]))
        for j in range(start, stop):
            codes[j], _ = fmt.quantize(w[j])
            errs[j - start] = (w[j] - codes[j]) / upper[j, j]
            w[j + 1 : stop] -= np.outer(upper[j, j + 1 : stop], errs[j - start])
        w[stop:] -= upper[start:stop, stop:].T @ errs
    return codes.T
