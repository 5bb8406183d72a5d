"""Test networks for the FPGA backend beyond ``tests/backends/sim``'s random chain: quantized
ones, and the shipped braille example."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn_deploy.ir.net import (
    Attention,
    Gate,
    Net,
    NeuronFixed,
    Operand,
    Population,
    ProductFixed,
    Projection,
    SynapseFixed,
)
from snn_deploy.ir.types import FixedPoint, ResetMode
from snn_deploy.target.load import load_target
from tests.conftest import REPO

SPEC = load_target("sim").numeric
BRAILLE = REPO / "models/braille_noDelay_bias_zero.nir"  # two populations: two cores


def braille_inputs() -> dict[str, Any]:
    """Two of the example's clips, 30 steps: the vectors a compile runs in Icarus."""
    return {"input": np.load(REPO / "models/braille_sample_inputs.npz")["input"][:2, :30]}


def population(name: str, fixed: NeuronFixed, *, spiking: bool = True) -> Population:
    """A population around integer parameters (float fields are placeholders)."""
    return Population(
        name=name,
        node_type="CubaLIF" if spiking else "CubaLI",
        shape=(fixed.du.size,),
        alpha=0.5,
        beta=0.5,
        bias=0.0,
        threshold=1.0 if spiking else None,
        reset=ResetMode.ZERO,
        fixed=fixed,
    )


def projection(name: str, src: str, dst: str, codes: np.ndarray, exp: int, delay: int = 0):
    """A projection with the given integer codes."""
    return Projection(
        name=name,
        src=src,
        dst=dst,
        weight=sp.csr_matrix(codes, dtype=float),
        delay=delay,
        fixed=SynapseFixed(codes=sp.csr_matrix(codes), exp=exp),
    )


def corner_net() -> Net:
    """Extreme codes and exponents: u wraps (and leaves 24 bits), v saturates both ways.

    One graded input of 3 values feeds a spiking population ``p`` and a non-spiking one
    ``q`` (same parameters; its saturated ``v`` is visible) of 6 neurons each, with codes of
    +-127 and -128, exponents
    -8..7 over three projections, no current memory (``du = 4095``) for half of them and
    long memory for the others, and thresholds at the top of the range.
    """
    fixed = NeuronFixed(
        scale=1.0,
        du=np.array([4095, 4095, 4095, 0, 100, 2047]),
        dv=np.array([0, 4095, 17, 0, 2048, 1]),
        vth=np.array([2**17 - 1, 1, 2**16, 2**17 - 1, 5, 2**17 - 1]),
        bias_mant=np.array([4095, -4096, 0, 17, -1, 4095]),
        bias_exp=np.array([7, 7, 0, 3, 1, 7]),
    )
    codes = np.array([[127, -128, 127], [-127, 127, -128]] * 3)
    projs = [
        projection(f"{name}>{dst}", "x", dst, c, exp, delay)
        for dst in ("p", "q")
        for name, c, exp, delay in (
            ("big", codes, 7, 0),
            ("small", codes[:, ::-1], -8, 1),
            ("mid", codes[::-1], 0, 4),
        )
    ]
    readout = dataclasses.replace(fixed, vth=None)
    net = Net(
        dt=1e-3,
        inputs={"x": (3,)},
        populations={"p": population("p", fixed), "q": population("q", readout, spiking=False)},
        projections=projs,
        outputs={"y": "p"},
        numeric=SPEC,
    )
    net.verify()
    return net


def graph_net(rng: np.random.Generator) -> Net:
    """Two inputs, a bias-only population, a non-spiking middle layer read by a spiking one.

    Covers: several input ports, a core without incoming projections, graded ``v`` values as
    a projection source, and two projections with different delays from one source.
    """

    def fixed(n: int, spiking: bool) -> NeuronFixed:
        return NeuronFixed(
            scale=1.0,
            du=rng.integers(0, 4096, n),
            dv=rng.integers(0, 4096, n),
            vth=rng.integers(1, 300, n) if spiking else None,
            bias_mant=rng.integers(-50, 50, n),
            bias_exp=rng.integers(0, 3, n),
        )

    def codes(shape: tuple[int, int]) -> np.ndarray:
        return rng.integers(-128, 128, shape) * (rng.random(shape) < 0.6)

    pops = {
        "osc": population("osc", dataclasses.replace(fixed(3, True), bias_mant=np.full(3, 40))),
        "li": population("li", fixed(4, False), spiking=False),
        "out": population("out", fixed(5, True)),
    }
    projs = [
        projection("a>li", "a", "li", codes((4, 7)), -2),
        projection("b>li", "b", "li", codes((4, 2)), 1, delay=2),
        projection("osc>li", "osc", "li", codes((4, 3)), 0),
        projection("li>out", "li", "out", codes((5, 4)), -8),
        projection("li>out_late", "li", "out", codes((5, 4)), -8, delay=3),
        projection("out>out", "out", "out", codes((5, 5)), 0),
    ]
    net = Net(
        dt=1e-3,
        inputs={"a": (7,), "b": (2,)},
        populations=pops,
        projections=projs,
        outputs={"spikes": "out", "raw": "a"},
        numeric=SPEC,
    )
    net.verify()
    return net


def product_net(
    rng: np.random.Generator, *, dim: int = 8, heads: int = 2, state_bits: int = 10
) -> Net:
    """Attention and Gate reading signed graded inputs directly, with repeated and permuted
    operand indices, a decay of 1 and of 7, narrow registers that saturate both ways, and a
    Gate shift; a spiking population reads both units.

    Covers: signed (input) operands in every role (integer products, not AND or mask),
    arbitrary ``Operand.index``, state and output saturation at both ends, the floor shift of a
    negative gate product.
    """
    n_in = 6
    d = dim // heads
    pick = lambda: Operand(src="x", index=rng.integers(0, n_in, dim))  # noqa: E731
    att = Attention(
        name="att",
        size=dim,
        heads=heads,
        q=pick(),
        k=pick(),
        v=pick(),
        decay=tuple(int(x) for x in rng.choice([1, 7], heads)),
        causal=True,
        steps=10,
        fixed=ProductFixed(
            output=FixedPoint(width=state_bits + 4, signed=True),
            state=FixedPoint(width=state_bits, signed=True),
        ),
    )
    gate = Gate(
        name="gate",
        size=dim,
        a=pick(),
        g=pick(),
        fixed=ProductFixed(output=FixedPoint(width=9, signed=True), shift=3),
    )
    fixed = NeuronFixed(
        scale=1.0,
        du=np.full(d, 4095),
        dv=np.full(d, 100),
        vth=np.full(d, 40),
        bias_mant=np.zeros(d, np.int64),
        bias_exp=np.zeros(d, np.int64),
    )
    projs = [
        projection("att>p", "att", "p", rng.integers(-128, 128, (d, dim)), -6),
        projection("gate>p", "gate", "p", rng.integers(-128, 128, (d, dim)), -4),
    ]
    net = Net(
        dt=1e-3,
        inputs={"x": (n_in,)},
        populations={"p": population("p", fixed)},
        projections=projs,
        outputs={"y": "p"},
        numeric=SPEC,
        products={"att": att, "gate": gate},
    )
    net.verify()
    return net
