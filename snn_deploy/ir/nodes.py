"""IR nodes: one frozen dataclass per NIR primitive, with NIR's names, fields and equations.

Shapes are per sample (no batch or time axis). Parameter arrays are float64, broadcast to the
node's shape by the frontend, and read-only. ``out_shape_of`` is the shape inference every
node type defines; ``Graph.verify`` checks it against each edge. Continuous-time equations are
NIR's; docs/SEMANTICS.md gives the discrete-time fixed-point rule every backend runs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from snn_deploy.ir.types import ResetMode, ResetTiming, ThresholdCompare

Shape = tuple[int, ...]
Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Node:
    """Base class: a node with a per-sample input and output shape.

    ``ARRAYS`` names the float parameter fields; they are copied to read-only float64 arrays.
    Equality compares every field, arrays with ``np.array_equal``.
    """

    in_shape: Shape
    out_shape: Shape
    ARRAYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_shape", tuple(int(d) for d in self.in_shape))
        object.__setattr__(self, "out_shape", tuple(int(d) for d in self.out_shape))
        for name in self.ARRAYS:
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _field_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """Shape inference: the output shape for ``in_shape`` (identity unless overridden)."""
        return in_shape


def _field_equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b


# --------------------------------------------------------------------------- graph I/O


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Input(Node):
    """Graph input: the data fed at each time step (binary or graded spikes, or values).

    ``payload_max`` is the largest |value| the model declares it will be fed (NIR metadata
    ``snn_deploy.input_max``), which quantization sizes registers for; None: not declared.
    """

    payload_max: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Output(Node):
    """Graph output: records what its single source population emits."""


# --------------------------------------------------------------------------- synapses


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Affine(Node):
    """``y = W x + b``; ``weight`` is ``[out, in]``.

    ``synapse`` (NIR metadata ``snn_deploy.synapse``): the synaptic current of the neuron node
    that a path through this node adds into: 0, its current; 1, its second current
    (``CubaLIF.tau_syn2``; docs/SEMANTICS.md §1.3). The same for ``Linear``.
    """

    weight: Array
    bias: Array
    synapse: int = 0
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "bias")

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """Output is ``(weight.shape[0],)``."""
        return (int(np.shape(node.weight)[0]),)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Linear(Node):
    """``y = W x``; ``weight`` is ``[out, in]``; ``synapse`` as for ``Affine``."""

    weight: Array
    synapse: int = 0
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight",)

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """Output is ``(weight.shape[0],)``."""
        return (int(np.shape(node.weight)[0]),)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Scale(Node):
    """``y = s * x`` elementwise."""

    scale: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("scale",)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Conv1d(Node):
    """1-D cross-correlation (PyTorch convention).

    Input ``(C_in, L)``, weight ``[C_out, C_in/groups, K]``.
    """

    weight: Array
    bias: Array
    stride: tuple[int]
    padding: tuple[int]
    dilation: tuple[int]
    groups: int
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "bias")

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """``(C_out, L_out)`` with PyTorch's output-size formula."""
        k = np.shape(node.weight)[2]
        length = _conv_out(in_shape[1], k, node.stride[0], node.padding[0], node.dilation[0])
        return (int(np.shape(node.weight)[0]), length)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Conv2d(Node):
    """2-D cross-correlation; input ``(C_in, H, W)``, weight ``[C_out, C_in/g, kH, kW]``."""

    weight: Array
    bias: Array
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    ARRAYS: ClassVar[tuple[str, ...]] = ("weight", "bias")

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """``(C_out, H_out, W_out)`` with PyTorch's output-size formula."""
        kh, kw = np.shape(node.weight)[2:]
        h = _conv_out(in_shape[1], kh, node.stride[0], node.padding[0], node.dilation[0])
        w = _conv_out(in_shape[2], kw, node.stride[1], node.padding[1], node.dilation[1])
        return (int(np.shape(node.weight)[0]), h, w)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SumPool2d(Node):
    """Sum over ``kernel_size`` windows per channel (zero padding)."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """``(C, H_out, W_out)``."""
        h = _conv_out(in_shape[1], node.kernel_size[0], node.stride[0], node.padding[0], 1)
        w = _conv_out(in_shape[2], node.kernel_size[1], node.stride[1], node.padding[1], 1)
        return (in_shape[0], h, w)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class AvgPool2d(SumPool2d):
    """Mean over ``kernel_size`` windows per channel (zero padding counts, as in PyTorch)."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Flatten(Node):
    """Merge dimensions ``start_dim..end_dim`` of the per-sample shape (C order)."""

    start_dim: int = 0
    end_dim: int = -1

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """The merged shape."""
        n = len(in_shape)
        start, end = node.start_dim % n, node.end_dim % n
        merged = int(np.prod(in_shape[start : end + 1]))
        return (*in_shape[:start], merged, *in_shape[end + 1 :])


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Delay(Node):
    """``y(t) = x(t - delay)`` elementwise; ``delay`` in seconds (a whole number of steps)."""

    delay: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("delay",)


