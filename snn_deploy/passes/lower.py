"""``lower``: NIR-level ``Graph`` -> discrete-time ``Net`` (docs/SEMANTICS.md §1).

Every neuron node becomes a population; every chain of stateless nodes between populations
(Affine, Linear, Scale, Conv, pooling, Flatten, Delay, including branches that merge) folds into
one sparse matrix per (source, delay, synapse): a path through an Affine or Linear node with
``synapse = 1`` adds into its neuron's second current (docs/SEMANTICS.md §1.3). The
continuous-time parameters become per-step fractions with the forward-Euler rule
``x += dt/tau * (...)`` that snnTorch and Norse use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from snn_deploy.errors import PassError, UnsupportedOpError, VerificationError
from snn_deploy.ir import nodes as n
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import Attention, Gate, Net, Operand, Population, Product, Projection
from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare
from snn_deploy.passes.base import Pass, PassContext

Terms = dict[tuple[str, int, int], tuple[sp.csr_matrix, tuple[str, ...]]]
"""(source, delay, synapse) -> the folded matrix and the names of the nodes folded into it."""
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Lower(Pass):
    """Fold stateless chains into projections and discretise neurons with time step ``dt``.

    Requires: a verified ``Graph``; every cycle passes through a neuron node; every Output reads
    a neuron or Input node (through Flatten at most).
    Guarantees: a verified float ``Net`` whose populations are the graph's neuron nodes, in
    graph order, with ``alpha``/``beta`` in [0, 1].
    """

    name: ClassVar[str] = "lower"
    dt: float = 1e-4

    def run(self, ir: object, ctx: PassContext) -> Net:
        """Lower ``ir`` (a Graph)."""
        if not isinstance(ir, Graph):
            raise PassError("lower takes a model graph: it must be the first pass, and only once")
        net = lower(ir, self.dt)
        latency = ctx.target.numeric.input_latency
        return net if latency == net.input_latency else net.replace(input_latency=latency)


def lower(graph: Graph, dt: float) -> Net:
    """Lower a verified graph with time step ``dt`` seconds. See the module docstring."""
    if not (np.isfinite(dt) and dt > 0):
        raise VerificationError(f"the time step dt must be > 0, got {dt}")
    folder = _Folder(graph, dt)
    populations: dict[str, Population] = {}
    projections: list[Projection] = []
    for name in graph.of_type(n.NEURONS):
        node = graph.nodes[name]
        terms, bias = folder.inputs_of(name)
        pop, gains = _population(name, node, dt, bias)
        populations[name] = pop
        for (src, delay, synapse), (matrix, names) in terms.items():
            if synapse >= len(gains):
                raise VerificationError(
                    f"node {name!r} ({type(node).__name__}) has one synaptic current, but "
                    f"{' -> '.join(names)} adds into its second (snn_deploy.synapse = 1); give "
                    "it a second current (a CubaLIF with metadata snn_deploy.tau_syn2)"
                )
            weight = sp.diags(gains[synapse]) @ matrix
            label = "+".join(names) if names else f"{src}->{name}"
            projections.append(
                Projection(
                    name=label, src=src, dst=name, weight=weight, delay=delay, synapse=synapse
                )
            )
    products = {
        name: _product(name, graph.nodes[name], *folder.inputs_of(name))
        for name in graph.of_type(n.PRODUCTS)
    }
    outputs = {name: _output_source(graph, name) for name in graph.of_type(n.Output)}
    inputs = {name: graph.nodes[name].out_shape for name in graph.of_type(n.Input)}
    net = Net(
        dt=dt,
        inputs=inputs,
        populations=populations,
        projections=tuple(projections),
        outputs=outputs,
        products=products,
    )
    net.verify()
    return net


def _product(name: str, node: n.Node, terms: Terms, bias: FloatArray) -> Product:
    """The unit of a product node: each operand must be a plain copy of one source's outputs
    (weight 1, no delay, no bias), since the unit multiplies the sources' integer outputs."""
    kind = type(node).__name__
    size = int(node.out_shape[0])
    src = np.full(len(bias), "", dtype=object)
    index = np.full(len(bias), -1, dtype=np.int64)
    for (source, delay, synapse), (matrix, _) in terms.items():
        m = sp.coo_matrix(matrix)
        m.sum_duplicates()
        if delay or synapse or np.any(m.data != 1) or np.any(src[m.row] != ""):
            raise UnsupportedOpError(
                f"{kind} {name!r}: each operand element must be one output of one population "
                f"or input, unweighted and undelayed; {source!r} reaches it with weights "
                f"{sorted(set(m.data.tolist()))[:4]} and delay {delay}"
            )
        src[m.row], index[m.row] = source, m.col
    if np.any(bias != 0) or np.any(index < 0):
        raise UnsupportedOpError(
            f"{kind} {name!r}: {int(np.sum(index < 0))} operand element(s) have no source and "
            f"{int(np.sum(bias != 0))} a bias; every element must copy one source output"
        )
    operands = []
    for j in range(len(bias) // size):
        part = slice(j * size, (j + 1) * size)
        sources = sorted(set(src[part]))
        if len(sources) != 1:
            raise UnsupportedOpError(
                f"{kind} {name!r}: operand {j} mixes the sources {sources}; each operand must "
                "read one population or input"
            )
        operands.append(Operand(src=sources[0], index=index[part]))
    if isinstance(node, n.Attention):
        q, k, v = operands
        return Attention(
            name=name,
            size=size,
            heads=node.heads,
            q=q,
            k=k,
            v=v,
            decay=tuple(node.decay),
            causal=node.causal,
            steps=node.steps,
        )
    a, g = operands
    return Gate(name=name, size=size, a=a, g=g)


def _output_source(graph: Graph, name: str) -> str:
    (src,) = graph.predecessors(name) or ("",)
    while isinstance(graph.nodes.get(src), n.Flatten):
        (src,) = graph.predecessors(src)
    node = graph.nodes.get(src)
    if len(graph.predecessors(name)) != 1 or not isinstance(node, (n.Input, *n.NEURONS)):
        raise UnsupportedOpError(
            f"Output {name!r} must read exactly one neuron or Input node (through Flatten at "
            f"most); it reads {list(graph.predecessors(name))}. Add a neuron layer (e.g. LI) "
            "as the readout."
        )
    return src


class _Folder:
    """Composes the linear maps on every path from a population to a node."""

    def __init__(self, graph: Graph, dt: float) -> None:
        self.graph, self.dt = graph, dt
        self.memo: dict[str, tuple[Terms, FloatArray]] = {}

    def inputs_of(self, name: str) -> tuple[Terms, FloatArray]:
        """The summed contributions of ``name``'s predecessors."""
        size = int(np.prod(self.graph.nodes[name].in_shape))
        terms: Terms = {}
        bias = np.zeros(size)
        for src in self.graph.predecessors(name):
            src_terms, src_bias = self._output_of(src)
            bias = bias + src_bias
            for key, (m, names) in src_terms.items():
                old = terms.get(key)
                terms[key] = (m, names) if old is None else (old[0] + m, old[1] + names)
        return terms, bias

    def _source(self, name: str) -> bool:
        """Whether ``name`` starts a projection: an input, a population or a product unit."""
        return isinstance(self.graph.nodes[name], (n.Input, *n.NEURONS, *n.PRODUCTS))

    def _output_of(self, name: str) -> tuple[Terms, FloatArray]:
        size = int(np.prod(self.graph.nodes[name].out_shape))
        if self._source(name):
            return {(name, 0, 0): (sp.identity(size, format="csr"), ())}, np.zeros(size)
        if name not in self.memo:
            self._fold(name)
        return self.memo[name]

    def _fold(self, root: str) -> None:
        """Fold ``root`` and every stateless node it reads, sources first, with an explicit
        stack (a chain of thousands of nodes would exceed Python's recursion limit)."""
        stack: list[tuple[str, bool]] = [(root, False)]
        active: list[str] = []  # the path being folded, to name a cycle
        while stack:
            name, ready = stack.pop()
            if ready:  # every stateless predecessor is folded
                active.pop()
                terms, bias = self.inputs_of(name)
                self.memo[name] = self._apply(name, self.graph.nodes[name], terms, bias)
                continue
            if name in self.memo:
                continue
            if name in active:
                cycle = active[active.index(name) :]
                raise VerificationError(
                    f"cycle without state: {' -> '.join([*cycle, name])} has no neuron node"
                )
            active.append(name)
            stack.append((name, True))
            preds = self.graph.predecessors(name)
            stack += [(src, False) for src in preds if not self._source(src)]

    def _apply(
        self, name: str, node: n.Node, terms: Terms, bias: FloatArray
    ) -> tuple[Terms, FloatArray]:
        if isinstance(node, n.Delay):
            steps = _delay_steps(name, node, self.dt)
            out: Terms = {}
            for d in np.unique(steps):
                mask = sp.diags((steps == d).astype(np.float64))
                for (src, delay, syn), (m, names) in terms.items():
                    out[(src, delay + int(d), syn)] = (sp.csr_matrix(mask @ m), (*names, name))
            return out, bias
        matrix, own_bias = linear_map(node)
        marked = getattr(node, "synapse", 0)  # Affine, Linear: a path through it uses synapse 1
        out = {}
        for (src, delay, syn), (m, names) in terms.items():
            key = (src, delay, max(syn, marked))
            folded = (sp.csr_matrix(matrix @ m), (*names, name))
            old = out.get(key)
            out[key] = folded if old is None else (old[0] + folded[0], old[1] + folded[1])
        return out, matrix @ bias + own_bias


def _delay_steps(name: str, node: n.Delay, dt: float) -> npt.NDArray[np.int64]:
    steps: FloatArray = np.broadcast_to(node.delay, node.out_shape).ravel() / dt
    rounded = np.rint(steps)
    if np.any(rounded < 0) or np.any(np.abs(steps - rounded) > 1e-6 * np.maximum(1, rounded)):
        raise VerificationError(
            f"node {name!r} (Delay): delays must be non-negative whole multiples of dt={dt:g} s"
        )
    return rounded.astype(np.int64)


def linear_map(node: n.Node) -> tuple[sp.csr_matrix, FloatArray]:
    """The matrix and bias of a stateless node on flat (C-order) vectors."""
    size_in, size_out = int(np.prod(node.in_shape)), int(np.prod(node.out_shape))
    if isinstance(node, n.Flatten):
        return sp.identity(size_in, format="csr"), np.zeros(size_out)
    if isinstance(node, n.Scale):
        return sp.diags(
            np.broadcast_to(node.scale, node.out_shape).ravel(), format="csr"
        ), np.zeros(size_out)
    if isinstance(node, (n.Affine, n.Linear)):
        bias = node.bias if isinstance(node, n.Affine) else np.zeros(size_out)
        return sp.csr_matrix(node.weight), np.asarray(bias, dtype=np.float64)
    if isinstance(node, (n.Conv1d, n.Conv2d)):
        two_d = isinstance(node, n.Conv2d)
        weight = node.weight if two_d else node.weight[:, :, None, :]
        in_shape = node.in_shape if two_d else (node.in_shape[0], 1, node.in_shape[1])

        def pad(t: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(t) if two_d else (0, *t)

        def one(t: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(t) if two_d else (1, *t)

        matrix = _conv_matrix(
            weight, in_shape, one(node.stride), pad(node.padding), one(node.dilation), node.groups
        )
        return matrix, np.repeat(node.bias, size_out // node.weight.shape[0])
    if isinstance(node, n.SumPool2d):  # AvgPool2d is a SumPool2d subclass
        c = node.in_shape[0]
        k = node.kernel_size
        value = 1.0 / (k[0] * k[1]) if isinstance(node, n.AvgPool2d) else 1.0
        weight = np.full((c, 1, *k), value)
        return _conv_matrix(weight, node.in_shape, node.stride, node.padding, (1, 1), c), np.zeros(
            size_out
        )
    raise UnsupportedOpError(f"no linear map for {type(node).__name__}")


def _conv_matrix(
    weight: FloatArray,
    in_shape: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> sp.csr_matrix:
    """Cross-correlation as a sparse ``[C_out*H_out*W_out, C_in*H*W]`` matrix (index arithmetic).

    Entries are generated in (c_out, y_out, x_out | c_in, ky, kx) order, which is row-major
    with increasing columns within a row, so the CSR arrays are built directly (no sort).
    """
    c_out, c_in_g, kh, kw = weight.shape
    c_in, h, w = in_shape
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    axes = (c_out, ho, wo, c_in_g, kh, kw)

    def along(i: int, values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return values.reshape([-1 if a == i else 1 for a in range(len(axes))])

    co, oy, ox, ci, ky, kx = (along(i, np.arange(n, dtype=np.int64)) for i, n in enumerate(axes))
    iy = oy * stride[0] - padding[0] + ky * dilation[0]
    ix = ox * stride[1] - padding[1] + kx * dilation[1]
    inside = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), axes)
    channel = (co // (c_out // groups)) * c_in_g + ci
    indices = ((channel * h + iy) * w + ix)[inside]
    data = np.broadcast_to(weight[:, None, None], axes)[inside]
    per_row = inside.reshape(c_out * ho * wo, -1).sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    return sp.csr_matrix((data, indices, indptr), shape=(c_out * ho * wo, c_in * h * w))


def _population(
    name: str, node: n.Node, dt: float, in_bias: FloatArray
) -> tuple[Population, list[FloatArray]]:
    """The discrete population for a neuron node and, per synaptic current, the gain applied
    to the weights into it."""
    p: Mapping[str, FloatArray] = {f: np.ravel(getattr(node, f)) for f in node.ARRAYS}
    size = int(np.prod(node.out_shape))
    ones, zeros = np.ones(size), np.zeros(size)
    v_reset = p.get("v_reset", zeros)
    threshold: FloatArray | None
    if isinstance(node, n.Threshold):
        alpha, beta, gain, leak, threshold = ones, ones, ones, zeros, p["threshold"]
    elif isinstance(node, (n.IF, n.I)):
        alpha, beta, gain, leak = ones, zeros, p["r"], zeros
        threshold = p["v_threshold"] - v_reset if isinstance(node, n.IF) else None
    else:
        tau_mem = p["tau"] if isinstance(node, (n.LI, n.LIF)) else p["tau_mem"]
        beta = dt / tau_mem
        alpha = dt / p["tau_syn"] if "tau_syn" in p else ones
        gain = beta * p["r"] * (alpha * p["w_in"] if "w_in" in p else ones)
        leak = beta * (p["v_leak"] - v_reset)
        threshold = p["v_threshold"] - v_reset if "v_threshold" in p else None
    tau_syn2 = getattr(node, "tau_syn2", None)
    alpha2 = None if tau_syn2 is None else dt / np.ravel(tau_syn2)
    gains = [gain] if alpha2 is None else [gain, beta * p["r"] * alpha2 * p["w_in"]]
    fractions = [("dt/tau_syn", alpha), ("dt/tau_mem", beta)]
    for label, frac in fractions + ([] if alpha2 is None else [("dt/tau_syn2", alpha2)]):
        if np.any(frac > 1):
            raise VerificationError(
                f"node {name!r} ({type(node).__name__}): {label} = {float(frac.max()):g} > 1 with "
                f"dt={dt:g} s, so the Euler step is unstable; pass a smaller --dt"
            )
    pop = Population(
        name=name,
        node_type=type(node).__name__,
        shape=node.out_shape,
        alpha=alpha,
        beta=beta,
        bias=leak + gain * in_bias / alpha,
        threshold=threshold,
        reset=getattr(node, "reset", ResetMode.ZERO),
        levels=getattr(node, "levels", 1),
        reset_timing=getattr(node, "reset_timing", ResetTiming.IMMEDIATE),
        threshold_compare=getattr(node, "threshold_compare", ThresholdCompare.GT),
        voltage_scale=node.voltage_scale if isinstance(node, n.Neuron) else None,
        alpha2=alpha2,
    )
    return pop, gains
