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
* Spiking read-out (issue 23, ``readout="spiking"``): the read-out is a CubaLIF population
  (``alpha_out``, ``beta_out``, θ = 1, subtract reset, binary spikes) instead of the LI voltage,
  and the logits are its spike counts over the clip: what a chip whose output neurons spike
  (Xylo Audio 2: at most one spike per output and step) reports. ``compare=">="`` makes every
  threshold test ``v >= θ`` (Xylo's; metadata ``"snn_deploy.threshold_compare"``).
* Multi-level spikes (2d): ``RecurrentCuba(levels=D)``, whose hidden neurons emit the integer
  spike ``s = #{k in 1..D : v > k·θ}`` = ``clamp(ceil(v/θ) - 1, 0, D)`` per step (θ = 1; strict
  like the binary ``v > θ``; IML-Spikeformer's multi-level spike, Loihi 2's graded spike),
  reset to zero where ``s > 0`` (``reset="subtract"``: ``v -= s·θ``); the projections carry
  ``W·s``. The surrogate gradient is the sum of the binary fast-sigmoid surrogate at each level
  (``snn_deploy.nn.multispike``). ``to_nir`` writes the hidden CubaLIF with
  ``metadata["snn_deploy.spike_levels"] = D`` and its ``"snn_deploy.reset"``;
  ``load_checkpoint`` reads a saved model back.

