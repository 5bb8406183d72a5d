"""The NIR-level graph: named nodes and directed edges, frozen and verified.

Edges may form cycles (recurrent connections); every cycle must pass through a neuron node,
since a cycle of stateless nodes has no defined value (checked when the graph is lowered).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from snn_deploy.errors import VerificationError
from snn_deploy.ir import nodes as n

MAX_DECAY_SHIFT = 30
"""Largest Attention decay shift: ``γ = 1 - 2**-30`` is already 1 for any clip of < 10^9 steps."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Graph:
    """A frozen graph of IR nodes. Build it, then call ``verify()``.

    Attributes:
        nodes: node name -> node, in a stable (insertion) order.
        edges: ``(source, destination)`` pairs; a node's input is the sum of its sources.
        dt: the time step the model's time constants were written for, when the source says
            (a PyTorch model converted at a ``dt``, a checkpoint's ``"dt"``): the default
            step to lower it with. None: the source does not say (a ``.nir`` file). Not part of
            equality: it says how the graph was read, not what it is.
    """

    nodes: Mapping[str, n.Node]
    edges: tuple[tuple[str, str], ...]
    dt: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "edges", tuple((str(s), str(d)) for s, d in self.edges))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            self.nodes.keys() == other.nodes.keys()
            and all(self.nodes[k] == other.nodes[k] for k in self.nodes)
            and sorted(self.edges) == sorted(other.edges)
        )

    __hash__ = None  # type: ignore[assignment]

    def with_nodes(self, **replacements: n.Node) -> Graph:
        """Return a copy with some nodes replaced (same names, same edges)."""
        return dataclasses.replace(self, nodes={**self.nodes, **replacements})

    def predecessors(self, name: str) -> tuple[str, ...]:
        """The sources of ``name``'s incoming edges, in edge order."""
        return tuple(s for s, d in self.edges if d == name)

    def successors(self, name: str) -> tuple[str, ...]:
        """The destinations of ``name``'s outgoing edges, in edge order."""
        return tuple(d for s, d in self.edges if s == name)

    def of_type(self, kind: type[n.Node] | tuple[type[n.Node], ...]) -> Iterator[str]:
        """Names of the nodes of the given type(s), in node order."""
        return (k for k, v in self.nodes.items() if isinstance(v, kind))

    def verify(self) -> None:
        """Check every invariant; raise ``VerificationError`` naming the first broken one."""
        if not self.nodes:
            raise VerificationError("the graph is empty: it has no nodes")
        for kind in (n.Input, n.Output):
            if next(self.of_type(kind), None) is None:
                raise VerificationError(f"the graph has no {kind.__name__} node")
        for src, dst in self.edges:
            for end in (src, dst):
                if end not in self.nodes:
                    raise VerificationError(
                        f"edge ({src!r} -> {dst!r}) names node {end!r}, which does not exist"
                    )
        for name, node in self.nodes.items():
            _verify_node(name, node)
            self._verify_links(name, node)
        for src, dst in self.edges:
            out, into = self.nodes[src].out_shape, self.nodes[dst].in_shape
            if out != into:
                raise VerificationError(
                    f"shape mismatch on edge {src!r} -> {dst!r}: {src!r} outputs {list(out)} "
                    f"but {dst!r} expects {list(into)}"
                )

    def _verify_links(self, name: str, node: n.Node) -> None:
        preds, succs = self.predecessors(name), self.successors(name)
        if isinstance(node, n.Input) and preds:
            raise VerificationError(f"Input node {name!r} has incoming edges from {list(preds)}")
        if isinstance(node, n.Output) and succs:
            raise VerificationError(f"Output node {name!r} has outgoing edges to {list(succs)}")
        if not isinstance(node, n.Input) and not preds:
            raise VerificationError(
                f"node {name!r} ({type(node).__name__}) has no incoming edge: it is unconnected"
            )


