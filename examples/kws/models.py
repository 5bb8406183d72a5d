"""The KWS networks, trained in PyTorch with ``snn_deploy.nn`` dynamics, and their export.

Every model steps exactly like docs/SEMANTICS.md §1 (one-step delay on every projection, strict
threshold, zero reset unless asked otherwise), so the exported graph runs spike for spike like
the torch model.

* ``RecurrentCuba`` (issue 8, 2a/2c): ``input → W_in → CubaLIF(H) ⟲ W_rec → W_out → LI(12)``;
  prediction = argmax of the read-out voltage summed over time. ``snn_deploy.nn`` has no
  recurrent layer and no LI read-out, so ``to_nir`` writes the graph directly (same formulas as
  ``snn_deploy.nn.export``); ``save_checkpoint`` stores it in the documented checkpoint form
  ``{"architecture": <bytes of a .nir file>, "dt": ...}`` (docs/FRONTENDS.md §1), loadable by
  ``snn-deploy compile`` without ``--trust-pickle``.
* ``SpikeSCR`` (2b): a *local* part made of mappable layers only -- a convolution over the
  frequency axis at each time step (``snn_deploy.nn.Conv2d`` with a ``(k, 1)`` kernel) + LIF, then a
  pointwise ``Linear`` + LIF -- and a *global* causal spiking self-attention
  ``SpikingSelfAttention`` (``q_t·k_sᵀ`` summed against ``v_s``: spike × spike products) + LIF,
  then ``Linear`` → LI read-out. The attention has no NIR form (no synapse computes a product of
  two spike trains), so the full model fails to export with ``UnsupportedOpError`` naming the
  module; ``local_part`` is a plain ``snn_deploy.nn`` ``Sequential`` that compiles.
* Multi-level spikes (2d): ``RecurrentCuba(levels=D)``, whose hidden neurons emit the integer
  spike ``s = #{k in 1..D : v > k·θ}`` = ``clamp(ceil(v/θ) - 1, 0, D)`` per step (θ = 1; strict
  like the binary ``v > θ``; IML-Spikeformer's multi-level spike, Loihi 2's graded spike),
  reset to zero where ``s > 0`` (``reset="subtract"``: ``v -= s·θ``); the projections carry
  ``W·s``. The surrogate gradient is the sum of the binary fast-sigmoid surrogate at each level
  (``snn_deploy.nn.multispike``). ``to_nir`` writes the hidden CubaLIF with
  ``metadata["snn_deploy.spike_levels"] = D`` and its ``"snn_deploy.reset"``;
  ``load_checkpoint`` reads a saved model back.
"""

from __future__ import annotations

import io
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from snn_deploy.frontends.nir import LEVELS_KEY, RESET_KEY
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.nn import LIF, Conv2d, Linear, multispike, spike

N_CLASSES = 12


def _tau(decay: float, dt: float) -> float:
    return dt / (1.0 - decay)


