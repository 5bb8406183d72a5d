"""atheris fuzz harness for the model and input loaders: every input either loads or raises an
``SnnDeployError``; anything else is a crash the fuzzer reports.

    .venv/bin/python tests/fuzz/fuzz_loaders.py {nir,net,npz} -runs=2000
(``-max_total_time=N`` for a timed run). Seeds are real files mutated by libFuzzer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from snn_deploy import api
    from snn_deploy.errors import SnnDeployError

SUFFIX = {"nir": ".nir", "net": ".net", "npz": ".npz"}


def main() -> None:
    kind = sys.argv.pop(1)
    folder = Path(tempfile.mkdtemp())
    path = folder / f"input{SUFFIX[kind]}"
    seed = Path(__file__).resolve().parents[1] / "fixtures" / "nir" / "lif_norse.nir"
    seed_bytes = seed.read_bytes()

    def one_input(data: bytes) -> None:
        # half the time mutate a real file so the fuzzer gets past the HDF5 signature
        fdp = atheris.FuzzedDataProvider(data)
        if kind != "npz" and fdp.ConsumeBool():
            at = fdp.ConsumeIntInRange(0, len(seed_bytes) - 1)
            patch = fdp.ConsumeBytes(64)
            data = seed_bytes[:at] + patch + seed_bytes[at + len(patch) :]
        path.write_bytes(data)
        try:
            if kind == "npz":
                api.read_inputs(path)
            else:
                api.load(path)
        except SnnDeployError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
