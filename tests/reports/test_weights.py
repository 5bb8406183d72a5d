"""Weight histograms, float vs dequantized codes (issue 21 item 2), by hand on a 3x3 net."""

from __future__ import annotations

import warnings

import nir
import numpy as np

import snn_deploy as sd
from snn_deploy.reports.html import _MAX_HISTOGRAMS, render_html


def _net(weight: np.ndarray) -> nir.NIRGraph:
    size = weight.shape[0]
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([size])}),
            "fc": nir.Linear(weight=weight),
            "if": nir.IF(r=np.ones(size), v_threshold=np.full(size, 0.5), v_reset=np.zeros(size)),
            "output": nir.Output(output_type={"output": np.array([size])}),
        },
        edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
        type_check=False,
    )


def test_histograms_match_the_hand_computation() -> None:
    # five synapses; the largest |w| (1.0) sets the step, 2**-7 (code 128)
    w = np.array([[1.0, 0.026, 0.0], [0.0, 1.0, 0.001], [0.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
            # Python's default filters keep these off a terminal (networkx, under Lava,
            # misses pandas)
            warnings.filterwarnings("ignore", category=hidden)
        report = sd.compile(_net(w), "sim").report
    (h,) = report["weights"]
    assert (h["projection"], h["src"], h["dst"], h["synapses"]) == ("fc", "input", "if", 5)
    assert h["lsb"] == 2.0**-7
    # bins: [0, 1] in 40 steps of 0.025 (0.0 is the smallest value: 0.001 rounds to code 0)
    np.testing.assert_allclose(h["edges"], np.linspace(0.0, 1.0, 41))
    # float: 0.001 in bin 0, 0.026 in bin 1, three 1.0 in the last bin (closed on the right)
    assert h["float"] == [1, 1] + [0] * 37 + [3]
    # quantized: 0.001 -> code 0 -> 0.0 and 0.026 -> code 3 -> 0.0234 both in bin 0
    assert h["quantized"] == [2] + [0] * 38 + [3]


def test_page_draws_at_most_the_cap_and_says_so() -> None:
    report = sd.compile(_net(np.eye(3)), "sim").report
    one = report["weights"][0]
    report["weights"] = [{**one, "projection": f"p{k}"} for k in range(_MAX_HISTOGRAMS + 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_html(report)
    assert "<h2>Weights, float vs quantized</h2>" in page
    assert f"p{_MAX_HISTOGRAMS - 1} (input" in page and f"p{_MAX_HISTOGRAMS} (input" not in page
    assert f"{_MAX_HISTOGRAMS} of {_MAX_HISTOGRAMS + 4} projections drawn" in page


def _deep_net(layers: int, size: int) -> nir.NIRGraph:
    """Input -> ``layers`` IF populations of ``size``, chained, with long dotted names."""
    rng = np.random.default_rng(0)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([size])})}
    edges, prev = [], "input"
    for k in range(layers):
        fc, pop = f"encoder.layers.{k}.self_attention.fc", f"encoder.layers.{k}.if"
        nodes[fc] = nir.Linear(weight=rng.normal(0.2, 1.0, size=(size, size)))
        nodes[pop] = nir.IF(r=np.ones(size), v_threshold=np.ones(size), v_reset=np.zeros(size))
        edges += [(prev, fc), (fc, pop)]
        prev = pop
    nodes["output"] = nir.Output(output_type={"output": np.array([size])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_a_deep_net_page_fits_its_width_without_warnings() -> None:
    """21 populations (issue 21 item 2, 'readable at 5,000 neurons'): every table scrolls in
    its own box, long dotted names may wrap after a dot, and the rate plot's legend moves
    beside its axes; nothing warns."""
    x = (np.random.default_rng(1).random((3, 12, 8)) < 0.3).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for hidden in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
            # Python's default filters keep these off a terminal (networkx, under Lava,
            # misses pandas)
            warnings.filterwarnings("ignore", category=hidden)
        report = sd.compile(
            _deep_net(21, 8), "loihi1", inputs={"input": x}, labels=np.array([0, 1, 2])
        ).report
        page = render_html(report)
    assert page.count("<table>") == page.count('<div class="wide"><table>') > 5
    assert "encoder.<wbr>layers.<wbr>20.<wbr>self_attention.<wbr>fc" in page
    assert f"{_MAX_HISTOGRAMS} of 21 projections drawn" in page
    assert "Paper-style energy" in page and "confusion matrix, output output" in page


def test_activation_histograms_count_each_neurons_events_per_inference() -> None:
    # the IF copies its input (weight 1, threshold 0.5): neuron k spikes one step after each
    # input spike of channel k, so its events per inference are known by hand in both runs
    x = np.zeros((2, 6, 3))
    x[0, :4, 0] = 1  # sample 0: channel 0 fires 4 times, channel 1 twice
    x[0, :2, 1] = 1
    x[1, :2, 0] = 1  # sample 1: channel 0 twice; channel 2 never
    report = sd.compile(_net(np.eye(3)), "sim", inputs={"input": x}).report
    h = report["activations"]["if"]
    # per neuron, the mean over the 2 samples: (4 + 2) / 2 = 3, (2 + 0) / 2 = 1, 0
    np.testing.assert_allclose(h["edges"], np.linspace(0.0, 3.0, 21))
    expected = [1] + [0] * 5 + [1] + [0] * 12 + [1]  # 0 in bin 0, 1.0 in bin 6, 3.0 last
    assert h["float"] == h["quantized"] == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_html(report)
    assert "<h2>Activations, float vs quantized</h2>" in page
