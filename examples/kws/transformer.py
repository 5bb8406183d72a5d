"""The seeds' speech transformers, trained with the deployed dynamics (issue 24; docs/SPEECH.md §7).

``KwsTransformer`` is one class for both shipped models, written over whole sequences
``[T, B, C]`` (fast to train) and stepping exactly like docs/SEMANTICS.md §1 and §4: every
projection reads the previous step, the product units read their operands' previous step. So
the NIR graph of ``to_nir`` runs spike for spike like this module (tests/examples/
test_kws_transformer.py compares it with the float simulator and with ``snn_deploy.nn.run`` of
the step-wise layers it is made of), with no host part and no added latency.

* **SpikeSCR-style** (``local=True``): embedding ``Linear + BN + LIF``; a conformer-style local
  branch -- the gated unit ``snn_deploy.nn.SpikingGate`` (value and gate pointwise projections,
  the product of an analog value and spikes, a pointwise projection + LIF) then a depthwise
  convolution over time (kernel 31) + BN + LIF -- added to the stream; the global branch, causal
  spiking self-attention ``snn_deploy.nn.SpikingSelfAttention`` (binary ``q, k, v``, no
  softmax), added; a residual MLP (``Linear + BN + LIF`` twice), added; a ``Linear`` + LI
  read-out. The temporal convolution is *causal* (tap ``k`` reads the step ``30 - k`` steps
  back): a streaming deployment cannot look 15 steps ahead, and the "same" padding of the paper
  costs 15 steps of latency (what ``frontends.torch_fx`` does with such code).
* **IML-Spikeformer-style** (``local=False, levels=3, decay=...``): the same embedding, attention
  and MLP with **multi-level spikes** (0..3 per step) in every block, and a **decayed attention**
  (per head ``S ← S - trunc(S/2**d_h) + k⊗v``: the distance-decay mask ``γ_h^(n-m)``).

BatchNorm is trained as such and folded into the projection before it at export (exact up to
float rounding). Every neuron: per-step decay ``beta``, threshold 1, zero reset; prediction =
the class with the largest read-out voltage summed over time (``train.classify``).
"""

from __future__ import annotations

import io
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from examples.kws.models import N_CLASSES, decay_tau, input_node, li_readout, shift
from snn_deploy.frontends.nir import LEVELS_KEY, RESET_KEY
from snn_deploy.frontends.torch import to_nir as module_to_nir
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.nn import SpikingGate, SpikingSelfAttention, multispike


