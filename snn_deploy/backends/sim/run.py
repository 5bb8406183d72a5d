"""Run a ``Net`` step by step, batched over samples, in integer or float arithmetic.

Every projection delivers its source's output from the previous step (plus its delay), so
within a step all synaptic inputs are computed first and then every population updates; the
order of populations does not matter and recurrent edges need no special case.

Integer matrix products run in float32 or float64 BLAS when the largest possible sum is below
2**24 or 2**53 (so every partial sum is an exactly representable integer), else in int64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.backends.base import Trace, check_inputs
from snn_deploy.backends.sim.kernels import (
    accumulate,
    attention_read,
    attention_update,
    current_step,
    fixed_step,
    float_step,
    gate,
    shift,
)
from snn_deploy.ir.net import Attention, Net, Population, Product, Projection
from snn_deploy.ir.types import Accumulation, ResetMode, ThresholdCompare

DENSE_ABOVE = 0.1
"""Weight density above which a projection is stored as a dense array (BLAS) rather than CSR."""

Array = npt.NDArray[Any]
"""A run's values: int64 in integer runs, float64 in float runs."""


@dataclass(frozen=True, slots=True)
class _Matrix:
    """A projection's weights prepared for ``out = x @ W.T`` in an exact dtype."""

    weight: npt.NDArray[np.generic] | sp.csr_matrix
    exp: int

    def apply(self, x: Array) -> Array:
        xs = x.astype(self.weight.dtype, copy=False)
        out: Array = (
            np.asarray((self.weight @ xs.T).T) if sp.issparse(self.weight) else xs @ self.weight.T
        )
        return out


def _prepare(proj: Projection, fixed: bool, x_peak: float) -> _Matrix:
    if not fixed:
        m: sp.csr_matrix = proj.weight
        exp = 0
        dtype: type = np.float64
    else:
        assert proj.fixed is not None
        m, exp = proj.fixed.codes, proj.fixed.exp
        bound = float(np.max(abs(m) @ np.ones(m.shape[1]), initial=0.0)) * x_peak
        dtype = np.float32 if bound < 2**24 else np.float64 if bound < 2**53 else np.int64
    dense = m.nnz > DENSE_ABOVE * m.shape[0] * m.shape[1]
    return _Matrix(m.toarray().astype(dtype) if dense else m.astype(dtype), exp)


