"""Write models/braille_sample_inputs.npz: deterministic sample inputs for the demo.

The Braille dataset (Zenodo 7050094) is not shipped, so these are Bernoulli spike trains with
the dataset's shape: 4 samples x 256 steps x 12 taxels, 5 % spike probability, seed 0. They
exercise the network for the energy report; they say nothing about accuracy.

    python examples/braille_sample_inputs.py
"""

from pathlib import Path

import numpy as np

out = Path(__file__).resolve().parents[1] / "models" / "braille_sample_inputs.npz"
rng = np.random.default_rng(0)
np.savez_compressed(out, input=(rng.random((4, 256, 12)) < 0.05).astype(np.uint8))
print(f"wrote {out}")