def lif(x: torch.Tensor, beta: float, levels: int = 1) -> torch.Tensor:
    """LIF over a sequence of input currents ``x [T, ...]``: ``v = beta·v + x``, spike
    ``multispike(v, 1, levels)``, zero reset (``snn_deploy.nn.LIF``, step by step)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        v = beta * v + x[t]
        s = multispike(v, 1.0, levels)
        v = v * (1 - s.detach().clamp(max=1))
        out.append(s)
    return torch.stack(out)


class Projection(torch.nn.Module):
    """``Linear`` then ``BatchNorm1d`` (folded at export), read one step late; then a LIF."""

    def __init__(self, n_in: int, n_out: int, beta: float, levels: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out, bias=False)
        self.bn = torch.nn.BatchNorm1d(n_out)
        self.beta, self.levels = beta, levels

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """The neuron's input current: ``BN(W·x[t-1])``, ``[T, B, n_out]``."""
        return _bn(self.bn, F.linear(shift(x), self.linear.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif(self.current(x), self.beta, self.levels)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W', b')`` with ``W'·x + b' = BN(W·x)`` (running statistics)."""
        scale, shift_ = _bn_affine(self.bn)
        return scale[:, None] * _np(self.linear.weight), shift_


class TemporalConv(torch.nn.Module):
    """Causal depthwise convolution over time (``kernel`` taps per channel) + BN + LIF.

    Tap ``k`` reads the input of ``kernel - 1 - k`` steps before the projection's own delay:
    ``current[t] = BN(Σ_k w[c, k]·x[t - 1 - (kernel - 1 - k)])``.
    """

    def __init__(self, dim: int, kernel: int, beta: float, levels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(dim, dim, kernel, groups=dim, bias=False)
        self.bn = torch.nn.BatchNorm1d(dim)
        self.kernel, self.beta, self.levels = kernel, beta, levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = shift(x).permute(1, 2, 0)  # [B, C, T]
        y = self.conv(F.pad(y, (self.kernel - 1, 0))).permute(2, 0, 1)
        return lif(_bn(self.bn, y), self.beta, self.levels)


def _bn(bn: torch.nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over the feature (last) axis of ``[T, B, C]``."""
    t, b, c = x.shape
    return bn(x.reshape(t * b, c)).reshape(t, b, c)


def _bn_affine(bn: torch.nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    assert bn.running_mean is not None
    assert bn.running_var is not None
    scale = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
    return scale, _np(bn.bias) - scale * _np(bn.running_mean)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy().copy()


def gate_sequence(m: SpikingGate, x: torch.Tensor) -> torch.Tensor:
    """``snn_deploy.nn.SpikingGate`` over a sequence: the value (``W·x[t-1] + b``) times the gate
    spikes, both of the previous step, then ``LIF(W_o·y[t-1] + b_o)``."""
    value = F.linear(shift(x), m.value.weight, m.value.bias)
    g = lif(F.linear(shift(x), m.gate.weight, m.gate.bias), m.gate_lif.beta, m.gate_lif.levels)
    y = shift(value * g)
    return lif(F.linear(shift(y), m.out.weight, m.out.bias), m.out_lif.beta, m.out_lif.levels)


def attention_sequence(m: SpikingSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """``snn_deploy.nn.SpikingSelfAttention`` (causal) over a sequence.

    ``[q|k|v] = LIF(W·x[t-1] + b)``; the unit's output ``A[n]`` from the spikes of step ``n``
    leaves at ``n + 1`` and the output LIF reads it one step later again. Plain heads use the
    masked product ``((q·kᵀ) ⊙ causal)·v``; decayed heads the recurrence with ``trunc``.
    """
    assert m.causal
    s = lif(F.linear(shift(x), m.qkv.weight, m.qkv.bias), m.qkv_lif.beta, m.qkv_lif.levels)
    steps, b, _ = s.shape
    d = m.dim // m.heads
    q, k, v = (s[..., i * m.dim : (i + 1) * m.dim].reshape(steps, b, m.heads, d) for i in range(3))
    if not any(m.decay):
        mask = torch.tril(torch.ones(steps, steps, dtype=s.dtype))
        qh, kh, vh = (z.permute(1, 2, 0, 3) for z in (q, k, v))  # [B, H, T, d]
        a = ((qh @ kh.transpose(-1, -2)) * mask) @ vh
        a = a.permute(2, 0, 1, 3)
    else:
        shifts = torch.tensor(m.decay, dtype=s.dtype)
        keep = torch.where(shifts > 0, 2.0**-shifts, 0.0)[:, None, None]
        state = torch.zeros(b, m.heads, d, d, dtype=s.dtype)
        out = []
        for t in range(steps):
            lost = state * keep
            lost = lost + (torch.trunc(lost) - lost).detach()  # trunc forward, γ backward
            state = state - lost + k[t, ..., :, None] * v[t, ..., None, :]
            out.append(torch.einsum("bhi,bhij->bhj", q[t], state))
        a = torch.stack(out)
    a = a.reshape(steps, b, m.dim) * 2.0**-m.scale_shift
    return lif(shift(a, 2), m.out_lif.beta, m.out_lif.levels)


class KwsTransformer(torch.nn.Module):
    """A spiking speech transformer; input ``[T, B, channels]`` -> logits ``[B, classes]``."""

    def __init__(
        self,
        *,
        channels: int = 64,
        dim: int = 64,
        heads: int = 4,
        steps: int = 100,
        kernel: int = 31,
        local: bool = True,
        levels: int = 1,
        decay: tuple[int, ...] | None = None,
        scale_shift: int = 2,
        mlp_ratio: int = 2,
        beta: float = 0.5,
        beta_out: float = 0.9,
        classes: int = N_CLASSES,
    ) -> None:
        super().__init__()
        self.config = {
            "channels": channels, "dim": dim, "heads": heads, "steps": steps,
            "kernel": kernel, "local": local, "levels": levels,
            "decay": list(decay) if decay else None, "scale_shift": scale_shift,
            "mlp_ratio": mlp_ratio, "beta": beta, "beta_out": beta_out, "classes": classes,
        }  # fmt: skip
        self.embed = Projection(channels, dim, beta, levels)
        self.gate = SpikingGate(dim, beta=beta, levels=levels) if local else None
        self.temporal = TemporalConv(dim, kernel, beta, levels) if local else None
        self.attention = SpikingSelfAttention(
            dim, heads, steps, beta=beta, levels=levels, decay=decay, scale_shift=scale_shift
        )
        self.mlp1 = Projection(dim, mlp_ratio * dim, beta, levels)
        self.mlp2 = Projection(mlp_ratio * dim, dim, beta, levels)
        self.head = torch.nn.Linear(dim, classes, bias=False)
        self.beta_out = beta_out

    def stream(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream after the last block, ``[T, B, dim]`` (spike counts)."""
        z = self.embed(x)
        if self.gate is not None and self.temporal is not None:
            z = z + self.temporal(gate_sequence(self.gate, z))
        z = z + attention_sequence(self.attention, z)
        return z + self.mlp2(self.mlp1(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return li_readout(F.linear(shift(self.stream(x)), self.head.weight), self.beta_out)

    def set_steps(self, steps: int) -> None:
        """The clip length the attention's state is sized for (docs/SEMANTICS.md §4.4)."""
        self.attention.steps = steps
        self.config["steps"] = steps

    def to_nir(self, dt: float = DEFAULT_DT) -> nir.NIRGraph:
        """The exact NIR graph: folded projections, nested ``SpikingGate`` and
        ``SpikingSelfAttention`` graphs, the temporal taps as ``Delay`` + ``Linear``, the
        residual sums as ``Scale(1)`` nodes that NIR sums the inputs of. A tap is a ``Scale`` (one
        weight per channel) behind a ``Delay``; the undelayed one an ``Affine`` that also
        carries BatchNorm's shift."""
        cfg = self.config
        dim, levels = cfg["dim"], cfg["levels"]
        nodes: dict[str, Any] = {"input": input_node(cfg["channels"], cfg["steps"])}
        edges: list[tuple[str, str]] = []

        def add(name: str, node: Any, *inputs: str) -> str:
            nodes[name] = node
            edges.extend((i, name) for i in inputs)
            return name

        def neuron(name: str, n: int, beta: float, lv: int, *inputs: str) -> str:
            return add(name, _lif_node(n, beta, lv, dt), *inputs)

        def projection(name: str, p: Projection, source: str) -> str:
            w, b = p.folded()
            syn = add(f"{name}_w", nir.Affine(weight=w, bias=b), source)
            return neuron(name, w.shape[0], p.beta, p.levels, syn)

        def block(name: str, module: torch.nn.Module, source: str) -> str:
            graph = module_to_nir(torch.nn.Sequential(module), dt=dt, input_shape=(dim,))
            return add(name, graph, source)

        z = projection("embed", self.embed, "input")
        if self.gate is not None and self.temporal is not None:
            g = block("gate", self.gate, z)
            taps = []
            scale, bias = _bn_affine(self.temporal.bn)
            w = _np(self.temporal.conv.weight)[:, 0, :] * scale[:, None]  # [dim, kernel]
            kernel = self.temporal.kernel
            for back in range(kernel):  # tap kernel-1-back reads ``back`` steps further back
                src = g
                if back:
                    src = add(f"temporal_delay{back}", nir.Delay(delay=np.full(dim, back * dt)), g)
                column = w[:, kernel - 1 - back]  # per channel: a Scale, or with BN's shift
                tap = (
                    nir.Affine(weight=np.diag(column), bias=bias)
                    if back == 0
                    else nir.Scale(scale=column)
                )
                taps.append(add(f"temporal_tap{back}", tap, src))
            conv = neuron("temporal", dim, self.temporal.beta, levels, *taps)
            z = add("residual_local", nir.Scale(scale=np.ones(dim)), z, conv)
        attn = block("attention", self.attention, z)
        z = add("residual_attention", nir.Scale(scale=np.ones(dim)), z, attn)
        hidden = projection("mlp1", self.mlp1, z)
        mlp = projection("mlp2", self.mlp2, hidden)
        z = add("residual_mlp", nir.Scale(scale=np.ones(dim)), z, mlp)
        head = add("head", nir.Linear(weight=_np(self.head.weight)), z)
        tau = decay_tau(cfg["beta_out"], dt)
        k = cfg["classes"]
        add("readout", nir.LI(tau=np.full(k, tau), r=np.full(k, tau / dt), v_leak=np.zeros(k)),
            head)  # fmt: skip
        add("output", nir.Output(output_type={"output": np.array([k])}), "readout")
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lif_node(n: int, beta: float, levels: int, dt: float) -> nir.LIF:
    tau = decay_tau(beta, dt)
    meta: dict[str, Any] = {RESET_KEY: "zero"}
    if levels > 1:
        meta[LEVELS_KEY] = int(levels)
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, tau / dt),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
        metadata=meta,
    )


def save(model: KwsTransformer, path: Any, dt: float = DEFAULT_DT, **meta: Any) -> None:
    """``{"architecture": <NIR bytes>, "dt": dt, "meta": {..., "config": ...}}``: no pickled
    code; ``snn-deploy compile`` reads it with no flags. The torch weights are not stored: the
    NIR graph is the model (``load`` is for the float reference in tests, from a state dict)."""
    buf = io.BytesIO()
    nir.write(buf, model.to_nir(dt))
    torch.save(
        {"architecture": buf.getvalue(), "dt": dt, "meta": {**meta, "config": model.config}}, path
    )
