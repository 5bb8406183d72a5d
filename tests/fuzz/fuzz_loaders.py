"""atheris fuzz harness for the model and input loaders: every input either loads or raises an
``SnnDeployError``; anything else is a crash the fuzzer reports.

    .venv/bin/python tests/fuzz/fuzz_loaders.py {nir,net,npz} -runs=2000
(``-max_total_time=N`` for a timed run). Seeds are real files mutated by libFuzzer.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

SUFFIX = {"nir": ".nir", "net": ".net", "npz": ".npz"}
PARSERS = {"nir": ["nir", "h5py"], "net": ["h5py"], "npz": ["numpy", "zipfile"]}
"""The libraries whose code parses each kind, instrumented beside snn_deploy for coverage.
Instrumenting every import (SciPy, all of NumPy) took 46 s before the first input."""


def main() -> None:
    kind = sys.argv.pop(1)
    path = Path(tempfile.mkdtemp()) / f"input{SUFFIX[kind]}"
    seed = Path(__file__).resolve().parents[1] / "fixtures" / "nir" / "lif_norse.nir"
    seed_bytes = seed.read_bytes()
    with atheris.instrument_imports(include=["snn_deploy", *PARSERS[kind]]):
        from snn_deploy import api
        from snn_deploy.errors import SnnDeployError

        load = api.read_inputs if kind == "npz" else api.load

        def attempt(data: bytes) -> None:
            path.write_bytes(data)
            with contextlib.suppress(SnnDeployError):
                load(path)

        attempt(seed_bytes)  # imports the loader's lazily imported modules, instrumented

    def one_input(data: bytes) -> None:
        # half the time mutate a real file so the fuzzer gets past the HDF5 signature
        fdp = atheris.FuzzedDataProvider(data)
        if kind != "npz" and fdp.ConsumeBool():
            at = fdp.ConsumeIntInRange(0, len(seed_bytes) - 1)
            patch = fdp.ConsumeBytes(64)
            data = seed_bytes[:at] + patch + seed_bytes[at + len(patch) :]
        attempt(data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
