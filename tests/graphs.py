"""Small NIR graphs built in code, covering every supported node type."""

from __future__ import annotations

import nir
import numpy as np
import scipy.sparse as sp


def lif_node(size: int, **kw: float) -> nir.LIF:
    """A LIF node of ``size`` neurons with scalar parameters (defaults tau 10 ms, r 2,
    threshold 1, leak and reset 0), each overridable."""
    p = {"tau": 1e-2, "r": 2.0, "v_leak": 0.0, "v_threshold": 1.0, "v_reset": 0.0, **kw}
    return nir.LIF(**{k: np.full(size, v) for k, v in p.items()})


def every_node_type(seed: int = 0) -> nir.NIRGraph:
    """A graph with every supported node type, a nested graph, a merge and a recurrent edge."""
    rng = np.random.default_rng(seed)
    c, h, w = 2, 6, 6
    r = lambda *s: rng.normal(size=s)  # noqa: E731
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([8])}),
            "lif": nir.CubaLIF(
                tau_syn=np.full(8, 2e-3),
                tau_mem=np.full(8, 5e-3),
                r=np.ones(8),
                v_leak=np.zeros(8),
                v_threshold=np.ones(8),
                v_reset=np.zeros(8),
                w_in=np.ones(8),
            ),
            "rec": nir.Linear(weight=r(8, 8) * 0.1),
            "output": nir.Output(output_type={"output": np.array([8])}),
        },
        edges=[("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    nodes = {
        "input": nir.Input(input_type={"input": np.array([c, h, w])}),
        "conv": nir.Conv2d(
            input_shape=(h, w),
            weight=r(4, c, 3, 3),
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=r(4),
        ),
        "if": nir.IF(
            r=np.ones((4, h, w)), v_threshold=np.ones((4, h, w)), v_reset=np.zeros((4, h, w))
        ),
        "pool": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "avg": nir.AvgPool2d(
            kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([1, 1])
        ),
        "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
        "fc": nir.Affine(weight=r(8, 36), bias=r(8) * 0.01),
        "lif": nir.LIF(
            tau=np.full(8, 4e-3),
            r=np.ones(8),
            v_leak=np.zeros(8),
            v_threshold=np.full(8, 0.5),
            v_reset=np.zeros(8),
        ),
        "scale": nir.Scale(scale=np.linspace(0.5, 1.5, 8)),
        "delay": nir.Delay(delay=np.full(8, 3e-4)),
        "sub": sub,
        "thr": nir.Threshold(threshold=np.full(8, 0.1)),
        "to1d": nir.Linear(weight=r(12, 8)),
        "li": nir.LI(tau=np.full(12, 1e-2), r=np.ones(12), v_leak=np.zeros(12)),
        "fc2": nir.Linear(weight=r(5, 8)),
        "culi": nir.CubaLI(
            tau_syn=np.full(5, 1e-3),
            tau_mem=np.full(5, 1e-3),
            r=np.ones(5),
            v_leak=np.zeros(5),
            w_in=np.ones(5),
        ),
        "output": nir.Output(output_type={"output": np.array([12])}),
        "output3": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [
        ("input", "conv"),
        ("conv", "if"),
        ("if", "pool"),
        ("pool", "avg"),
        ("avg", "flat"),
        ("flat", "fc"),
        ("fc", "lif"),
        ("lif", "scale"),
        ("scale", "delay"),
        ("delay", "sub"),
        ("lif", "sub"),
        ("sub", "thr"),
        ("thr", "to1d"),
        ("to1d", "li"),
        ("li", "output"),
        ("thr", "fc2"),
        ("fc2", "culi"),
        ("culi", "output3"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def conv1d_integrator(seed: int = 0) -> nir.NIRGraph:
    """Input [2, 6] -> Conv1d -> I (integrator) -> Output."""
    rng = np.random.default_rng(seed)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2, 6])}),
            "conv1": nir.Conv1d(
                input_shape=6,
                weight=rng.normal(size=(3, 2, 3)),
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
                bias=np.zeros(3),
            ),
            "integ": nir.I(r=np.ones((3, 4))),
            "output": nir.Output(output_type={"output": np.array([3, 4])}),
        },
        edges=[("input", "conv1"), ("conv1", "integ"), ("integ", "output")],
        type_check=False,
    )


def multilevel_chain(levels: int = 3, seed: int = 0) -> nir.NIRGraph:
    """Input(4) -> LIF (``levels`` spike levels, recurrent) -> IF (``levels``) -> Output."""
    rng = np.random.default_rng(seed)
    meta = {"snn_deploy.spike_levels": levels}
    lif = lif_node(6, tau=2e-3, r=1.0, v_threshold=0.05)
    lif.metadata.update(meta)
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc1": nir.Linear(weight=rng.normal(size=(6, 4))),
            "lif": lif,
            "rec": nir.Linear(weight=rng.normal(size=(6, 6)) * 0.3),
            "fc2": nir.Linear(weight=rng.normal(size=(3, 6))),
            "if": nir.IF(
                r=np.ones(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3), metadata=meta
            ),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "lif"),
            ("lif", "rec"),
            ("rec", "lif"),
            ("lif", "fc2"),
            ("fc2", "if"),
            ("if", "output"),
        ],
        type_check=False,
    )


def conv_codes(
    rng: np.random.Generator,
    src: tuple[int, int, int],
    channels: int,
    kernel: int,
    stride: int,
    pad: int,
    holes: float = 0.0,
) -> tuple[sp.csr_matrix, tuple[int, int, int]]:
    """Integer codes of a 2-D convolution from a ``src = (C, H, W)`` image (C order), square
    ``kernel``, ``stride`` and zero ``pad``; a fraction ``holes`` of the weights is zero (as
    small weights quantize to). Returns the matrix and the output shape."""
    cin, hs, ws = src
    h, w = (hs + 2 * pad - kernel) // stride + 1, (ws + 2 * pad - kernel) // stride + 1
    weight = rng.integers(1, 20, (channels, cin, kernel, kernel))
    weight = weight * (rng.random(weight.shape) >= holes)
    c, y, x, ci, dy, dx = np.meshgrid(
        *(np.arange(n) for n in (channels, h, w, cin, kernel, kernel)), indexing="ij"
    )
    ys, xs = y * stride - pad + dy, x * stride - pad + dx
    keep = (ys >= 0) & (ys < hs) & (xs >= 0) & (xs < ws) & (weight[c, ci, dy, dx] != 0)
    rows = ((c * h + y) * w + x)[keep]
    cols = ((ci * hs + ys) * ws + xs)[keep]
    m = sp.csr_matrix(
        (weight[c, ci, dy, dx][keep], (rows, cols)), shape=(channels * h * w, cin * hs * ws)
    )
    return m, (channels, h, w)
