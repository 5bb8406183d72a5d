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
        x = _filtered(
            np.asarray(activity[proj.src], dtype=np.float64),
            float(np.mean(dst.alpha)),
            float(np.mean(dst.beta)),
        )
        gram = x.T @ x
        if np.any(np.diag(gram) > 0):
            grams[i] = gram
    return Calibration(peaks=peaks, grams=grams)


def _filtered(x: FloatArray, alpha: float, beta: float) -> FloatArray:
    """``x [batch, time, n]`` through ``u ← (1-α)u + x``, ``v ← (1-β)v + u`` (no threshold):
    the contribution of each source to ``v``; returned as ``[batch·time, n]``."""
    cur = np.zeros((x.shape[0], x.shape[2]))
    vol = np.zeros_like(cur)
    out = np.empty_like(x)
    for t in range(x.shape[1]):
        cur = (1.0 - alpha) * cur + x[:, t]
        vol = (1.0 - beta) * vol + cur
        out[:, t] = vol
    return out.reshape(-1, x.shape[2])
