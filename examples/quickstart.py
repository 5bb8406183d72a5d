"""Quickstart: compile a live snnTorch model, check it bit for bit, save it as a checkpoint.

Run ``python examples/quickstart.py [OUT_DIR]`` (default ``build/quickstart``); the tests run
it (tests/examples/test_quickstart.py). Steps:

1. build a small snnTorch network (untrained: random weights, scaled so that it spikes);
2. ``sd.compile`` it for the bit-accurate simulator ``sim`` with sample inputs: the output
   folder holds the program, ``report.json``/``report.html`` and the test vectors;
3. ``sd.verify`` replays the vectors and compares every output spike;
4. ``sd.simulate`` runs the compiled network on new inputs;
5. ``sd.save`` writes the safe checkpoint that ``snn-deploy compile model.pt`` reads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import snntorch
import torch

import snn_deploy as sd


def build_model() -> torch.nn.Sequential:
    """10 inputs -> 16 LIF -> 4 CUBA LIF, zero reset (snnTorch's default is subtract)."""
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(10, 16), torch.nn.Linear(16, 4)
    with torch.no_grad():
        fc1.weight.mul_(4)
        fc2.weight.mul_(4)
    reset = {"reset_mechanism": "zero", "reset_delay": False, "init_hidden": True}
    return torch.nn.Sequential(
        fc1,
        snntorch.Leaky(beta=0.9, **reset),
        fc2,
        snntorch.Synaptic(alpha=0.8, beta=0.85, output=True, **reset),
    )


def main(out_dir: Path) -> sd.CompileResult:
    """Compile, verify, simulate and save; print what a user would look at."""
    model = build_model()
    rng = np.random.default_rng(0)
    x = (rng.random((8, 50, 10)) < 0.2).astype(np.float64)  # [batch, time, inputs] spikes

    result = sd.compile(model, "sim", inputs={"input": x}, out_dir=out_dir, force=True)
    agreement = result.report["agreement"]["outputs"]["output"]["prediction_agreement"]
    print(f"compiled to {out_dir}: {len(result.files)} files")
    print(f"float vs quantized prediction agreement: {agreement:.2f}")

    check = sd.verify(out_dir)
    print(f"verify: {'passed' if check.passed else 'FAILED'}")

    trace = sd.simulate(result, {"input": x[:2]})
    print(f"output spikes on 2 samples: {int(trace.outputs['output'].sum())}")

    path = sd.save(model, out_dir.parent / "quickstart_model.pt", input_shape=(10,))
    print(f"saved {path}: compile it with `snn-deploy compile {path} --target sim -o out/`")
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/quickstart"))
