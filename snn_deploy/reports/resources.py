"""Resource and quantization summaries of a quantized net (pure: dicts of plain values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.ir.net import Net
from snn_deploy.passes.quantize import input_gain
from snn_deploy.target import cost
from snn_deploy.target.schema import Target


def resources(net: Net, target: Target) -> dict[str, Any]:
    """Neurons, synapses, weight bits and the lower bound on cores the limits imply
    (``target.cost.core_lower_bounds``)."""
    spec = net.numeric
    assert spec is not None
    pops: list[dict[str, Any]] = []
    for pop in net.populations.values():
        synapses = sum(p.fixed.codes.nnz for p in net.incoming(pop.name) if p.fixed is not None)
        pops.append(
            {
                "name": pop.name,
                "type": pop.node_type,
                "neurons": pop.size,
                "synapses_in": int(synapses),
                "reset": pop.reset.value,
                "spike_levels": pop.levels,
            }
        )
    neurons = sum(p["neurons"] for p in pops)
    synapses = sum(p["synapses_in"] for p in pops)
    bits = synapses * spec.weight.width
    bounds = cost.core_lower_bounds(net, target.limits)
    return {
        "neurons": neurons,
        "synapses": synapses,
        "synapse_bits": bits,
        "cores_lower_bound": max(bounds.values()) if bounds else None,
        "populations": pops,
    }


def _signed_bits(codes: npt.NDArray[np.int64]) -> int:
    """Bits of the narrowest signed integer holding every code (0 for no codes).

    Examples:
        >>> [_signed_bits(np.array(c)) for c in ([], [0], [1], [-1], [127], [-128], [128])]
        [0, 1, 2, 1, 8, 8, 9]
    """
    if codes.size == 0:
        return 0
    hi, lo = int(codes.max()), int(codes.min())
    return max(hi.bit_length() + 1 if hi > 0 else 1, (-lo - 1).bit_length() + 1 if lo < 0 else 1)


def _frobenius(m: sp.spmatrix) -> float:
    return float(np.sqrt(np.sum(np.square(sp.csr_matrix(m).data))))


def quantization(net: Net) -> dict[str, Any]:
    """Per population and projection: scale, exponents, clipped values, relative weight error."""
    spec = net.numeric
    assert spec is not None
    pops, projs = [], []
    for pop in net.populations.values():
        f = pop.fixed
        assert f is not None
        vth_real = (
            None if pop.threshold is None else pop.threshold * f.scale / 2**spec.threshold_shift
        )
        clipped = (
            0 if vth_real is None else int(np.count_nonzero(np.rint(vth_real) > spec.threshold.max))
        )
        pops.append(
            {
                "name": pop.name,
                "scale": f.scale,
                "du": np.unique(f.du).tolist(),
                "dv": np.unique(f.dv).tolist(),
                "vth_max": None if f.vth is None else int(f.vth.max()),
                "clipped_thresholds": clipped,
            }
        )
    for proj in net.projections:
        sf, dst_fixed = proj.fixed, net.populations[proj.dst].fixed
        assert sf is not None
        assert dst_fixed is not None
        scale = dst_fixed.scale
        # the weights the codes stand for: times the destination's input gain, where the
        # format decays a step's own input (Xylo, docs/SEMANTICS.md §2.4)
        gain = input_gain(net.populations[proj.dst], spec)
        weight = proj.weight if gain is None else sp.csr_matrix(sp.diags(gain) @ proj.weight)
        real = weight.data * scale / 2.0 ** (spec.input_shift + sf.exp)
        back = sf.codes.astype(np.float64) * (2.0 ** (spec.input_shift + sf.exp) / scale)
        err = _frobenius(back - weight)  # sparse: a conv layer's dense matrix is GBs
        norm = _frobenius(weight)
        projs.append(
            {
                "name": proj.name,
                "src": proj.src,
                "dst": proj.dst,
                "exp": sf.exp,
                "rounding": sf.rounding,
                "max_code": int(abs(sf.codes).max()) if sf.codes.nnz else 0,
                "bits_used": _signed_bits(sf.codes.data),
                "clipped_weights": int(np.count_nonzero(np.abs(np.rint(real)) > spec.weight.max)),
                "relative_weight_error": err / norm if norm else 0.0,
            }
        )
    return {"populations": pops, "projections": projs}
