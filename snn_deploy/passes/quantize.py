"""``quantize``: float ``Net`` -> the target's fixed-point formats (docs/SEMANTICS.md §3).

Per population one power-of-two voltage scale ``S`` (integer units per unit of ``v``) is shared
by threshold, bias, current and voltage; each projection gets one weight exponent. ``S`` is the
largest power of two for which the threshold mantissa, every weight (after its exponent), the
bias and the worst-case current all fit their registers, so nothing wraps that could be avoided.
Every cast saturates; how many values were clipped is recomputed by ``reports.quantization``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.net import (
    Net,
    NeuronFixed,
    NumericSpec,
    Population,
    Projection,
    SynapseFixed,
)
from snn_deploy.passes.base import Pass, PassContext

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Quantize(Pass):
    """Fit every population and projection to the target's ``NumericSpec``.

    Requires: a verified float ``Net``; inputs and spikes of magnitude at most 1.
    Guarantees: ``net.numeric`` is the target's; every population has ``fixed`` and every
    projection ``fixed``; float fields are kept unchanged for comparison and reports.
    """

    name: ClassVar[str] = "quantize"

    def run(self, ir: object, ctx: PassContext) -> Net:
        """Quantize ``ir`` (a float Net) for ``ctx.target``."""
        if not isinstance(ir, Net) or ir.quantized:
            raise TypeError("quantize takes a float Net")
        return quantize(ir, ctx.target.numeric)


def quantize(net: Net, spec: NumericSpec) -> Net:
    """Quantize every population of ``net`` and its incoming projections to ``spec``."""
    pops = dict(net.populations)
    projs: dict[int, Projection] = {}
    for name, pop in net.populations.items():
        incoming = [(i, p) for i, p in enumerate(net.projections) if p.dst == name]
        scale = choose_scale(pop, [p for _, p in incoming], spec)
        pops[name] = dataclasses.replace(pop, fixed=_neuron_fixed(pop, scale, spec))
        for i, p in incoming:
            projs[i] = dataclasses.replace(p, fixed=_synapse_fixed(p, scale, spec))
    return net.replace(
        populations=pops,
        projections=tuple(projs[i] for i in range(len(net.projections))),
        numeric=spec,
    )


def choose_scale(pop: Population, incoming: list[Projection], spec: NumericSpec) -> float:
    """The largest power of two ``S`` for which every register of ``pop`` has room.

    Examples:
        A LIF with threshold 0.1 fed by one weight of 0.04 is limited by the weight: with the
        largest exponent (7) the code ``0.04 * S / 2**6 / 2**7`` must stay <= 127.

        >>> import scipy.sparse as sp
        >>> from snn_deploy.ir.types import ResetMode
        >>> from snn_deploy.target.load import load_target
        >>> pop = Population(name="p", node_type="LIF", shape=(1,), alpha=1.0, beta=0.04,
        ...                  bias=0.0, threshold=0.1, reset=ResetMode.ZERO)
        >>> proj = Projection(name="w", src="x", dst="p", weight=sp.csr_matrix([[0.04]]))
        >>> choose_scale(pop, [proj], load_target("sim").numeric) == 2**24
        True
    """
    limits: list[float] = []  # upper bounds on log2(S)
    if pop.threshold is not None and np.any(pop.threshold > 0):
        top = spec.threshold.max * 2**spec.threshold_shift
        limits.append(math.log2(top / float(np.max(pop.threshold))))
    for p in incoming:
        w = float(np.max(np.abs(p.weight.data), initial=0.0))
        if w > 0:
            top = spec.weight.max * 2.0 ** (spec.weight_exp_max + spec.input_shift)
            limits.append(math.log2(top / w))
    row_sums = sum(
        (abs(p.weight) @ np.ones(p.weight.shape[1]) for p in incoming), np.zeros(pop.size)
    )
    u_bound = float(np.max(row_sums / pop.alpha, initial=0.0))
    if u_bound > 0:
        limits.append(math.log2((2 ** (spec.current.width - 1) - 1) / u_bound))
    if np.any(pop.bias != 0):
        top = spec.bias.max * 2.0**spec.bias_exp_max
        limits.append(math.log2(top / float(np.max(np.abs(pop.bias)))))
    if not limits:
        return 1.0
    return 2.0 ** math.floor(min(limits))


def _decay_code(fraction: FloatArray, offset: int, spec: NumericSpec) -> npt.NDArray[np.int64]:
    codes, _ = spec.decay.quantize(fraction * 2**spec.decay.width - offset)
    return codes


def _neuron_fixed(pop: Population, scale: float, spec: NumericSpec) -> NeuronFixed:
    vth = None
    if pop.threshold is not None:
        vth, _ = spec.threshold.quantize(pop.threshold * scale / 2**spec.threshold_shift)
    target = pop.bias * scale
    exp = np.zeros(pop.size, dtype=np.int64) + spec.bias_exp_min
    while np.any(over := (np.abs(target) / 2.0**exp > spec.bias.max) & (exp < spec.bias_exp_max)):
        exp[over] += 1
    mant, _ = spec.bias.quantize(target / 2.0**exp)
    return NeuronFixed(
        scale=scale,
        du=_decay_code(pop.alpha, spec.current_decay_offset, spec),
        dv=_decay_code(pop.beta, spec.voltage_decay_offset, spec),
        vth=vth,
        bias_mant=mant,
        bias_exp=exp,
    )


def _synapse_fixed(proj: Projection, scale: float, spec: NumericSpec) -> SynapseFixed:
    real = proj.weight * (scale / 2**spec.input_shift)
    peak = float(np.max(np.abs(real.data), initial=0.0))
    exp = 0
    if peak > 0:
        exp = math.ceil(math.log2(peak / spec.weight.max))
        exp = min(max(exp, spec.weight_exp_min), spec.weight_exp_max)
    codes = real.copy()
    codes.data, _ = spec.weight.quantize(real.data / 2.0**exp)
    codes.eliminate_zeros()
    return SynapseFixed(codes=codes, exp=exp)
