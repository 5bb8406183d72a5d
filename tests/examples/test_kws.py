"""examples/kws (issue 8): dataset determinism, the filterbank front end, the shipped models.

The expected accuracies are the numbers models/README.md states; the test checks both.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from examples.kws import dataset, frontend
from examples.kws.train import classify
from snn_deploy import api
from snn_deploy.target.load import load_target

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"

# model -> (its test-input file, samples); the expected counts are read from models/README.md
SHIPPED = {
    "kws_rnn_t100.pt": ("kws_test_inputs.npz", 96),
    "kws_rnn_t40.pt": ("kws_test_inputs_t40.npz", 96),
    "kws_rnn_ml3_t100.pt": ("kws_test_inputs.npz", 96),
}


@pytest.mark.toolchain("espeak")
def test_dataset_slice_is_deterministic(tmp_path: Path) -> None:
    samples = dataset.recipes(
        2, classes=("yes", "_unknown_", "_silence_"), dialects=("en-us", "en-gb"),
        variants=("m1", "f2"),
    )  # fmt: skip
    digests = []
    for run in range(2):
        path = tmp_path / f"slice{run}.npz"
        dataset.save(path, dataset.build(samples))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    data = dataset.load(tmp_path / "slice0.npz")
    assert data["audio"].shape == (6, dataset.CLIP) and data["audio"].dtype == np.int16
    assert data["labels"].tolist() == [0, 0, 10, 10, 11, 11]
    rms = np.sqrt(np.mean((data["audio"] / 32768.0) ** 2, axis=1))
    assert np.all(rms[:4] > 3 * rms[4:].max())  # words are louder than silence (noise only)


@pytest.mark.toolchain("espeak")
def test_test_split_has_only_held_out_voices_and_new_clips(tmp_path: Path) -> None:
    # ``--seed TEST_SEED --held-out-only``: the test split of docs/SPEECH.md §1
    path = tmp_path / "test.npz"
    seed = str(dataset.TEST_SEED)
    dataset.main(["-o", str(path), "--seed", seed, "--per-class", "3", "--held-out-only"])
    split = dataset.load(path)
    recipes = json.loads(str(split["recipes"]))
    assert len(recipes) == len(split["audio"]) > 0 and split["test"].all()
    assert not split["train"].any()
    assert all(dataset.is_test_voice(r["dialect"], r["variant"]) for r in recipes)
    seed0 = {json.dumps({**r, "index": 0}, sort_keys=True) for r in map(asdict, dataset.recipes(3))}
    assert not seed0 & {json.dumps({**r, "index": 0}, sort_keys=True) for r in recipes}


@pytest.mark.toolchain("espeak")
def test_no_held_out_voice_sounds_like_a_training_voice() -> None:
    # espeak-ng 1.51 ignores the variant of en-gb: en-gb+m5 and en-gb+f3, which the every-fifth
    # rule holds out, render exactly like the training voices en-gb+m1 ... (issue 24)
    voices = [(d, v) for d in dataset.DIALECTS for v in dataset.VARIANTS]
    prints = {dv: dataset.voice_fingerprint(*dv) for dv in voices}
    training = {prints[dv] for dv in voices if dataset.is_training_voice(*dv)}
    held_out = [dv for dv in voices if dataset.is_test_voice(*dv)]
    assert len(held_out) == 14
    assert [dv for dv in held_out if prints[dv] in training] == []
    assert len({prints[dv] for dv in held_out}) == len(held_out)  # distinct among themselves
    # the excluded voices are held out by the rule and really sound like training voices
    assert all(not dataset.is_training_voice(*dv) for dv in dataset.ALIASED_VOICES)
    assert all(prints[dv] in training for dv in dataset.ALIASED_VOICES)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_frontend_tone_fires_its_channel(freq: float) -> None:
    t = np.arange(frontend.FS) / frontend.FS
    tone = 0.01 * np.sin(2 * np.pi * freq * t)  # -40 dBFS: no channel saturates
    s = frontend.spikes(tone, steps=100, channels=64)
    assert s.shape == (100, 64) and set(np.unique(s)) <= {0, 1}
    nearest = int(np.argmin(np.abs(frontend.erb_space(64) - freq)))
    assert abs(int(np.argmax(s.sum(0))) - nearest) <= 1
    assert s.sum(0)[nearest] > 10 * max(1, s.sum(0)[: max(0, nearest - 8)].max(initial=0))
    # the spike code depends only on the bin width: fewer steps, the same channel
    assert abs(int(np.argmax(frontend.spikes(tone, steps=40).sum(0))) - nearest) <= 1


@pytest.mark.parametrize("steps", [70, 40])
def test_frontend_wider_bins_count_the_same_spikes(steps: int) -> None:
    # at the same level a channel fires FULL_RATE·L spikes per second whatever the bin width:
    # wider bins carry graded counts (up to max_count), not fewer spikes
    rng = np.random.default_rng(0)
    level = np.repeat(rng.uniform(0, 1, (10, 64)), 10, axis=0)  # 1 s of levels in 100 bins
    fine = frontend.encode(level, 1.0)
    coarse = frontend.encode(level[np.arange(steps) * 100 // steps], 100 / steps)
    assert set(np.unique(fine)) == {0, 1}
    assert coarse.max() == frontend.max_count(steps) > 1
    assert np.abs(coarse.sum(0).astype(int) - fine.sum(0)).max() <= 3


def _readme_counts() -> dict[str, tuple[int, int]]:
    """The quantized column of models/README.md's accuracy table (``| model | T | float |
    quantized | ...``)."""
    out = {}
    for line in (MODELS / "README.md").read_text().splitlines():
        cells = [c.strip(" `") for c in line.split("|")]
        if len(cells) > 5 and cells[1].endswith(".pt") and "/" in cells[4]:
            k, n = cells[4].split("/")  # the "quantized `sim` (slice)" column
            out[cells[1]] = (int(k), int(n))
    return out


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_shipped_model_quantized_accuracy(model: str) -> None:
    inputs_file, n = SHIPPED[model]
    with np.load(MODELS / inputs_file) as z:
        x, labels = z["input"].astype(np.float64), z["labels"]
    assert x.shape[0] == len(labels) == n and x.shape[2] == 64
    path = MODELS / model
    assert path.stat().st_size < 1_000_000
    with warnings.catch_warnings():  # our checkpoint: no exporter-detection warning
        warnings.simplefilter("error")
        graph = api.load(path)  # no trust_pickle
    _, net = api.lower_and_quantize(graph, load_target("sim"))
    (out,) = api.simulate(net, {"input": x}).outputs.values()
    correct = int(np.sum(classify(np.asarray(out).sum(axis=1)) == labels))
    assert (correct, n) == _readme_counts()[model]


@pytest.mark.toolchain("lava")
def test_loihi_sim_equals_sim_on_shipped_model() -> None:
    with np.load(MODELS / "kws_test_inputs_t40.npz") as z:
        x = {"input": z["input"][:3].astype(np.float64)}
    _, net = api.lower_and_quantize(api.load(MODELS / "kws_rnn_t40.pt"), load_target("loihi2"))
    sim = api.simulate(net, x, target="sim")
    lava = api.simulate(net, x, target="loihi-sim")
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(lava.outputs[k]), np.asarray(sim.outputs[k]))


def test_shipped_multilevel_model() -> None:
    # models/kws_rnn_ml3_t100.pt (docs/SPEECH.md 2d): a safe NIR checkpoint whose hidden CubaLIF
    # sends integer spikes 0..3 with zero reset; the float count models/README.md states,
    # levels above 1 really used; compiled for loihi2, Lava equals the simulator value for value
    import io

    import nir
    import torch

    from examples.kws.models import load_checkpoint
    from snn_deploy.frontends.nir import LEVELS_KEY, RESET_KEY

    path = MODELS / "kws_rnn_ml3_t100.pt"
    assert path.stat().st_size < 1_000_000
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["meta"]["levels"] == 3 and ckpt["meta"]["steps"] == 100
    hidden = nir.read(io.BytesIO(ckpt["architecture"]), type_check=False).nodes["hidden"]
    assert hidden.metadata == {RESET_KEY: "zero", LEVELS_KEY: 3}
    model = load_checkpoint(path)
    with np.load(MODELS / "kws_test_inputs.npz") as z:
        x, labels = z["input"], z["labels"]
    with torch.no_grad():
        logits, spikes = model(
            torch.from_numpy(x.astype(np.float32)).transpose(0, 1), return_spikes=True
        )
    assert int(np.sum(classify(logits.numpy()) == labels)) == 84
    assert set(spikes.unique().tolist()) == {0.0, 1.0, 2.0, 3.0}
    assert float((spikes > 1).sum()) > 0.5 * float((spikes > 0).sum())
    _, net = api.lower_and_quantize(api.load(path), load_target("loihi2"))
    inputs = {"input": x[:2].astype(np.float64)}
    sim = api.simulate(net, inputs, target="sim", record_state=True)
    lava = api.simulate(net, inputs, target="loihi-sim", record_state=True)
    assert sim.populations["hidden"].max() == 3  # graded spikes reach Lava
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(lava.outputs[k]), np.asarray(sim.outputs[k]))
    for name in sim.populations:
        for got, want in ((lava.populations, sim.populations), (lava.u, sim.u), (lava.v, sim.v)):
            np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]), name)


def _xylo_readme_counts() -> dict[str, tuple[int, int]]:
    """models/README.md's Xylo row: ``| `kws_xylo_t100.pt` | float | quantized | XyloSim |``
    counts on the shipped 16-channel slice."""
    for line in (MODELS / "README.md").read_text().splitlines():
        cells = [c.strip(" `") for c in line.split("|")]
        if len(cells) > 5 and cells[1] == "kws_xylo_t100.pt" and "/" in cells[2]:
            return {k: tuple(map(int, cells[i].split("/"))) for k, i in  # type: ignore[misc]
                    (("float", 2), ("quantized", 3), ("xylosim", 4))}  # fmt: skip
    raise AssertionError("models/README.md has no kws_xylo_t100.pt row")


@pytest.mark.toolchain("xylosim")
def test_shipped_xylo_model() -> None:
    # models/kws_xylo_t100.pt (issue 23 item 5): 16 channels, 8 classes, compiles for
    # xylo-audio2 with no flag but --calibrate; float, quantized and XyloSim counts on the shipped
    # slice are models/README.md's, and XyloSim equals sim output for output
    import torch

    from examples.kws.models import load_checkpoint

    path = MODELS / "kws_xylo_t100.pt"
    assert path.stat().st_size < 1_000_000
    with np.load(MODELS / "kws_xylo_test_inputs.npz") as z:
        x, labels = z["input"], z["labels"]
    with np.load(MODELS / "kws_xylo_calibrate_inputs.npz") as z:
        cal = {"input": z["input"].astype(np.float64)}
    assert x.shape == (96, 100, 16) and set(labels.tolist()) <= set(range(8))
    want = _xylo_readme_counts()
    model = load_checkpoint(path)
    assert (model.readout, model.levels, model.ge) == ("spiking", 31, True)
    with torch.no_grad():
        logits = model(torch.from_numpy(x.astype(np.float32)).transpose(0, 1))
    assert (int(np.sum(classify(logits.numpy()) == labels)), 96) == want["float"]
    _, net = api.lower_and_quantize(api.load(path), load_target("xylo-audio2"), calibrate=cal)
    inputs = {"input": x.astype(np.float64)}
    sim = api.simulate(net, inputs, target="sim")
    (out,) = sim.outputs.values()
    assert (int(np.sum(classify(np.asarray(out).sum(axis=1)) == labels)), 96) == want["quantized"]
    chip = api.simulate(net, inputs, target="xylo-audio2")
    for k in sim.outputs:
        np.testing.assert_array_equal(np.asarray(chip.outputs[k]), np.asarray(sim.outputs[k]))
    (out,) = chip.outputs.values()
    assert (int(np.sum(classify(np.asarray(out).sum(axis=1)) == labels)), 96) == want["xylosim"]


@pytest.mark.toolchain("xylosim")
def test_evaluate_xylo_quantizes_the_calibrated_net_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # examples/kws/evaluate.py: the compile that gives the energy quantizes the calibrated net
    # (it was quantized twice more), and the figures are the same: models/README.md's counts,
    # and the energy evaluate_xylo gave before on these 4 clips
    from examples.kws.evaluate import evaluate_xylo

    calibrated: list[bool] = []
    quantize = api.lower_and_quantize

    def counted(*args: Any, **kwargs: Any) -> Any:
        calibrated.append(kwargs.get("calibrate") is not None)
        return quantize(*args, **kwargs)

    monkeypatch.setattr(api, "lower_and_quantize", counted)
    with np.load(MODELS / "kws_xylo_test_inputs.npz") as z:
        x, labels = z["input"], z["labels"]
    with np.load(MODELS / "kws_xylo_calibrate_inputs.npz") as z:
        cal = z["input"]
    r = evaluate_xylo(MODELS / "kws_xylo_t100.pt", x, labels, cal, n_energy=4)
    assert calibrated.count(True) == 1
    want = _xylo_readme_counts()
    assert (r["calibrated"]["sim"]["correct"], 96) == want["quantized"]
    assert (r["xylosim"]["correct"], 96) == want["xylosim"]
    assert r["energy"]["uj_per_inference"] == pytest.approx(27.064077523437497, rel=1e-12)


def test_recurrent_cuba_exports_levels_and_reloads(tmp_path: Path) -> None:
    import torch

    from examples.kws.models import RecurrentCuba, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = RecurrentCuba(channels=4, hidden=5, classes=3, levels=2)
    save_checkpoint(model, tmp_path / "ml.pt", steps=7)
    again = load_checkpoint(tmp_path / "ml.pt")
    assert (again.levels, again.reset, again.alpha, again.beta, again.beta_out) == (
        2, "zero", 0.8, 0.9, 0.9,
    )  # fmt: skip
    x = (torch.rand(7, 2, 4) < 0.5).float() * 3
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    binary = RecurrentCuba(channels=4, hidden=5, classes=3).to_nir(100)
    assert binary.nodes["hidden"].metadata == {"snn_deploy.reset": "zero"}


def test_spiking_read_out_exports_runs_like_torch_and_reloads(tmp_path: Path) -> None:
    # the Xylo model's read-out: CubaLIF output neurons whose spike counts are the logits; the
    # exported graph's float run spikes like the torch model (float64 both) and reloads
    import torch

    from examples.kws.models import load_checkpoint, save_checkpoint
    from examples.kws.train import xylo_model

    torch.manual_seed(0)
    model = xylo_model().double()
    with torch.no_grad():
        model.w_out.mul_(8.0)  # read-out neurons that spike
    x = (torch.rand(30, 3, 16) < 0.3).double()
    with torch.no_grad():
        counts = model(x).numpy()
    assert counts.max() >= 2
    save_checkpoint(model, tmp_path / "x.pt", steps=30)
    graph = api.load(tmp_path / "x.pt")
    float_net, _ = api.lower_and_quantize(graph, load_target("sim"))
    out = api.simulate(float_net, {"input": x.transpose(0, 1).numpy()}, fixed=False)
    np.testing.assert_array_equal(np.asarray(out.outputs["output"]).sum(axis=1), counts)
    again = load_checkpoint(tmp_path / "x.pt").double()
    assert (again.readout, again.alpha_out, again.beta_out, again.levels) == (
        "spiking", 0.875, 0.9375, 31,
    )  # fmt: skip
    with torch.no_grad():
        np.testing.assert_array_equal(again(x).numpy(), counts)


def test_calibrated_multilevel_model_rounds_with_compensation() -> None:
    # --calibrate with the shipped training clips: every projection of the multi-level model is
    # dense, so all three round with error compensation, each with a lower filtered-voltage
    # error on the calibration activity than nearest rounding; the prediction agreement with
    # the float model on the shipped held-out clips does not drop (docs/SPEECH.md §3)
    from snn_deploy.backends.sim.run import simulate
    from snn_deploy.passes.calibration import measure
    from snn_deploy.passes.quantize import CALIBRATION_MARGIN, quantize

    with np.load(MODELS / "kws_calibrate_inputs.npz") as z:
        assert not np.isin(z["index"], np.load(MODELS / "kws_test_inputs.npz")["index"]).any()
        cal = {"input": z["input"].astype(np.float64)}
    graph, target = api.load(MODELS / "kws_rnn_ml3_t100.pt"), load_target("loihi2")
    fnet, net = api.lower_and_quantize(graph, target, calibrate=cal)
    run = simulate(fnet, cal, fixed=False, record_state=True)
    stats = measure(fnet, {**cal, **run.populations}, run.u)
    peaks = {k: CALIBRATION_MARGIN * v for k, v in stats.peaks.items()}
    nearest = quantize(fnet, target.numeric, state_peaks=peaks)
    assert sorted(stats.grams) == [0, 1, 2]
    for i, (got, near) in enumerate(zip(net.projections, nearest.projections, strict=True)):
        real = got.weight.toarray() * net.populations[got.dst].fixed.scale
        real /= 2.0 ** (target.numeric.input_shift + got.fixed.exp)
        err = [
            float(np.trace((c.toarray() - real) @ stats.grams[i] @ (c.toarray() - real).T))
            for c in (got.fixed.codes, near.fixed.codes)
        ]
        assert err[0] < err[1], got.name
    with np.load(MODELS / "kws_test_inputs.npz") as z:
        x = {"input": z["input"].astype(np.float64)}
    pred = lambda tr: classify(np.asarray(next(iter(tr.outputs.values()))).sum(1))  # noqa: E731
    ref = pred(api.simulate(fnet, x, fixed=False))
    agree = [int(np.sum(pred(api.simulate(n, x)) == ref)) for n in (net, nearest)]
    assert agree[0] >= agree[1]


def test_a_silent_read_out_is_the_silence_class() -> None:
    # no input spike reaches the read-out: every class sums to 0, which argmax alone resolved to
    # class 0 ("yes"); the decision rule makes it no decision, which KWS maps to _silence_
    from examples.kws.train import SILENCE

    _, net = api.lower_and_quantize(api.load(MODELS / "kws_rnn_t40.pt"), load_target("sim"))
    (out,) = api.simulate(net, {"input": np.zeros((1, 40, 64))}).outputs.values()
    summed = np.asarray(out).sum(axis=1)
    assert not summed.any() and int(summed.argmax(-1)[0]) == 0
    assert classify(summed).tolist() == [SILENCE] == [dataset.CLASSES.index("_silence_")]