def simulate(
    net: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    fixed: bool | None = None,
    record_state: bool = False,
    progress: Callable[[int, int], None] | None = None,
    kernel: Literal["auto", "numba", "numpy", "torch"] = "auto",
) -> Trace:
    """Simulate ``net`` on ``inputs`` (``[batch, time, *shape]`` per input name).

    Args:
        net: a verified net; quantized nets run in integers unless ``fixed=False``.
        inputs: input arrays; values may be binary spikes or graded payloads.
        fixed: integer (True) or float (False) arithmetic; default: integer iff quantized.
        record_state: also record ``u`` and ``v`` of every population.
        progress: called as ``progress(steps_done, steps)`` after every time step (e.g. to
            advance a progress bar).
        kernel: ``numba``, the compiled event-driven loop (``compiled.py``), ``torch``, the
            batched loop on torch tensors (``torch_kernel.py``: on CUDA when torch sees a
            GPU, else the CPU), or ``numpy``, this module's readable loop, which both are
            proven equal to; ``numba`` and ``torch`` run integer simulations only.
            ``auto``: ``numba`` for integer runs, ``numpy`` for float runs.

    Returns:
        The trace; integer runs record int64, float runs float64.

    Raises:
        ValueError: an integer run of a float net, or a float run with ``kernel="numba"`` or
            ``"torch"``.
        UnsupportedOpError: ``kernel="torch"`` on CUDA and a projection whose sums need int64
            products (beyond 2**53).
        BackendUnavailableError: ``kernel="torch"`` and PyTorch is not installed.
    """
    fixed = net.quantized if fixed is None else fixed
    if fixed and not net.quantized:
        raise ValueError("integer simulation needs a quantized net")
    if kernel in ("numba", "torch") and not fixed:
        raise ValueError(f"the {kernel} kernel runs integer simulations only")
    cap = net.numeric.input_payload_max if fixed and net.numeric else None
    compiled_kernel = fixed and kernel in ("auto", "numba")
    data: dict[str, Array] = (
        # the compiled kernel checks int64 inputs' range in its own pass (not under a cap,
        # which would hide the values beyond it)
        check_inputs(net, inputs, integer=True, int64_range=not compiled_kernel or cap is not None)
        if fixed
        else check_inputs(net, inputs)
    )
    batch, steps = next(iter(data.values())).shape[:2]
    dtype = np.int64 if fixed else np.float64
    if cap is not None:  # events beyond the cap are dropped (Xylo: 15 per channel, step)
        data = {k: np.minimum(v, cap) for k, v in data.items()}
    if fixed and kernel == "torch":
        from snn_deploy.backends.sim import torch_kernel  # imports torch: only when asked

        return torch_kernel.simulate(net, data, record_state=record_state, progress=progress)
    if compiled_kernel:
        from snn_deploy.backends.sim import compiled  # imports numba (~0.5 s): only when run

        return compiled.simulate(net, data, record_state=record_state, progress=progress)
    record: dict[str, Array] = {k: v.astype(dtype) for k, v in data.items()}
    for name, pop in net.populations.items():
        record[name] = np.zeros((batch, steps, pop.size), dtype)
    peak = {k: float(np.max(np.abs(v), initial=0.0)) for k, v in data.items()}
    peak.update({k: float(p.levels) if p.spiking else 2.0**62 for k, p in net.populations.items()})
    for name, unit in net.products.items():
        record[name] = np.zeros((batch, steps, unit.size), dtype)
        peak[name] = 2.0 ** (unit.fixed.output.width - 1) if fixed and unit.fixed else 2.0**62
    units = {k: _ProductState(u, batch, fixed) for k, u in net.products.items()}
    matrices = [_prepare(p, fixed, peak[p.src]) for p in net.projections]
    spec = net.numeric if fixed else None
    each = spec is not None and spec.accumulation is Accumulation.SATURATE_EACH_SOURCE
    order = chip_order(net) if each else list(range(len(net.projections)))
    shifted = {i: _shifted(net.projections[i]) for i in order} if each else {}
    states = {k: _State(p, batch, fixed, net) for k, p in net.populations.items()}
    us = (
        {k: np.zeros((batch, steps, p.size), dtype) for k, p in net.populations.items()}
        if record_state
        else {}
    )
    vs = (
        {k: np.zeros((batch, steps, p.size), dtype) for k, p in net.populations.items()}
        if record_state
        else {}
    )
    two = {k: p for k, p in net.populations.items() if p.currents == 2}
    u2s = (
        {k: np.zeros((batch, steps, p.size), dtype) for k, p in two.items()} if record_state else {}
    )
    for t in range(steps):
        a: dict[str, Array] = {
            k: np.zeros((batch, p.size), dtype) for k, p in net.populations.items()
        }
        a2: dict[str, Array] = {k: np.zeros((batch, p.size), dtype) for k, p in two.items()}
        for i in order:
            proj, m = net.projections[i], matrices[i]
            src_t = t - net.lag(proj)
            if src_t < 0:
                continue
            if each:  # source by source into u, saturating (docs/SEMANTICS.md §2.4)
                assert spec is not None
                st = states[proj.dst]
                x = record[proj.src][:, src_t]
                if proj.synapse:
                    st.u2 = accumulate(st.u2, x, shifted[i], spec.current)
                else:
                    st.u = accumulate(st.u, x, shifted[i], spec.current)
                continue
            acc = m.apply(record[proj.src][:, src_t])
            into = a2 if proj.synapse else a
            into[proj.dst] += shift(acc.astype(np.int64), m.exp) if fixed else acc
        for name, unit_state in units.items():
            record[name][:, t] = unit_state.step(record, t)
        for name, state in states.items():
            record[name][:, t] = state.step(a[name], a2.get(name))
            if record_state:
                us[name][:, t], vs[name][:, t] = state.u, state.v
                if name in u2s:
                    u2s[name][:, t] = state.u2
        if progress is not None:
            progress(t + 1, steps)
    outputs = {out: record[src] for out, src in net.outputs.items()}
    pops = {k: record[k] for k in net.populations}
    products = {k: record[k] for k in net.products}
    return Trace(outputs=outputs, populations=pops, u=us, v=vs, products=products, u2=u2s)


def chip_order(net: Net) -> list[int]:
    """Indices of ``net.projections`` in the order a source-by-source accumulation adds them:
    sources from inputs (in ``net.inputs`` order), then populations (``net.populations``),
    then product units; projections of one source keep their order."""
    rank = {k: i for i, k in enumerate([*net.inputs, *net.populations, *net.products])}
    return sorted(range(len(net.projections)), key=lambda i: rank[net.projections[i].src])


