"""Attention unit benchmark (docs/PERFORMANCE.md): dim 96, 4 heads, T = 100.

x (96 inputs) -> SpikingSelfAttention(96, 4 heads, steps=100) -> the integer simulator, causal
and decayed, batch 1 and 32; per step the attention unit alone (state update + read) and the
whole net. Writes bench/results/attention.json.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from snn_deploy import api
from snn_deploy import nn as snn
from snn_deploy.backends.sim.kernels import attention_read, attention_update
from snn_deploy.backends.sim.run import simulate
from snn_deploy.frontends.torch import load

DIM, HEADS, T = 96, 4, 100
OUT = Path(__file__).parent / "results" / "attention.json"


def model(decay: tuple[int, ...]) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        snn.Linear(DIM, DIM),
        snn.LIF(DIM, beta=0.5, threshold=0.5),
        snn.SpikingSelfAttention(DIM, HEADS, T, threshold=0.5, decay=decay, scale_shift=4),
    )


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rows = []
    rng = np.random.default_rng(0)
    for label, decay in (("plain", (0,) * HEADS), ("decayed", (2, 3, 4, 5))):
        _, net = api.lower_and_quantize(load(model(decay)), api.load_target("sim"), dt=1e-4)
        unit = next(iter(net.products.values()))
        for batch in (1, 32):
            x = (rng.random((batch, T, DIM)) < 0.3).astype(np.int64)
            whole = best(lambda x=x, net=net: simulate(net, {"input": x}))
            q = (rng.random((batch, HEADS, DIM // HEADS)) < 0.3).astype(np.int64)
            s = np.zeros((batch, HEADS, DIM // HEADS, DIM // HEADS), np.int64)
            shifts = np.array(unit.decay)
            registers = unit.fixed

            def unit_only(s=s, q=q, shifts=shifts, registers=registers) -> None:
                for _ in range(T):
                    s = attention_update(s, q, q, shifts, registers.state)
                    attention_read(s, q, registers.output)

            alone = best(unit_only)
            rows.append(
                {
                    "attention": label,
                    "batch": batch,
                    "state_bits": unit.fixed.state.width,
                    "output_bits": unit.fixed.output.width,
                    "unit_us_per_sample_step": 1e6 * alone / (T * batch),
                    "net_us_per_sample_step": 1e6 * whole / (T * batch),
                }
            )
            print(rows[-1])
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "numpy": np.__version__,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