The speech transformers (SpikeSCR- and IML-Spikeformer-style) are in ``transformer.py``.
"""

from __future__ import annotations

import io
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from examples.kws import frontend
from snn_deploy.frontends.nir import COMPARE_KEY, INPUT_MAX_KEY, LEVELS_KEY, RESET_KEY
from snn_deploy.ir.net import DEFAULT_DT
from snn_deploy.nn import multispike, spike

N_CLASSES = 12


def decay_tau(decay: float, dt: float) -> float:
    """The time constant at ``dt`` of a per-step decay: ``dt / (1 - decay)``."""
    return dt / (1.0 - decay)


def shift(x: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """``x`` delayed by ``steps`` along time (axis 0), zeros first: one projection delay each."""
    return torch.cat([torch.zeros_like(x[:steps]), x[:-steps]]) if steps else x


def input_node(channels: int, steps: int) -> nir.Input:
    """The Input node of a model fed ``frontend.spikes`` in ``steps`` bins per clip: it declares
    the largest spike count of a bin (``snn_deploy.input_max``) when that is above one, so the
    quantization sizes the registers for graded input with no ``--inputs``."""
    top = frontend.max_count(steps)
    return nir.Input(
        input_type={"input": np.array([channels])},
        metadata={INPUT_MAX_KEY: float(top)} if top > 1 else {},
    )


def li_readout(a: torch.Tensor, beta: float) -> torch.Tensor:
    """The LI read-out ``v = beta·v + a[t]`` over ``a [T, B, classes]``, its voltage averaged
    over time: the logits (same argmax as the sum, O(1) values)."""
    v = torch.zeros_like(a[0])
    total = torch.zeros_like(v)
    for t in range(a.shape[0]):
        v = beta * v + a[t]
        total = total + v
    return total / a.shape[0]


class RecurrentCuba(torch.nn.Module):
    """Recurrent CUBA LIF, LI or spiking read-out: ``[T, B, C]`` -> logits ``[B, classes]``."""

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
        readout: str = "li",
        alpha_out: float = 0.8,
        compare: str = ">",
    ) -> None:
        super().__init__()
        self.w_in = torch.nn.Parameter(torch.randn(hidden, channels) * (2.0 / channels) ** 0.5)
        self.w_rec = torch.nn.Parameter(torch.randn(hidden, hidden) * (0.5 / hidden) ** 0.5)
        self.w_out = torch.nn.Parameter(torch.randn(classes, hidden) * (1.0 / hidden) ** 0.5)
        self.alpha, self.beta, self.beta_out = alpha, beta, beta_out
        self.levels = levels  # 1: binary spikes; D > 1: multi-level spikes 0..D
        self.reset = reset  # "zero" or "subtract" (v -= s·θ)
        self.readout = readout  # "li": voltage averaged over time; "spiking": spike counts
        self.alpha_out = alpha_out  # the spiking read-out's current decay
        self.ge = compare == ">="  # threshold test v >= θ rather than v > θ

    def forward(self, x: torch.Tensor, *, return_spikes: bool = False) -> Any:
        steps, b = x.shape[0], x.shape[1]
        h = self.w_in.shape[0]
        # projection delay: the input of step t-1 reaches u at step t
        a_in = F.linear(shift(x), self.w_in)
        u = x.new_zeros(b, h)
        v = x.new_zeros(b, h)
        s = x.new_zeros(b, h)
        out = []
        for t in range(steps):
            u = self.alpha * u + a_in[t] + F.linear(s, self.w_rec)
            v = self.beta * v + u
            s = multispike(v, 1.0, self.levels, self.ge)
            v = v - s.detach() if self.reset == "subtract" else v * (s.detach() == 0)
            out.append(s)
        spikes = torch.stack(out)
        a_out = F.linear(shift(spikes), self.w_out)
        if self.readout == "spiking":
            total = self._spike_counts(a_out)
        else:
            total = li_readout(a_out, self.beta_out)
        return (total, spikes) if return_spikes else total

    def _spike_counts(self, a: torch.Tensor) -> torch.Tensor:
        """The spiking read-out's spike counts over ``a [T, B, classes]``: CubaLIF, θ = 1,
        subtract reset, binary."""
        u = torch.zeros_like(a[0])
        v = torch.zeros_like(u)
        total = torch.zeros_like(u)
        for t in range(a.shape[0]):
            u = self.alpha_out * u + a[t]
            v = self.beta_out * v + u
            s = spike(v - 1.0, self.ge)
            v = v - s.detach()
            total = total + s
        return total

    def to_nir(self, steps: int, dt: float = DEFAULT_DT) -> nir.NIRGraph:
        """The exact NIR graph (LIF/CubaLIF formulas of ``snn_deploy.nn.export``) for inputs of
        ``steps`` bins per clip (``input_node``).

        The hidden CubaLIF carries its reset (``"snn_deploy.reset"``) and, when ``levels > 1``,
        ``metadata["snn_deploy.spike_levels"] = D``.
        """
        h, c = self.w_in.shape
        k = self.w_out.shape[0]
        w = lambda p: p.detach().double().numpy().copy()  # noqa: E731
        nodes = {
            "input": input_node(c, steps),
            "w_in": nir.Linear(weight=w(self.w_in)),
            "hidden": cuba_node(h, self.alpha, self.beta, dt, self._hidden_metadata()),
            "w_rec": nir.Linear(weight=w(self.w_rec)),
            "w_out": nir.Linear(weight=w(self.w_out)),
            "readout": self._readout_node(k, dt),
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

    def _readout_node(self, k: int, dt: float) -> nir.NIRNode:
        if self.readout == "li":
            tau_o, ones = decay_tau(self.beta_out, dt), np.ones(k)
            return nir.LI(tau=tau_o * ones, r=tau_o / dt * ones, v_leak=0 * ones)
        meta = {RESET_KEY: "subtract", **self._compare_metadata()}
        return cuba_node(k, self.alpha_out, self.beta_out, dt, meta)

    def _hidden_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {RESET_KEY: self.reset, **self._compare_metadata()}
        if self.levels > 1:
            meta[LEVELS_KEY] = int(self.levels)
        return meta

    def _compare_metadata(self) -> dict[str, Any]:
        return {COMPARE_KEY: ">="} if self.ge else {}


def cuba_node(
    n: int, alpha: float, beta: float, dt: float, metadata: dict[str, Any]
) -> nir.CubaLIF:
    """``n`` CubaLIF neurons stepping ``u = alpha·u + x; v = beta·v + u`` at ``dt``, θ = 1
    (the formulas of ``snn_deploy.nn.export``)."""
    tau_syn, tau_mem, ones = decay_tau(alpha, dt), decay_tau(beta, dt), np.ones(n)
    return nir.CubaLIF(
        tau_syn=tau_syn * ones,
        tau_mem=tau_mem * ones,
        r=tau_mem / dt * ones,
        v_leak=0 * ones,
        v_threshold=ones.copy(),
        v_reset=0 * ones,
        w_in=tau_syn / dt * ones,
        metadata=metadata,
    )


def save_checkpoint(
    model: RecurrentCuba, path: Any, *, steps: int, dt: float = DEFAULT_DT, **meta: Any
) -> None:
    """``{"architecture": <NIR bytes>, "dt": dt, "meta": {"steps": steps, ...}}``: no pickled
    code."""
    buf = io.BytesIO()
    nir.write(buf, model.to_nir(steps, dt))
    torch.save({"architecture": buf.getvalue(), "dt": dt, "meta": {"steps": steps, **meta}}, path)


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
    spiking = isinstance(readout, nir.CubaLIF)
    w = {k: torch.tensor(np.asarray(graph.nodes[k].weight), dtype=torch.float32)
         for k in ("w_in", "w_rec", "w_out")}  # fmt: skip
    model = RecurrentCuba(
        channels=w["w_in"].shape[1],
        hidden=w["w_in"].shape[0],
        classes=w["w_out"].shape[0],
        alpha=decay(hidden.tau_syn),
        beta=decay(hidden.tau_mem),
        beta_out=decay(readout.tau_mem if spiking else readout.tau),
        levels=int(hidden.metadata.get(LEVELS_KEY, 1)),
        reset=str(hidden.metadata.get(RESET_KEY, "zero")),
        readout="spiking" if spiking else "li",
        alpha_out=decay(readout.tau_syn) if spiking else 0.8,
        compare=str(hidden.metadata.get(COMPARE_KEY, ">")),
    )
    model.load_state_dict(w)
    return model.eval()