# --------------------------------------------------------------------------- neurons


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Neuron(Node):
    """Base of the neuron nodes; adds the one slot NIR lacks at this level.

    ``voltage_scale`` fixes the integer voltage units per unit of ``v`` for a model that is
    already quantized (e.g. imported from a lava-dl netx file), so that quantization gives back
    its integers exactly; None lets the quantizer choose.
    """

    voltage_scale: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Threshold(Neuron):
    """Stateless spike generator: ``z = H(x - threshold)``, strict (spikes where x > threshold)."""

    threshold: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("threshold",)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class I(Neuron):  # noqa: E742 -- NIR's name for the integrator
    """Integrator: ``dv/dt = R I``; outputs ``v`` (no spikes)."""

    r: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("r",)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class IF(Neuron):
    """Integrate-and-fire: ``dv/dt = R I``; spike when ``v > v_threshold``, then reset.

    ``levels`` (D) makes the spikes graded: the neuron emits ``#{k in 1..D : v > k * theta}``
    (``theta = v_threshold - v_reset``), see docs/SEMANTICS.md §1.1; 1 is a binary spike.
    ``reset_timing`` and ``threshold_compare`` (docs/SEMANTICS.md §1.2; the same for LIF and
    CubaLIF): when the reset acts, and ``v > θ`` or ``v >= θ``.
    """

    r: Array
    v_threshold: Array
    v_reset: Array
    reset: ResetMode = ResetMode.ZERO
    levels: int = 1
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    threshold_compare: ThresholdCompare = ThresholdCompare.GT
    ARRAYS: ClassVar[tuple[str, ...]] = ("r", "v_threshold", "v_reset")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LI(Neuron):
    """Leaky integrator: ``tau dv/dt = (v_leak - v) + R I``; outputs ``v``."""

    tau: Array
    r: Array
    v_leak: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("tau", "r", "v_leak")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LIF(Neuron):
    """Leaky integrate-and-fire: LI plus spike when ``v > v_threshold``, then reset.

    ``levels``: the number of spike levels D, as for ``IF``.
    """

    tau: Array
    r: Array
    v_leak: Array
    v_threshold: Array
    v_reset: Array
    reset: ResetMode = ResetMode.ZERO
    levels: int = 1
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    threshold_compare: ThresholdCompare = ThresholdCompare.GT
    ARRAYS: ClassVar[tuple[str, ...]] = ("tau", "r", "v_leak", "v_threshold", "v_reset")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CubaLI(Neuron):
    """Current-based LI: ``tau_syn dI/dt = -I + w_in S``; ``tau_mem dv/dt = (v_leak - v) + R I``."""

    tau_syn: Array
    tau_mem: Array
    r: Array
    v_leak: Array
    w_in: Array
    ARRAYS: ClassVar[tuple[str, ...]] = ("tau_syn", "tau_mem", "r", "v_leak", "w_in")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CubaLIF(Neuron):
    """Current-based LIF: CubaLI plus spike when ``v > v_threshold``, then reset.

    ``levels``: the number of spike levels D, as for ``IF``. ``tau_syn2`` (NIR metadata
    ``snn_deploy.tau_syn2``, seconds): a second synaptic current
    ``tau_syn2 dI2/dt = -I2 + w_in S2``, fed by the paths marked ``synapse = 1``, with
    ``tau_mem dv/dt = (v_leak - v) + R (I + I2)`` (docs/SEMANTICS.md §1.3); None: one current.
    """

    tau_syn: Array
    tau_mem: Array
    r: Array
    v_leak: Array
    v_threshold: Array
    v_reset: Array
    w_in: Array
    reset: ResetMode = ResetMode.ZERO
    levels: int = 1
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    threshold_compare: ThresholdCompare = ThresholdCompare.GT
    tau_syn2: Array | None = None
    ARRAYS: ClassVar[tuple[str, ...]] = (
        "tau_syn",
        "tau_mem",
        "r",
        "v_leak",
        "v_threshold",
        "v_reset",
        "w_in",
    )

    def __post_init__(self) -> None:
        Node.__post_init__(self)
        if self.tau_syn2 is not None:
            arr = np.array(np.broadcast_to(self.tau_syn2, self.out_shape), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, "tau_syn2", arr)


