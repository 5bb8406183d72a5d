"""ONNX ReLU ANN -> IF SNN conversion (threshold balancing), on scikit-learn's 8x8 digits.

The ANN (Conv+BatchNorm+ReLU, AveragePool, Flatten, Gemm+ReLU, Gemm) is trained here for a
second in torch and written with ``onnx.helper`` (BatchNorm as its own node, to test the
folding). Measured: the SNN's prediction agrees with the ANN's (argmax) on the held-out images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.toolchain("onnx")

torch = pytest.importorskip("torch")

from snn_deploy import api  # noqa: E402
from snn_deploy.backends.sim.run import simulate  # noqa: E402
from snn_deploy.errors import UnsupportedOpError  # noqa: E402
from snn_deploy.frontends.nir import load as load_nir  # noqa: E402

STEPS = 64


def _data():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = (digits.images / 16.0)[:, None].astype(np.float64)
    return x, digits.target


def _train(x, y):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    xt, yt = torch.as_tensor(x).float(), torch.as_tensor(y)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.double().eval()


def _to_onnx(net, path: Path, extra_op: str | None = None) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    conv, bn, _, _, _, fc1, _, fc2 = net
    p = lambda t: t.detach().numpy().astype(np.float32)  # noqa: E731
    inits = [
        numpy_helper.from_array(p(conv.weight), "cw"),
        numpy_helper.from_array(p(conv.bias), "cb"),
        numpy_helper.from_array(p(bn.weight), "g"),
        numpy_helper.from_array(p(bn.bias), "b"),
        numpy_helper.from_array(p(bn.running_mean), "m"),
        numpy_helper.from_array(p(bn.running_var), "v"),
        numpy_helper.from_array(p(fc1.weight), "w1"),
        numpy_helper.from_array(p(fc1.bias), "b1"),
        numpy_helper.from_array(p(fc2.weight), "w2"),
        numpy_helper.from_array(p(fc2.bias), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node(
            "BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], epsilon=bn.eps, name="bn"
        ),
        helper.make_node("Relu", ["n"], ["r1"], name="relu1"),
        helper.make_node(
            "AveragePool", ["r1"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"
        ),
        helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flat"),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1, name="fc1"),
        helper.make_node(extra_op or "Relu", ["h"], ["r2"], name="act2"),
        helper.make_node("Gemm", ["r2", "w2", "b2"], ["y"], transB=1, name="fc2"),
    ]
    graph = helper.make_graph(
        nodes,
        "ann",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def test_converted_snn_agrees_with_the_ann(tmp_path: Path):
    from snn_deploy.frontends.onnx import ann_forward, convert, read

    x, y = _data()
    net = _train(x[:800], y[:800])
    _to_onnx(net, tmp_path / "ann.onnx")
    conv = convert(tmp_path / "ann.onnx", x[:300])
    test = x[1200:1300]
    ann = ann_forward(read(tmp_path / "ann.onnx")[0], test)[-1]
    with torch.no_grad():  # the ONNX reading (BN folded) reproduces the torch ANN
        np.testing.assert_allclose(ann, net(torch.as_tensor(test)).numpy(), rtol=1e-4, atol=1e-4)
    graph = load_nir(conv.nir_graph)
    float_net, qnet = api.lower_and_quantize(graph, api.load_target("sim"))
    data = {"input": conv.encode(test, STEPS)}
    f = simulate(float_net, data, fixed=False)
    q = simulate(qnet, data, fixed=True)
    snn_pred = f.outputs["output"].sum(axis=1).argmax(-1)
    agree = float(np.mean(snn_pred == ann.argmax(-1)))
    ann_acc = float(np.mean(ann.argmax(-1) == y[1200:1300]))
    snn_acc = float(np.mean(snn_pred == y[1200:1300]))
    quant = api.agreement(f, q, qnet)["outputs"]["output"]["prediction_agreement"]
    print(
        f"ANN acc {ann_acc:.3f}  SNN acc {snn_acc:.3f}  "
        f"SNN-vs-ANN {agree:.3f}  quant-vs-float {quant:.3f}"
    )
    assert agree >= 0.9
    assert quant >= 0.9


def test_unsupported_op_is_named(tmp_path: Path):
    from snn_deploy.frontends.onnx import convert

    x, y = _data()
    torch.manual_seed(0)
    _to_onnx(_train(x[:10], y[:10]), tmp_path / "ann.onnx", extra_op="Sigmoid")
    with pytest.raises(
        UnsupportedOpError, match=r"ONNX op Sigmoid \(node 'act2'\).*supported: .*Gemm"
    ):
        convert(tmp_path / "ann.onnx", x[:10])
