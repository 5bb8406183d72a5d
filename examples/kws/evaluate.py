"""The end-to-end table of docs/SPEECH.md, from real runs through the public API.

    python -m examples.kws.evaluate [--loihi 24] [--fpga 4] [--only t100,t40,ml3,spikescr_t100,...]

Every accuracy is given on the **test** split (``build/kws/kws_audio_test.npz``: recipe seed
``dataset.TEST_SEED``, held-out voices only; used for nothing else) with its 95 % Wilson score
interval, and on the **validation** split (seed 0, held-out voices) that every choice was made
on. Predictions follow the decision rule of docs/SEMANTICS.md §5 (``train.classify``: ties to
the lowest class, an undecided read-out means ``_silence_``).

For each shipped model (``models/kws_rnn_t100.pt`` on T = 100 inputs, ``models/kws_rnn_t40.pt``
on T = 40 inputs of the same clips, the multi-level ``models/kws_rnn_ml3_t100.pt`` on
T = 100): float accuracy (float simulator), quantized accuracy (``sim``; ``max-abs``, and
``--calibrate`` on the clips of ``models/kws_calibrate_inputs.npz``), ``loihi-sim`` accuracy on
the first test clips (asserted equal to ``sim`` output for output), FPGA RTL accuracy on a few
(Icarus Verilog, asserted equal to ``sim``), Loihi 2 cores, energy per inference and latency.
The speech transformers (``models/kws_spikescr_t{100,40}.pt``, ``models/kws_iml_t{100,40}.pt``)
go through the same steps, whole: no host part.
Writes ``build/kws/results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from examples.kws import dataset
from examples.kws.train import BUILD, MODELS, XYLO_CHANNELS, classify, features, xylo_labels
from snn_deploy import api
from snn_deploy.backends.base import Trace
from snn_deploy.errors import DesignRuleError
from snn_deploy.ir.net import Net
from snn_deploy.target.load import load_target


def predictions(trace: Any) -> np.ndarray:
    (out,) = trace.outputs.values()
    return classify(np.asarray(out).sum(axis=1))


def padded(x: np.ndarray, steps: int) -> np.ndarray:
    """Clips ``x [n, T, C]`` followed by ``steps`` steps of zero input: the network's answer read
    out ``steps`` steps after the clip ends (a pipeline of that depth needs them)."""
    return np.concatenate([x, np.zeros((x.shape[0], steps, *x.shape[2:]), x.dtype)], axis=1)


def wilson(correct: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of the proportion ``correct / n`` (scipy).

    >>> [round(v, 4) for v in wilson(87, 100)]
    [0.7902, 0.9224]
    """
    ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def score(pred: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy of ``pred`` with its count and 95 % Wilson interval."""
    correct = int(np.sum(pred == y))
    return {
        "accuracy": correct / len(y),
        "correct": correct,
        "samples": len(y),
        "wilson95": wilson(correct, len(y)),
    }


def quantization_study(
    graph: Any,
    x: np.ndarray,
    y: np.ndarray,
    calibrate: np.ndarray,
    target_name: str = "loihi2",
    cnet: Net | None = None,
) -> tuple[dict[str, Any], Net, Trace]:
    """Accuracy on ``x`` of the float net and of the target's quantization, ``max-abs`` and
    ``--calibrate`` (on ``calibrate``; ``cnet`` if a compile quantized it already), with each
    one's prediction agreement with the float net and its discordant clips (float right and
    quantized wrong, and the reverse). Also returns the ``max-abs`` net and its ``sim`` trace on
    ``x``."""
    inputs = {"input": x.astype(np.float64)}
    target = load_target(target_name)
    float_net, net = api.lower_and_quantize(graph, target)
    if cnet is None:
        _, cnet = api.lower_and_quantize(
            graph, target, calibrate={"input": calibrate.astype(np.float64)}
        )
    ftrace = api.simulate(float_net, inputs, fixed=False)
    pf = predictions(ftrace)
    (fout,) = ftrace.outputs.values()
    out: dict[str, Any] = {
        "float": score(pf, y),
        "float_accuracy": float(np.mean(pf == y)),
        "float_undecided": int(np.sum(np.all(np.asarray(fout).sum(axis=1) == 0, axis=-1))),
    }
    traces = {}
    for key, n in (("max_abs", net), ("calibrated", cnet)):
        traces[key] = api.simulate(n, inputs, target="sim")
        p = predictions(traces[key])
        out[key] = {
            "sim": score(p, y),
            "sim_accuracy": float(np.mean(p == y)),
            "float_vs_sim_prediction_agreement": float(np.mean(pf == p)),
            "float_right_sim_wrong": int(np.sum((pf == y) & (p != y))),
            "float_wrong_sim_right": int(np.sum((pf != y) & (p == y))),
        }
    out["calibrated"]["calibration_clips"] = len(calibrate)
    return out, net, traces["max_abs"]


def evaluate_model(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    calibrate: np.ndarray,
    *,
    n_loihi: int,
    n_fpga: int,
    n_energy: int,
    readout_pad: int = 0,
) -> dict[str, Any]:
    """Every figure of the table for one model on ``x [n, T, 64]``; with ``readout_pad`` also
    its float and quantized accuracy read out that many steps after the clip (zero input)."""
    r: dict[str, Any] = {"model": str(path), "steps": int(x.shape[1]), "test_samples": len(x)}
    graph = api.load(path)
    inputs = {"input": x.astype(np.float64)}
    study, net, sim = quantization_study(graph, x, y, calibrate)
    r.update(study)
    if readout_pad:
        r["readout_pad"] = {
            "steps": readout_pad,
            **quantization_study(graph, padded(x, readout_pad), y, calibrate)[0],
        }
    ps = predictions(sim)
    if n_loihi:
        t0 = time.time()
        lo = api.simulate(net, {"input": inputs["input"][:n_loihi]}, target="loihi-sim")
        for k in sim.outputs:  # bit-exact: every output value of every step
            np.testing.assert_array_equal(
                np.asarray(lo.outputs[k]), np.asarray(sim.outputs[k])[:n_loihi]
            )
        pl = predictions(lo)
        assert np.array_equal(pl, ps[:n_loihi])
        r["loihi_sim"] = {
            "samples": n_loihi,
            "accuracy": float(np.mean(pl == y[:n_loihi])),
            "sim_accuracy_same_samples": float(np.mean(ps[:n_loihi] == y[:n_loihi])),
            "equal_to_sim": True,
            "seconds": round(time.time() - t0, 1),
        }
    try:
        rep = api.compile(path, "fpga-artix7-35t").report
    except DesignRuleError as exc:  # more than 255 spike levels, a net too big for the board
        r["fpga_rejected"] = str(exc)
        n_fpga = 0
    if n_fpga:
        t0 = time.time()
        _, fnet = api.lower_and_quantize(graph, load_target("fpga-artix7-35t"))
        sub = {"input": inputs["input"][:n_fpga]}
        rtl = api.simulate(fnet, sub, target="fpga-artix7-35t")
        ref = api.simulate(fnet, sub, target="sim")
        for k in ref.outputs:
            np.testing.assert_array_equal(np.asarray(rtl.outputs[k]), np.asarray(ref.outputs[k]))
        pr = predictions(rtl)
        r["fpga_rtl"] = {
            "samples": n_fpga,
            "accuracy": float(np.mean(pr == y[:n_fpga])),
            "equal_to_sim": True,
            "seconds": round(time.time() - t0, 1),
        }
        r["fpga_notes"] = rep["backend_notes"]
    res = api.compile(path, "loihi2", inputs={"input": inputs["input"][:n_energy]})
    rep = res.report
    e, pe = rep["energy"], rep["paper_energy"]
    r["loihi2"] = {
        "energy_samples": n_energy,
        "cores_used": rep["placement"]["cores_used"] if rep["placement"] else None,
        "neurons": sum(p.size for p in res.net.populations.values()),
        "total_uj_per_inference": e["total_uj_per_inference"],
        "dynamic_uj_per_inference": e["dynamic_uj_per_inference"],
        "total_is_lower_bound": e["total_is_lower_bound"],
        "per_inference": e["per_inference"],
        "latency": e["latency"],
        "paper_snn_uj": pe["snn_uj"],
        "paper_ann_uj": pe["ann_uj"],
        "paper_sops": pe["sops"],
    }
    return r


MODELS_EVALUATED = {
    "t100": ("kws_rnn_t100.pt", 100),
    "t40": ("kws_rnn_t40.pt", 40),
    "ml3": ("kws_rnn_ml3_t100.pt", 100),
    "spikescr_t100": ("kws_spikescr_t100.pt", 100),
    "spikescr_t40": ("kws_spikescr_t40.pt", 40),
    "spikescr_k15_t40": ("kws_spikescr_k15_t40.pt", 40),
    "iml_t100": ("kws_iml_t100.pt", 100),
    "iml_t40": ("kws_iml_t40.pt", 40),
}


def evaluate_xylo(
    path: Path, x: np.ndarray, y: np.ndarray, calibrate: np.ndarray, *, n_energy: int
) -> dict[str, Any]:
    """The Xylo Audio 2 model on ``x [n, 100, 16]``: float, quantized (``sim``, max-abs and
    calibrated) and XyloSim accuracy (SynSense's simulator on every clip, asserted equal to
    ``sim`` output for output, for the calibrated net: the one shipped), and the cycle-model
    energy of ``compile --target xylo-audio2`` on the first ``n_energy`` clips. The calibrated
    net is quantized once, by that compile, and is the net every figure is of."""
    inputs = {"input": x.astype(np.float64)}
    res = api.compile(path, "xylo-audio2", inputs={"input": inputs["input"][:n_energy]},
                      calibrate={"input": calibrate.astype(float)})  # fmt: skip
    net = res.net
    study, _, _ = quantization_study(res.graph, x, y, calibrate, "xylo-audio2", cnet=net)
    t0 = time.time()
    chip = api.simulate(net, inputs, target="xylo-audio2")
    seconds = time.time() - t0
    sim = api.simulate(net, inputs, target="sim")
    for k in sim.outputs:  # bit-exact: every output value of every step of every clip
        np.testing.assert_array_equal(np.asarray(chip.outputs[k]), np.asarray(sim.outputs[k]))
    study["xylosim"] = {**score(predictions(chip), y), "equal_to_sim": True,
                        "seconds": round(seconds, 1)}  # fmt: skip
    e, notes = res.report["energy"], res.report["backend_notes"]
    study["energy"] = {
        "samples": n_energy,
        "uj_per_inference": e["total_uj_per_inference"],
        "cycles": e["cycles"],
        "paper_snn_uj": res.report["paper_energy"]["snn_uj"],
    }
    study["chip"] = {k: notes[k] for k in ("hidden_neurons", "alias_neurons", "output_neurons",
                                           "recurrent_synapses", "weight_shift")}  # fmt: skip
    return study


READOUT_PAD = {"spikescr_t40": 10, "spikescr_k15_t40": 10, "iml_t40": 10}
"""Steps of zero input after the clip before the read-out, per model (chosen on the validation
split: docs/SPEECH.md §4); also evaluated without."""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--loihi", type=int, default=24)
    ap.add_argument("--fpga", type=int, default=4)
    ap.add_argument("--energy", type=int, default=64)
    ap.add_argument("--only", default=",".join([*MODELS_EVALUATED, "xylo"]),
                    help="what to (re-)evaluate")  # fmt: skip
    ap.add_argument(
        "--test",
        type=Path,
        default=BUILD / "kws_audio_test.npz",
        help="the test split (python -m examples.kws.dataset --seed 2 --held-out-only ...)",
    )
    args = ap.parse_args(argv)
    if not args.test.exists():
        raise SystemExit(
            f"{args.test} is missing: python -m examples.kws.dataset -o {args.test} --seed "
            f"{dataset.TEST_SEED} --per-class 1500 --held-out-only"
        )
    only = args.only.split(",")
    results: dict[str, Any] = {}
    if "xylo" in only:
        t0 = time.time()
        audio = (BUILD / "kws_audio.npz", args.test)
        d, t = (features(100, p, channels=XYLO_CHANNELS) for p in audio)
        with np.load(MODELS / "kws_xylo_calibrate_inputs.npz") as z:
            cal = z["input"]
        val = d["test"]
        results["xylo"] = {
            "model": "models/kws_xylo_t100.pt",
            "test": evaluate_xylo(MODELS / "kws_xylo_t100.pt", t["x"], xylo_labels(t["y"]), cal,
                                  n_energy=args.energy),
            "validation": quantization_study(api.load(MODELS / "kws_xylo_t100.pt"), d["x"][val],
                                             xylo_labels(d["y"][val]), cal, "xylo-audio2")[0],
        }  # fmt: skip
        results["xylo"]["seconds"] = round(time.time() - t0, 1)
        print(json.dumps(results["xylo"], indent=1, default=str), flush=True)
    for key in (k for k in MODELS_EVALUATED if k in only):
        name, steps = MODELS_EVALUATED[key]
        d, t = features(steps), features(steps, args.test)
        val = d["test"]  # seed 0, held-out voices: the validation split
        with np.load(MODELS / "kws_calibrate_inputs.npz") as z:
            cal = d["x"][z["index"]]  # the shipped calibration clips (training), at this T
        t0 = time.time()
        results[key] = evaluate_model(
            MODELS / name, t["x"], t["y"], cal,
            n_loihi=args.loihi, n_fpga=args.fpga, n_energy=args.energy,
            readout_pad=READOUT_PAD.get(key, 0),
        )  # fmt: skip
        results[key]["test_file"] = str(args.test)
        study, _, _ = quantization_study(api.load(MODELS / name), d["x"][val], d["y"][val], cal)
        results[key]["validation"] = {"samples": int(val.sum()), **study}
        results[key]["seconds"] = round(time.time() - t0, 1)
        print(json.dumps(results[key], indent=1, default=str), flush=True)
    path = BUILD / "results.json"  # merged as it is now: evaluations may run side by side
    merged = {**(json.loads(path.read_text()) if path.exists() else {}), **results}
    path.write_text(json.dumps(merged, indent=1, default=str))


if __name__ == "__main__":
    main()
