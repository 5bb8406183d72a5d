"""The layers of ``snn_deploy.nn`` (see the package docstring for the equations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

RESETS = ("zero", "subtract")
COMPARES = (">", ">=")
"""The threshold tests: strict ``v > θ`` (the default, Lava's) or ``v >= θ`` (Xylo's)."""


class _Spike(torch.autograd.Function):
    """Heaviside ``x > 0`` (``x >= 0`` with ``ge``) forward; fast-sigmoid surrogate
    ``1/(1+10|x|)^2`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, ge: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x >= 0 if ge else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x: torch.Tensor
        (x,) = ctx.saved_tensors
        return grad / (1.0 + 10.0 * x.abs()) ** 2, None


def spike(x: torch.Tensor, ge: bool = False) -> torch.Tensor:
    """Heaviside step with a surrogate gradient: ``x > 0``, or ``x >= 0`` with ``ge``."""
    # torch leaves ``Function.apply`` unannotated, so the call is untyped and returns Any
    return _Spike.apply(x, ge)  # type: ignore[no-untyped-call, no-any-return]


class _MultiSpike(torch.autograd.Function):
    """Integer spike ``#{k in 1..D : v > k·θ}`` (``>=`` with ``ge``) forward; backward the sum
    of the fast-sigmoid surrogates of its D steps, ``Σ_k 1/(1+10|v - k·θ|)^2`` (for D = 1
    exactly ``_Spike``'s)."""

    @staticmethod
    def forward(
        ctx: Any, v: torch.Tensor, threshold: torch.Tensor, levels: int, ge: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(v, threshold)
        ctx.levels = levels
        s = torch.zeros_like(v)
        for k in range(1, levels + 1):  # strict, like the binary ``v > θ``: v == 2θ gives s = 1
            s = s + (v >= k * threshold if ge else v > k * threshold).to(v.dtype)
        return s

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        v: torch.Tensor
        threshold: torch.Tensor
        v, threshold = ctx.saved_tensors
        slope = torch.zeros_like(v)
        for k in range(1, ctx.levels + 1):
            slope = slope + 1.0 / (1.0 + 10.0 * (v - k * threshold).abs()) ** 2
        return grad * slope, None, None, None


def multispike(
    v: torch.Tensor, threshold: torch.Tensor | float, levels: int, ge: bool = False
) -> torch.Tensor:
    """The integer spike of one step: how many of the levels ``θ, 2θ, …, D·θ`` ``v`` exceeds.

    ``s = #{k in 1..D : v > k·θ}`` (for ``v > 0`` that is ``clamp(ceil(v/θ) - 1, 0, D)``), with a
    surrogate gradient that is the sum of ``spike``'s surrogate at each level. ``levels = 1`` is
    ``spike(v - θ)``. With ``ge`` the test is ``v >= k·θ`` (``clamp(floor(v/θ), 0, D)``).

    Args:
        v: membrane voltage after this step's update.
        threshold: ``θ`` (broadcast against ``v``).
        levels: ``D``, the largest spike value.
        ge: reach rather than exceed each level (``>=``).

    Returns:
        ``s`` in ``{0, 1, …, D}``, the dtype of ``v``.

    Examples:
        >>> multispike(torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5, 9.0]), 1.0, 3).tolist()
        [0.0, 0.0, 1.0, 1.0, 2.0, 3.0]
        >>> multispike(torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5, 9.0]), 1.0, 3, ge=True).tolist()
        [0.0, 1.0, 1.0, 2.0, 2.0, 3.0]
    """
    if levels == 1:
        return spike(v - threshold, ge)
    theta = torch.as_tensor(threshold, dtype=v.dtype)
    # torch leaves ``Function.apply`` unannotated, so the call is untyped and returns Any
    return _MultiSpike.apply(v, theta, levels, ge)  # type: ignore[no-untyped-call, no-any-return]


class _Delayed:
    """Mixin: apply the wrapped layer to the previous step's input (zeros at step 0)."""

    _previous: torch.Tensor | None

    def _delayed(
        self, x: torch.Tensor, layer: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        previous = self._previous if self._previous is not None else torch.zeros_like(x)
        self._previous = x
        return layer(previous)

    def reset_state(self) -> None:
        self._previous = None


class Linear(_Delayed, torch.nn.Linear):
    """``torch.nn.Linear`` with the one-step synaptic delay: ``y[t] = W·x[t-1] + b``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._delayed(x, super().forward)


class Conv2d(_Delayed, torch.nn.Conv2d):
    """``torch.nn.Conv2d`` with the one-step synaptic delay: ``y[t] = conv(x[t-1]) + b``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._delayed(x, super().forward)


class _Neuron(torch.nn.Module):
    def __init__(
        self,
        shape: int | tuple[int, ...],
        threshold: float,
        reset: str,
        levels: int,
        compare: str = ">",
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        if compare not in COMPARES:
            raise ValueError(f"compare must be one of {COMPARES}, got {compare!r}")
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be an int >= 1 (1 = binary spikes), got {levels!r}")
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.threshold = torch.nn.Parameter(
            torch.full(self.shape, float(threshold)), requires_grad=False
        )
        self.reset = reset
        self.levels = levels
        self.compare = compare
        self.v: torch.Tensor | None = None

    def _fire(self, v: torch.Tensor) -> torch.Tensor:
        s = multispike(v, self.threshold, self.levels, ge=self.compare == ">=")
        if self.reset == "zero":  # v = 0 where s > 0 (s is 0/1 when binary: the same product)
            self.v = v * (1 - s.detach().clamp(max=1))
        else:  # v -= s·θ
            self.v = v - s.detach() * self.threshold
        return s

    def reset_state(self) -> None:
        self.v = None

    def _decay(self, name: str, value: float | torch.Tensor, learn: bool) -> torch.nn.Parameter:
        t = torch.broadcast_to(torch.as_tensor(value, dtype=torch.get_default_dtype()), self.shape)
        if not bool(((t >= 0) & (t < 1)).all()):
            raise ValueError(f"{name} must be in [0, 1) (a per-step decay), got {value}")
        return torch.nn.Parameter(t.clone(), requires_grad=learn)


class LIF(_Neuron):
    """Leaky integrate-and-fire, per step: ``v = beta·v + x``; spike ``v > threshold``.

    With ``levels = D > 1`` the spike is the integer ``#{k in 1..D : v > k·threshold}``.
    """

    def __init__(
        self,
        shape: int | tuple[int, ...],
        beta: float | torch.Tensor,
        threshold: float = 1.0,
        reset: str = "zero",
        learn_beta: bool = False,
        levels: int = 1,
        compare: str = ">",
    ) -> None:
        super().__init__(shape, threshold, reset, levels, compare)
        self.beta = self._decay("beta", beta, learn_beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x) if self.v is None else self.v
        return self._fire(self.beta * v + x)


class CubaLIF(_Neuron):
    """Current-based LIF, per step: ``u = alpha·u + x; v = beta·v + u``; spike ``v > threshold``.

    With ``levels = D > 1`` the spike is the integer ``#{k in 1..D : v > k·threshold}``.
    """

    def __init__(
        self,
        shape: int | tuple[int, ...],
        alpha: float | torch.Tensor,
        beta: float | torch.Tensor,
        threshold: float = 1.0,
        reset: str = "zero",
        learn_decays: bool = False,
        levels: int = 1,
        compare: str = ">",
    ) -> None:
        super().__init__(shape, threshold, reset, levels, compare)
        self.alpha = self._decay("alpha", alpha, learn_decays)
        self.beta = self._decay("beta", beta, learn_decays)
        self.u: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.zeros_like(x) if self.u is None else self.u
        v = torch.zeros_like(x) if self.v is None else self.v
        self.u = self.alpha * u + x
        return self._fire(self.beta * v + self.u)

    def reset_state(self) -> None:
        super().reset_state()
        self.u = None


class IF(_Neuron):
    """Integrate-and-fire, per step: ``v = v + x``; spike ``v > threshold``.

    With ``levels = D > 1`` the spike is the integer ``#{k in 1..D : v > k·threshold}``.
    """

    def __init__(
        self,
        shape: int | tuple[int, ...],
        threshold: float = 1.0,
        reset: str = "zero",
        levels: int = 1,
        compare: str = ">",
    ) -> None:
        super().__init__(shape, threshold, reset, levels, compare)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x) if self.v is None else self.v
        return self._fire(v + x)


class SpikingSelfAttention(torch.nn.Module):
    """Linear spiking self-attention (docs/SEMANTICS.md §4.1-4.2), one step per call.

    ``x`` (spikes, ``dim``) -> ``Linear(dim, 3·dim)`` -> ``LIF(3·dim, levels)`` = ``[q|k|v]``
    -> the ``Attention`` product (reading the previous step's ``q, k, v``) -> ``·2**-scale_shift``
    -> ``LIF(dim)`` (one step later, like every projection). Per head ``h`` (``dim/heads``
    channels), causal: ``S_h = S_h - trunc(S_h/2**decay[h]) + k_h ⊗ v_h`` (no decay for 0),
    ``A_h = q_hᵀ·S_h``; ``causal=False``: ``S`` over the first ``steps`` steps, read with each of
    their ``q`` in the next ``steps`` (latency ``2·steps``). The product is exact in float, so
    the integer unit gives the same ``A``; gradients pass through the products and through the
    decay as ``γ = 1 - 2**-d`` (straight-through ``trunc``).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        steps: int,
        *,
        beta: float = 0.5,
        threshold: float = 1.0,
        levels: int = 1,
        decay: tuple[int, ...] | list[int] | None = None,
        causal: bool = True,
        scale_shift: int = 0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.dim, self.heads, self.steps = dim, heads, steps
        self.decay = tuple(decay) if decay is not None else (0,) * heads
        if len(self.decay) != heads or (not causal and any(self.decay)):
            raise ValueError(
                f"decay must be {heads} shift(s), all 0 for whole-clip attention; got {decay}"
            )
        self.causal, self.scale_shift = causal, scale_shift
        self.qkv = Linear(dim, 3 * dim)
        self.qkv_lif = LIF(3 * dim, beta=beta, threshold=threshold, levels=levels)
        self.out_lif = LIF(dim, beta=beta, threshold=threshold)
        self.reset_state()

    def reset_state(self) -> None:
        self._spikes: torch.Tensor | None = None
        self._attended: torch.Tensor | None = None
        self._state: torch.Tensor | None = None
        self._kept: list[torch.Tensor] = []
        self._n = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.qkv_lif(self.qkv(x))
        zeros = torch.zeros(*x.shape[:-1], self.dim, dtype=s.dtype)
        a = zeros if self._spikes is None else self._attend(self._spikes)
        previous = zeros if self._attended is None else self._attended
        self._spikes, self._attended = s, a
        return self.out_lif(previous * 2.0**-self.scale_shift)  # type: ignore[no-any-return]

    def _attend(self, spikes: torch.Tensor) -> torch.Tensor:
        """The unit's output for one input step (the previous step's ``[q|k|v]``)."""
        q, k, v = (
            spikes[..., i * self.dim : (i + 1) * self.dim].reshape(
                *spikes.shape[:-1], self.heads, -1
            )
            for i in range(3)
        )
        n, self._n = self._n, self._n + 1
        if self.causal or n < self.steps:
            state = (
                torch.zeros_like(k[..., None] * v[..., None, :])
                if self._state is None
                else self._state
            )
            d = torch.tensor(self.decay, dtype=state.dtype)
            lost = state * torch.where(d > 0, 2.0**-d, 0.0)[:, None, None]
            lost = lost + (torch.trunc(lost) - lost).detach()  # trunc forward, γ backward
            self._state = state - lost + k[..., :, None] * v[..., None, :]
        if not self.causal:
            if n < self.steps:
                self._kept.append(q)
            if not self.steps <= n < 2 * self.steps:
                return torch.zeros_like(spikes[..., : self.dim])
            q = self._kept[n - self.steps]
        assert self._state is not None
        return torch.einsum("...hi,...hij->...hj", q, self._state).reshape(*q.shape[:-2], self.dim)


class SpikingGate(torch.nn.Module):
    """Elementwise gate of an analog value by spikes (docs/SEMANTICS.md §4.3), one step per call.

    ``a = Linear(dim, dim)(x)`` (an analog voltage: a non-spiking relay, ``v = W·x[t-1] + b``)
    and ``g = LIF(Linear(dim, dim)(x))`` (spikes, ``levels``); the ``Gate`` product ``a ⊙ g``
    of the previous step; then ``LIF(Linear(dim, dim)(a ⊙ g))``: SpikeSCR's gated unit.
    """

    def __init__(
        self,
        dim: int,
        *,
        beta: float = 0.5,
        threshold: float = 1.0,
        levels: int = 1,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.value = Linear(dim, dim)
        self.gate = Linear(dim, dim)
        self.gate_lif = LIF(dim, beta=beta, threshold=threshold, levels=levels)
        self.out = Linear(dim, dim)
        self.out_lif = LIF(dim, beta=beta, threshold=threshold)
        self.reset_state()

    def reset_state(self) -> None:
        self._value: torch.Tensor | None = None
        self._gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, g = self.value(x), self.gate_lif(self.gate(x))
        y = torch.zeros_like(value)
        if self._value is not None and self._gate is not None:
            y = self._value * self._gate
        self._value, self._gate = value, g
        return self.out_lif(self.out(y))  # type: ignore[no-any-return]


def reset_state(model: torch.nn.Module) -> None:
    """Clear the state (voltages, currents, delay buffers, attention state) of every layer."""
    for m in model.modules():
        if isinstance(m, (_Neuron, _Delayed, SpikingSelfAttention, SpikingGate)):
            m.reset_state()


def run(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reset ``model``, then step it through ``x[time, batch, ...]``; returns ``[time, ...]``."""
    reset_state(model)
    return torch.stack([model(x[t]) for t in range(x.shape[0])])