def _verify_node(name: str, node: n.Node) -> None:
    kind = type(node).__name__
    if not node.out_shape or min(node.in_shape + node.out_shape, default=0) <= 0:
        raise VerificationError(
            f"node {name!r} ({kind}) has an empty shape: in {list(node.in_shape)}, "
            f"out {list(node.out_shape)}"
        )
    for field in node.ARRAYS:
        arr = getattr(node, field)
        if not np.all(np.isfinite(arr)):
            raise VerificationError(f"node {name!r} ({kind}): {field} contains NaN or inf")
        if field.startswith("tau") and np.any(arr <= 0):
            raise VerificationError(
                f"node {name!r} ({kind}): {field} must be > 0, got min {float(arr.min()):g}"
            )
    levels = getattr(node, "levels", 1)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise VerificationError(
            f"node {name!r} ({kind}): spike levels must be an integer >= 1, got {levels!r}"
        )
    if isinstance(node, n.PRODUCTS):
        _verify_product(name, node)
    if isinstance(node, (n.Affine, n.Linear)):
        expected = (node.out_shape[0], int(np.prod(node.in_shape)))
        if node.weight.shape != expected or len(node.in_shape) != 1:
            raise VerificationError(
                f"node {name!r} ({kind}): weight shape {list(node.weight.shape)} does not map "
                f"input {list(node.in_shape)} to output {list(node.out_shape)}"
            )
    if isinstance(node, n.Affine) and node.bias.shape != node.out_shape:
        raise VerificationError(
            f"node {name!r} (Affine): bias shape {list(node.bias.shape)} != {list(node.out_shape)}"
        )
    inferred = type(node).out_shape_of(node, node.in_shape)
    if inferred != node.out_shape:
        raise VerificationError(
            f"node {name!r} ({kind}): input {list(node.in_shape)} gives output "
            f"{list(inferred)}, but the node declares {list(node.out_shape)}"
        )
    for field in node.ARRAYS:
        arr = getattr(node, field)
        if field not in ("weight", "bias") and arr.shape not in ((), node.out_shape):
            raise VerificationError(
                f"node {name!r} ({kind}): {field} has shape {list(arr.shape)}, "
                f"expected {list(node.out_shape)}"
            )


def _verify_product(name: str, node: n.Node) -> None:
    """Operand layout (``[q | k | v]``, ``[a | g]``), heads, decay shifts and clip length."""
    kind = type(node).__name__
    parts = 3 if isinstance(node, n.Attention) else 2
    if len(node.in_shape) != 1 or node.in_shape[0] % parts:
        raise VerificationError(
            f"node {name!r} ({kind}): input {list(node.in_shape)} is not {parts} flat operands "
            "of equal size"
        )
    if not isinstance(node, n.Attention):
        return
    dim = node.in_shape[0] // 3
    if not isinstance(node.heads, int) or node.heads < 1 or dim % node.heads:
        raise VerificationError(
            f"node {name!r} (Attention): heads must be an int >= 1 dividing dim {dim}, "
            f"got {node.heads!r}"
        )
    if len(node.decay) != node.heads or any(
        not isinstance(d, int) or not 0 <= d <= MAX_DECAY_SHIFT for d in node.decay
    ):
        raise VerificationError(
            f"node {name!r} (Attention): decay must be {node.heads} int shift(s) in "
            f"0..{MAX_DECAY_SHIFT} (0: plain), got {list(node.decay)}"
        )
    if not isinstance(node.steps, int) or node.steps < 1:
        raise VerificationError(
            f"node {name!r} (Attention): steps (the clip length) must be an int >= 1, "
            f"got {node.steps!r}"
        )
    if not node.causal and any(node.decay):
        raise VerificationError(
            f"node {name!r} (Attention): whole-clip (non-causal) attention takes no decay, got "
            f"{list(node.decay)}: a distance decay needs the causal recurrence"
        )
