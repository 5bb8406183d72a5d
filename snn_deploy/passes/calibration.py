"""What quantization measures on the float net run on the user's calibration inputs.

``quantize{method=calibrate}`` uses two statistics: the largest |u| of every population (to size
the current register) and, for each dense projection, the Gram matrix of its source activity
filtered by the destination's synaptic and membrane decays, which is what error-compensated
rounding minimises the voltage error against (docs/SEMANTICS.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.net import Net, Projection

FloatArray = npt.NDArray[np.float64]

MAX_COMPENSATED_SOURCES = 2**12
"""Largest source count whose Gram matrix is kept (128 MB); wider projections round to nearest."""

GRAM_CHUNK = 16
"""Calibration samples filtered at a time (memory ``GRAM_CHUNK · steps · sources`` floats)."""


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Statistics of one float run on calibration inputs.

    Attributes:
        peaks: population name -> the largest |u| (float units).
        grams: index into ``net.projections`` -> ``[src, src]`` Gram matrix ``Σ x̃ x̃ᵀ`` over
            samples and steps, where ``x̃`` is the projection's source activity passed through
            the destination's current and voltage decays; only dense projections with at most
            ``MAX_COMPENSATED_SOURCES`` sources and some activity have one.
    """

    peaks: Mapping[str, float]
    grams: Mapping[int, FloatArray]


def compensable(proj: Projection) -> bool:
    """Whether error-compensated rounding may change every weight of ``proj``: it must store
    every weight (dense; a sparse or convolution projection keeps its structure) and be narrow
    enough for its Gram matrix."""
    rows, cols = proj.weight.shape
    return bool(proj.weight.nnz == rows * cols and cols <= MAX_COMPENSATED_SOURCES)


def measure(
    net: Net,
    activity: Mapping[str, npt.NDArray[np.generic]],
    u: Mapping[str, npt.NDArray[np.generic]],
) -> Calibration:
    """The statistics of a float run of ``net``.

    Args:
        net: the float net that ran.
        activity: every input and population name -> ``[batch, time, size]`` values it sent.
        u: population name -> ``[batch, time, size]`` currents.
    """
    peaks = {k: float(np.abs(u[k]).max(initial=0.0)) for k in net.populations}
    grams = {}
    for i, proj in enumerate(net.projections):
        if not compensable(proj):
            continue
        dst = net.populations[proj.dst]
        gram = _filtered_gram(
            activity[proj.src], float(np.mean(dst.alpha)), float(np.mean(dst.beta))
        )
        if np.any(np.diag(gram) > 0):
            grams[i] = gram
    return Calibration(peaks=peaks, grams=grams)


def _filtered_gram(x: npt.NDArray[np.generic], alpha: float, beta: float) -> FloatArray:
    """``Σ x̃ x̃ᵀ`` over samples and steps, where ``x̃`` is ``x [batch, time, n]`` through
    ``u ← (1-α)u + x``, ``v ← (1-β)v + u`` (no threshold): each source's contribution to ``v``.
    Samples are taken ``GRAM_CHUNK`` at a time to bound memory."""
    n = x.shape[2]
    gram = np.zeros((n, n))
    for start in range(0, x.shape[0], GRAM_CHUNK):
        chunk = np.asarray(x[start : start + GRAM_CHUNK], dtype=np.float64)
        cur = np.zeros((chunk.shape[0], n))
        vol = np.zeros_like(cur)
        out = np.empty_like(chunk)
        for t in range(chunk.shape[1]):
            cur = (1.0 - alpha) * cur + chunk[:, t]
            vol = (1.0 - beta) * vol + cur
            out[:, t] = vol
        flat = out.reshape(-1, n)
        gram += flat.T @ flat
    return gram