# --------------------------------------------------------------------------- products


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Attention(Node):
    """Linear spiking self-attention, per head (docs/SEMANTICS.md §4.1, §4.2).

    Input ``(3·dim,)`` is ``[q | k | v]``, each the integer output (spikes, spike counts) of
    one step; output ``(dim,)``. Per head ``h`` (``dim/heads`` channels each), causal::

        S_h[t] = decay(S_h[t-1], decay[h]) + k_h ⊗ v_h      A_h[t] = q_hᵀ · S_h[t]

    with ``decay(S, 0) = S`` and ``decay(S, d) = S - trunc(S / 2**d)`` (``γ = 1 - 2**-d``).
    Not ``causal``: the whole-clip form, ``S`` accumulated over the first ``steps`` input steps
    and read with each of them in the next ``steps`` (latency ``2·steps``). ``steps`` is also
    the clip length the causal plain state is sized for.
    """

    heads: int
    decay: tuple[int, ...]
    causal: bool = True
    steps: int

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """Output is a third of the ``[q | k | v]`` input."""
        return (in_shape[0] // 3,)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Gate(Node):
    """Elementwise gate ``y = a ⊙ g`` (docs/SEMANTICS.md §4.3).

    Input ``(2·dim,)`` is ``[a | g]``: ``a`` any population's output (spikes, spike counts or
    a non-spiking voltage), ``g`` spikes or spike counts; output ``(dim,)``.
    """

    @classmethod
    def out_shape_of(cls, node: Any, in_shape: Shape) -> Shape:
        """Output is half of the ``[a | g]`` input."""
        return (in_shape[0] // 2,)


PRODUCTS: tuple[type[Node], ...] = (Attention, Gate)
"""Activation×activation products: each becomes a product unit of the lowered ``Net``."""

NEURONS: tuple[type[Neuron], ...] = (Threshold, I, IF, LI, LIF, CubaLI, CubaLIF)
"""Node types with state or a nonlinearity: each becomes a neuron population."""

SYNAPSES: tuple[type[Node], ...] = (
    Affine,
    Linear,
    Scale,
    Conv1d,
    Conv2d,
    SumPool2d,
    AvgPool2d,
    Flatten,
    Delay,
)
"""Linear, stateless node types: chains of them fold into one projection between populations."""

ALL_NODES: tuple[type[Node], ...] = (Input, Output, *SYNAPSES, *NEURONS, *PRODUCTS)
