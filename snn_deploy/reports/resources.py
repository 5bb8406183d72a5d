"""Resource and quantization summaries of a quantized net (pure: dicts of plain values)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.ir.net import Net, Projection
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
        weight, back, _ = _dequantized(net, proj)
        real = weight.data * scale / 2.0 ** (spec.input_shift + sf.exp)
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


def _dequantized(net: Net, proj: Projection) -> tuple[sp.csr_matrix, sp.csr_matrix, float]:
    """A projection's float weights and the weights its integer codes stand for, both as the
    destination sees them (times its input gain, where the format decays a step's own input:
    Xylo, docs/SEMANTICS.md §2.4), and the weight of one code step."""
    spec, sf, dst_fixed = net.numeric, proj.fixed, net.populations[proj.dst].fixed
    assert spec is not None
    assert sf is not None
    assert dst_fixed is not None
    gain = input_gain(net.populations[proj.dst], spec)
    weight = proj.weight if gain is None else sp.csr_matrix(sp.diags(gain) @ proj.weight)
    lsb = 2.0 ** (spec.input_shift + sf.exp) / dst_fixed.scale
    return sp.csr_matrix(weight), sp.csr_matrix(sf.codes.astype(np.float64) * lsb), lsb


WEIGHT_BINS = 40
"""Bins of each projection's weight histogram (report.json ``weights``)."""


ACTIVATION_BINS = 20


def activation_histogram(f: npt.NDArray[Any], q: npt.NDArray[Any]) -> dict[str, Any]:
    """Histograms of a population's activation, float run ``f`` against quantized run ``q``
    (``[batch, time, *shape]`` spike records): per neuron, its events (steps with a spike of
    any level) per inference, the mean over the samples, on shared bins from 0.

    Examples:
        >>> f = np.array([[[1, 0], [1, 0]]]); q = np.array([[[1, 1], [0, 0]]])
        >>> h = activation_histogram(f, q)
        >>> h["float"][0], h["float"][-1], h["quantized"][ACTIVATION_BINS // 2]
        (1, 1, 2)
    """
    rf, rq = (np.count_nonzero(x, axis=1).mean(axis=0).ravel() for x in (f, q))
    hi = max(float(rf.max(initial=0.0)), float(rq.max(initial=0.0)), 1.0)
    edges = np.linspace(0.0, hi, ACTIVATION_BINS + 1)
    return {
        "edges": edges.tolist(),
        "float": np.histogram(rf, edges)[0].tolist(),
        "quantized": np.histogram(rq, edges)[0].tolist(),
    }


def weight_histograms(net: Net) -> list[dict[str, Any]]:
    """Per projection, histograms of its float weights and of the dequantized integer weights
    of the same synapses (the float matrix's stored entries; a code rounded to zero counts as
    0.0), on shared bins spanning both.

    Returns:
        One dict per projection: ``projection``, ``src``, ``dst``, ``synapses``, ``lsb`` (the
        weight one code step stands for), ``edges`` (``WEIGHT_BINS + 1``), ``float`` and
        ``quantized`` (counts per bin).
    """
    out = []
    for proj in net.projections:
        weight, back, lsb = _dequantized(net, proj)
        held = sp.csr_matrix(back.multiply(weight != 0))  # codes at the float synapses
        held.eliminate_zeros()
        zeros = weight.nnz - held.nnz  # float synapses whose code is 0
        values = np.concatenate([weight.data, held.data, [0.0] if zeros else []])
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, WEIGHT_BINS + 1)
        f, _ = np.histogram(weight.data, edges)
        q, _ = np.histogram(held.data, edges)
        if zeros:
            q[min(WEIGHT_BINS - 1, int(np.searchsorted(edges, 0.0, side="right")) - 1)] += zeros
        out.append(
            {
                "projection": proj.name,
                "src": proj.src,
                "dst": proj.dst,
                "synapses": int(weight.nnz),
                "lsb": lsb,
                "edges": edges.tolist(),
                "float": f.tolist(),
                "quantized": q.tolist(),
            }
        )
    return out
