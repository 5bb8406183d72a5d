"""Inputs and time bases on the command line (issue 19 items 3 and 5): ``simulate --align``,
the layout of input arrays (``--time-first``) and suspicious ``--dt``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from numpy.testing import assert_array_equal

from snn_deploy.cli.main import cli


def invoke(*args: object) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.toolchain("snntorch")
def test_simulate_align_writes_outputs_in_the_sources_time_base(tmp_path: Path) -> None:
    """A model file: the float run's aligned outputs equal snnTorch's forward for all T steps;
    a compile folder takes the latency from its report.json; network.npz alone is refused."""
    from tests.frontends.test_exporter_conformance import (
        _snntorch_export,
        _snntorch_model,
        _snntorch_run,
        spikes,
    )

    model = _snntorch_model("Leaky", reset_delay=True)
    path = _snntorch_export(model, tmp_path / "m.nir")
    x = spikes(60, 3, 10)
    np.savez(tmp_path / "x.npz", input=np.swapaxes(np.asarray(x), 0, 1))
    read = ("--exporter", "snntorch", "--inputs", tmp_path / "x.npz")
    run = invoke("simulate", path, *read, "--float", "--align", "-o", tmp_path / "f.npz")
    assert run.exit_code == 0, run.output
    expected = np.swapaxes(_snntorch_run(model, x), 0, 1)
    assert_array_equal(np.load(tmp_path / "f.npz")["output.output"], expected)

    out = tmp_path / "out"
    assert invoke("compile", path, *read, "-o", out).exit_code == 0
    plain = np.load(out / "vectors.npz")["output.output"]  # quantized, our time base
    run = invoke(
        "simulate", out, "--inputs", tmp_path / "x.npz", "--align", "-o", tmp_path / "q.npz"
    )
    assert run.exit_code == 0, run.output
    aligned = np.load(tmp_path / "q.npz")["output.output"]
    assert aligned.shape == plain.shape
    assert_array_equal(aligned[:, :-2], plain[:, 2:])

    run = invoke("simulate", out / "network.npz", "--inputs", tmp_path / "x.npz", "--align")
    assert run.exit_code == 2
    assert run.stderr.strip().splitlines() == [
        f"error: --align needs the outputs' latency, which {out / 'network.npz'} does not hold: "
        "give its compile output folder or the model file"
    ]
