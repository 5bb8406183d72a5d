"""An independent, loop-based re-implementation of Lava 0.10.0's fixed-point Dense + LIF.

Written from the rule in docs/SEMANTICS.md §2 (and Lava 0.10.0's proc/lif, proc/dense models), one
sample and one neuron at a time with Python integers, with Dense send-then-compute buffers as Lava
has them; multi-level spikes count the levels crossed one by one; late and carried resets and ``>=``
thresholds (§1.2) with a pending bit from the stored voltage; product units (Attention, Gate;
docs/SEMANTICS.md §4) with explicit loops over heads, rows and columns. The vectorised simulator
must match it exactly; it shares no code with it.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from snn_deploy.ir.net import Attention, Gate, Net
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare


def _decay(x: int, d: int) -> int:
    p = x * (4096 - d)
    return (1 if p > 0 else -1 if p < 0 else 0) * (abs(p) >> 12)


def _sat(x: int, width: int) -> int:
    return max(-(2 ** (width - 1)), min(2 ** (width - 1) - 1, x))


class _Unit:
    """One product unit, one sample: Python ints, one element at a time."""

    def __init__(self, unit) -> None:
        self.unit = unit
        self.n = -1  # the input step the unit last read
        if isinstance(unit, Attention):
            d = unit.size // unit.heads
            self.state = [[[0] * d for _ in range(d)] for _ in range(unit.heads)]
            self.kept: list[list[int]] = []

    def step(self, prev: dict[str, list[int]] | None) -> list[int]:
        unit, f = self.unit, self.unit.fixed
        if prev is None:  # step 0: nothing to read
            return [0] * unit.size
        vals = [[prev[op.src][int(i)] for i in op.index] for op in unit.operands]
        self.n += 1
        if isinstance(unit, Gate):
            return [_sat((a * g) >> f.shift, f.output.width) for a, g in zip(*vals, strict=True)]
        q, k, v = vals
        d = unit.size // unit.heads
        accumulate = unit.causal or self.n < unit.steps
        if accumulate:
            for h in range(unit.heads):
                sh = unit.decay[h]
                for i in range(d):
                    for j in range(d):
                        s = self.state[h][i][j]
                        if sh > 0:
                            s -= (1 if s > 0 else -1) * (abs(s) >> sh)
                        s += k[h * d + i] * v[h * d + j]
                        self.state[h][i][j] = _sat(s, f.state.width)
        if not unit.causal:
            if self.n < unit.steps:
                self.kept.append(q)
                return [0] * unit.size
            if self.n >= 2 * unit.steps:
                return [0] * unit.size
            q = self.kept[self.n - unit.steps]
        out = []
        for h in range(unit.heads):
            for j in range(d):
                a = sum(q[h * d + i] * self.state[h][i][j] for i in range(d))
                out.append(_sat(a, f.output.width))
        return out


def run_reference(net: Net, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run one sample ``x`` ([time, size] of the single input); returns outputs per population
    and product unit."""
    steps = x.shape[0]
    (inp,) = net.inputs
    pops = net.populations
    units = {k: _Unit(unit) for k, unit in net.products.items()}
    prev = None
    u = {k: [0] * p.size for k, p in pops.items()}
    v = {k: [0] * p.size for k, p in pops.items()}
    out = {k: np.zeros((steps, net.size_of(k)), np.int64) for k in [*pops, *units]}
    # each projection: a FIFO of (delay + 1) buffered output vectors, oldest first
    fifo = {
        i: deque([[0] * net.size_of(p.dst)] * (p.delay + 1)) for i, p in enumerate(net.projections)
    }
    dense = {i: p.fixed.codes.toarray().astype(object) for i, p in enumerate(net.projections)}
    for t in range(steps):
        a = {k: [0] * p.size for k, p in pops.items()}
        for i, p in enumerate(net.projections):
            sent = fifo[i].popleft()
            a[p.dst] = [x0 + x1 for x0, x1 in zip(a[p.dst], sent, strict=True)]
        current = {inp: [int(val) for val in x[t]]}
        for k, unit in units.items():
            current[k] = unit.step(prev)
            out[k][t] = current[k]
        for k, p in pops.items():
            f = p.fixed
            for n in range(p.size):
                uu = _decay(u[k][n], int(f.du[n]) + 1) + (a[k][n] << 6)
                if uu > 2**23:
                    uu -= 2**24
                elif uu <= -(2**23):
                    uu += 2**24
                b = int(f.bias_mant[n])
                b = b << int(f.bias_exp[n]) if f.bias_exp[n] >= 0 else b >> -int(f.bias_exp[n])
                vv = _decay(v[k][n], int(f.dv[n])) + uu + b
                if f.vth is None:
                    vv = max(-(2**23 - 1), min(2**23 - 1, vv))
                    out[k][t, n] = vv
                    u[k][n], v[k][n] = uu, vv
                    continue
                th = int(f.vth[n]) << 6
                ge = p.threshold_compare is ThresholdCompare.GE

                def above(value: int, limit: int, ge: bool = ge) -> bool:
                    return value >= limit if ge else value > limit

                subtract = p.reset is ResetMode.SUBTRACT
                late = p.reset_timing is not ResetTiming.IMMEDIATE
                pending = 1 if late and above(v[k][n], th) else 0  # the stored v of last step
                vv = max(-(2**23 - 1), min(2**23 - 1, vv - (pending * th if subtract else 0)))
                if pending and not subtract:
                    vv = 0
                # spikes: how many of the levels 1..D the voltage is above (D = 1: 0/1)
                count = sum(1 for level in range(1, p.levels + 1) if above(vv, level * th))
                out[k][t, n] = count
                if p.reset_timing is ResetTiming.CARRY:
                    vv = max(-(2**23 - 1), min(2**23 - 1, vv - (count - pending) * th))
                elif count and not late:
                    vv = vv - count * th if subtract else 0
                u[k][n], v[k][n] = uu, vv
            current[k] = [int(val) for val in out[k][t]]
        for i, p in enumerate(net.projections):
            src = current[p.src]
            acc = [sum(int(w) * s for w, s in zip(row, src, strict=True)) for row in dense[i]]
            e = p.fixed.exp
            fifo[i].append([s << e if e >= 0 else s >> -e for s in acc])
        prev = current
    return out