class RecurrentCuba(torch.nn.Module):
    """Recurrent CUBA LIF, LI read-out; input ``[T, B, C]`` -> logits ``[B, classes]``."""

    def __init__(
        self,
        channels: int = 64,
        hidden: int = 128,
        classes: int = N_CLASSES,
        alpha: float = 0.8,
        beta: float = 0.9,
        beta_out: float = 0.9,
        levels: int = 1,
        reset: str = "zero",
    ) -> None:
        super().__init__()
        self.w_in = torch.nn.Parameter(torch.randn(hidden, channels) * (2.0 / channels) ** 0.5)
        self.w_rec = torch.nn.Parameter(torch.randn(hidden, hidden) * (0.5 / hidden) ** 0.5)
        self.w_out = torch.nn.Parameter(torch.randn(classes, hidden) * (1.0 / hidden) ** 0.5)
        self.alpha, self.beta, self.beta_out = alpha, beta, beta_out
        self.levels = levels  # 1: binary spikes; D > 1: multi-level spikes 0..D
        self.reset = reset  # "zero" or "subtract" (v -= s·θ)

    def forward(self, x: torch.Tensor, *, return_spikes: bool = False) -> Any:
        steps, b = x.shape[0], x.shape[1]
        h = self.w_in.shape[0]
        # projection delay: the input of step t-1 reaches u at step t
        a_in = F.linear(torch.cat([torch.zeros_like(x[:1]), x[:-1]]), self.w_in)
        u = x.new_zeros(b, h)
        v = x.new_zeros(b, h)
        s = x.new_zeros(b, h)
        out = []
        for t in range(steps):
            u = self.alpha * u + a_in[t] + F.linear(s, self.w_rec)
            v = self.beta * v + u
            s = spike(v - 1.0) if self.levels == 1 else _multilevel(v, self.levels)
            v = v - s.detach() if self.reset == "subtract" else v * (s.detach() == 0)
            out.append(s)
        spikes = torch.stack(out)
        a_out = F.linear(torch.cat([torch.zeros_like(spikes[:1]), spikes[:-1]]), self.w_out)
        vo = torch.zeros_like(a_out[0])
        total = torch.zeros_like(vo)
        for t in range(steps):  # LI read-out: v = beta_out·v + a
            vo = self.beta_out * vo + a_out[t]
            total = total + vo
        total = total / steps  # mean read-out voltage: same argmax as the sum, O(1) logits
        return (total, spikes) if return_spikes else total

    def to_nir(self, dt: float = DEFAULT_DT) -> nir.NIRGraph:
        """The exact NIR graph (LIF/CubaLIF formulas of ``snn_deploy.nn.export``).

        The hidden CubaLIF carries its reset (``"snn_deploy.reset"``) and, when ``levels > 1``,
        ``metadata["snn_deploy.spike_levels"] = D``.
        """
        h, c = self.w_in.shape
        k = self.w_out.shape[0]
        ones = np.ones(h)
        tau_syn, tau_mem = _tau(self.alpha, dt), _tau(self.beta, dt)
        tau_o = _tau(self.beta_out, dt)
        w = lambda p: p.detach().double().numpy().copy()  # noqa: E731
        nodes = {
            "input": nir.Input(input_type={"input": np.array([c])}),
            "w_in": nir.Linear(weight=w(self.w_in)),
            "hidden": nir.CubaLIF(
                tau_syn=tau_syn * ones,
                tau_mem=tau_mem * ones,
                r=tau_mem / dt * ones,
                v_leak=0 * ones,
                v_threshold=ones.copy(),
                v_reset=0 * ones,
                w_in=tau_syn / dt * ones,
                metadata=self._hidden_metadata(),
            ),
            "w_rec": nir.Linear(weight=w(self.w_rec)),
            "w_out": nir.Linear(weight=w(self.w_out)),
            "readout": nir.LI(
                tau=tau_o * np.ones(k), r=tau_o / dt * np.ones(k), v_leak=np.zeros(k)
            ),
            "output": nir.Output(output_type={"output": np.array([k])}),
        }
        edges = [
            ("input", "w_in"),
            ("w_in", "hidden"),
            ("hidden", "w_rec"),
            ("w_rec", "hidden"),
            ("hidden", "w_out"),
            ("w_out", "readout"),
            ("readout", "output"),
        ]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    def _hidden_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {RESET_KEY: self.reset}
        if self.levels > 1:
            meta[LEVELS_KEY] = int(self.levels)
        return meta


def _multilevel(v: torch.Tensor, levels: int) -> torch.Tensor:
    """The integer spike of one step, θ = 1: ``#{k in 1..D : v > k}`` = ``clamp(ceil(v) - 1, 0,
    D)`` (``snn_deploy.nn.multispike``; surrogate: the sum of the fast-sigmoid bumps at 1..D)."""
    return multispike(v, 1.0, levels)


def save_checkpoint(model: RecurrentCuba, path: Any, dt: float = DEFAULT_DT, **meta: Any) -> None:
    """``{"architecture": <NIR bytes>, "dt": dt, "meta": {...}}``: no pickled code."""
    buf = io.BytesIO()
    nir.write(buf, model.to_nir(dt))
    torch.save({"architecture": buf.getvalue(), "dt": dt, "meta": dict(meta)}, path)