def _shifted(proj: Projection) -> npt.NDArray[np.int64]:
    """A projection's weights with the exponent applied to each, ``[dst, src]`` (Xylo adds
    ``(int16)(w << shift)`` per synapse; the exponent is >= 0 there)."""
    assert proj.fixed is not None
    return shift(proj.fixed.codes.toarray().astype(np.int64), proj.fixed.exp)


class _ProductState:
    """The mutable state of one product unit during a run (docs/SEMANTICS.md §4).

    At step ``t`` the unit reads its operands' outputs of step ``t - 1`` (input step
    ``n = t - 1``), like a projection. Causal attention updates ``S`` and reads it every step;
    whole-clip attention updates ``S`` and keeps ``q`` for ``n < steps`` (output 0) and reads
    the kept ``q[n - steps]`` for ``steps <= n < 2·steps`` (output 0 after).
    """

    def __init__(self, unit: Product, batch: int, fixed: bool) -> None:
        self.unit, self.batch = unit, batch
        self.dtype = np.int64 if fixed else np.float64
        self.state_reg = unit.fixed.state if fixed and unit.fixed else None
        self.output_reg = unit.fixed.output if fixed and unit.fixed else None
        self.shift = unit.fixed.shift if fixed and unit.fixed else 0
        if isinstance(unit, Attention):
            d = unit.size // unit.heads
            self.shifts = np.array(unit.decay, dtype=np.int64)
            self.s: Array = np.zeros((batch, unit.heads, d, d), self.dtype)
            self.kept_q: list[Array] = []

    def step(self, record: Mapping[str, Array], t: int) -> Array:
        unit = self.unit
        out: Array = np.zeros((self.batch, unit.size), self.dtype)
        if t == 0:  # no operand has an output yet
            return out
        x = [record[op.src][:, t - 1][:, op.index].astype(self.dtype) for op in unit.operands]
        if not isinstance(unit, Attention):
            return gate(x[0], x[1], self.output_reg, self.shift)
        q, k, v = (o.reshape(self.batch, unit.heads, -1) for o in x)
        n = t - 1
        if unit.causal or n < unit.steps:
            self.s = attention_update(self.s, k, v, self.shifts, self.state_reg)
        if not unit.causal:
            if n < unit.steps:
                self.kept_q.append(q)
                return out
            if n >= 2 * unit.steps:
                return out
            q = self.kept_q[n - unit.steps]
        return attention_read(self.s, q, self.output_reg).reshape(self.batch, unit.size)


class _State:
    """The mutable state of one population during a run."""

    def __init__(self, pop: Population, batch: int, fixed: bool, net: Net) -> None:
        self.pop, self.fixed, self.spec = pop, fixed, net.numeric
        dtype = np.int64 if fixed else np.float64
        self.u: Array = np.zeros((batch, pop.size), dtype)
        self.v: Array = np.zeros((batch, pop.size), dtype)
        self.u2: Array = np.zeros((batch, pop.size), dtype)  # used with a second current
        self.subtract = pop.reset is ResetMode.SUBTRACT
        self.ge = pop.threshold_compare is ThresholdCompare.GE
        if fixed:
            f = pop.fixed
            assert f is not None
            self.bias = shift(f.bias_mant, f.bias_exp)

    def step(self, a: Array, a2: Array | None = None) -> Array:
        """One step with the input ``a`` into ``u`` and ``a2`` into ``u2`` (None: one current);
        ``u2`` updates first, then ``fixed_step``/``float_step`` take it into ``v``."""
        pop = self.pop
        out: Array
        u2: Array | None = None
        if self.fixed:
            f = pop.fixed
            assert f is not None
            assert self.spec is not None
            if a2 is not None:
                assert f.du2 is not None
                self.u2 = u2 = current_step(self.u2, a2, f.du2, self.spec)
            self.u, self.v, out = fixed_step(
                self.u,
                self.v,
                a,
                du=f.du,
                dv=f.dv,
                bias=self.bias,
                vth=f.vth,
                subtract=self.subtract,
                spec=self.spec,
                levels=pop.levels,
                timing=pop.reset_timing,
                ge=self.ge,
                u2=u2,
            )
        else:
            if a2 is not None:
                assert pop.alpha2 is not None
                self.u2 = u2 = (1.0 - pop.alpha2) * self.u2 + a2
            self.u, self.v, out = float_step(
                self.u,
                self.v,
                a,
                alpha=pop.alpha,
                beta=pop.beta,
                bias=pop.bias,
                threshold=pop.threshold,
                subtract=self.subtract,
                levels=pop.levels,
                timing=pop.reset_timing,
                ge=self.ge,
                u2=u2,
            )
        return out