def load_checkpoint(path: Any) -> RecurrentCuba:
    """The ``RecurrentCuba`` of a ``save_checkpoint`` file (weights_only: no code runs).

    Weights and the level count come from the NIR graph; the decays from its time constants,
    ``1 - dt/tau`` rounded to 12 digits (the float64 round trip ``dt/(1-a)`` can move the last
    bit; the float32 model is unchanged by that).
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    graph = nir.read(io.BytesIO(ckpt["architecture"]), type_check=False)
    dt = float(ckpt["dt"])
    hidden, readout = graph.nodes["hidden"], graph.nodes["readout"]
    decay = lambda tau: round(1.0 - dt / float(np.asarray(tau).flat[0]), 12)  # noqa: E731
    w = {k: torch.tensor(np.asarray(graph.nodes[k].weight), dtype=torch.float32)
         for k in ("w_in", "w_rec", "w_out")}  # fmt: skip
    model = RecurrentCuba(
        channels=w["w_in"].shape[1],
        hidden=w["w_in"].shape[0],
        classes=w["w_out"].shape[0],
        alpha=decay(hidden.tau_syn),
        beta=decay(hidden.tau_mem),
        beta_out=decay(readout.tau),
        levels=int(hidden.metadata.get(LEVELS_KEY, 1)),
        reset=str(hidden.metadata.get(RESET_KEY, "zero")),
    )
    model.load_state_dict(w)
    return model.eval()


# ---------------------------------------------------------------- SpikeSCR-style


class SpikingSelfAttention(torch.nn.Module):
    """Causal spiking self-attention over time (SpikeSCR's SSA, without softmax).

    ``q, k, v = LIF(W·x)``; ``attn_t = scale · Σ_{s ≤ t} (q_t · k_s) v_s``; output ``LIF(attn)``.
    ``q_t · k_s`` multiplies two spike trains: not a synapse, so this module has no NIR form.
    """

    def __init__(self, dim: int, heads: int = 4, beta: float = 0.5, scale: float = 0.125) -> None:
        super().__init__()
        self.q, self.k, self.v = (Linear(dim, dim, bias=False) for _ in range(3))
        self.q_lif, self.k_lif, self.v_lif = (LIF(dim, beta=beta) for _ in range(3))
        self.out_lif = LIF(dim, beta=beta)
        self.heads, self.scale = heads, scale

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, D]`` spikes -> ``[T, B, D]`` spikes (whole sequence; the module is causal)."""
        from snn_deploy.nn import run

        q = run(torch.nn.Sequential(self.q, self.q_lif), x)
        k = run(torch.nn.Sequential(self.k, self.k_lif), x)
        v = run(torch.nn.Sequential(self.v, self.v_lif), x)
        steps, b, d = x.shape
        hd = d // self.heads
        q, k, v = (z.reshape(steps, b, self.heads, hd).permute(1, 2, 0, 3) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) * self.scale  # [B, H, T, T]: spike x spike
        scores = scores * torch.tril(torch.ones(steps, steps))
        attn = (scores @ v).permute(2, 0, 1, 3).reshape(steps, b, d)
        self.out_lif.reset_state()
        return torch.stack([self.out_lif(attn[t]) for t in range(steps)])


class SpikeSCR(torch.nn.Module):
    """Global-local hybrid: mappable local conv part + spiking self-attention + LI read-out."""

    def __init__(
        self, channels: int = 64, filters: int = 8, kernel: int = 5, dim: int = 96,
        heads: int = 4, classes: int = N_CLASSES, beta: float = 0.5, beta_out: float = 0.9,
    ) -> None:  # fmt: skip
        super().__init__()
        self.channels = channels
        # local: a convolution across frequency at each time step, then pointwise mixing
        self.local = torch.nn.Sequential(
            Conv2d(1, filters, (kernel, 1), padding=(kernel // 2, 0), bias=False),
            LIF((filters, channels, 1), beta=beta),
            torch.nn.Flatten(),
            Linear(filters * channels, dim, bias=False),
            LIF(dim, beta=beta),
        )
        self.attention = SpikingSelfAttention(dim, heads, beta=beta)
        self.head = torch.nn.Parameter(torch.randn(classes, dim) * (1.0 / dim) ** 0.5)
        self.beta_out = beta_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from snn_deploy.nn import run

        steps, b, c = x.shape
        return self.readout(run(self.local, x.reshape(steps, b, 1, c, 1)))

    def readout(self, loc: torch.Tensor) -> torch.Tensor:
        """Logits from the local part's spikes ``loc [T, B, dim]``: attention, residual, LI
        read-out averaged over time (the part that runs on the host when deployed)."""
        steps = loc.shape[0]
        glob = self.attention.sequence(loc)
        z = loc + glob  # residual (spike + spike: a graded value 0..2)
        a = F.linear(torch.cat([torch.zeros_like(z[:1]), z[:-1]]), self.head)
        vo = torch.zeros_like(a[0])
        total = torch.zeros_like(vo)
        for t in range(steps):
            vo = self.beta_out * vo + a[t]
            total = total + vo
        return total / steps

    def deploy_sequential(self) -> torch.nn.Sequential:
        """The whole model as the ``Sequential`` a frontend would see (local, then attention)."""
        return torch.nn.Sequential(*self.local, self.attention)

    def local_part(self) -> torch.nn.Sequential:
        """The mappable part (input shape ``(1, channels, 1)``)."""
        return self.local


def save_local_checkpoint(model: SpikeSCR, path: Any, dt: float = DEFAULT_DT) -> None:
    """The local part as a ``{"architecture": [[class, kwargs]...], "state_dict"}`` checkpoint."""
    f, _, k, _ = model.local[0].weight.shape
    arch = [
        [
            "snn_deploy.nn.Conv2d",
            {
                "in_channels": 1,
                "out_channels": f,
                "kernel_size": [k, 1],
                "padding": [k // 2, 0],
                "bias": False,
            },
        ],
        [
            "snn_deploy.nn.LIF",
            {"shape": [f, model.channels, 1], "beta": float(model.local[1].beta.flatten()[0])},
        ],
        ["torch.nn.Flatten", {}],
        [
            "snn_deploy.nn.Linear",
            {
                "in_features": model.local[3].in_features,
                "out_features": model.local[3].out_features,
                "bias": False,
            },
        ],
        [
            "snn_deploy.nn.LIF",
            {"shape": model.local[4].shape[0], "beta": float(model.local[4].beta.flatten()[0])},
        ],
    ]
    torch.save(
        {"architecture": arch, "state_dict": model.local.state_dict(),
         "input_shape": [1, model.channels, 1], "dt": dt},
        path,
    )  # fmt: skip
