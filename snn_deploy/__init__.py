"""snn-deploy: compile spiking neural networks for neuromorphic hardware.

The Python API (docs/ARCHITECTURE.md §7)::

    import snn_deploy as sd

    result = sd.compile(model, "sim", inputs={"input": x}, out_dir="out")  # a file or a module
    sd.verify("out").passed
    sd.save(model, "model.pt")  # a safe checkpoint of a live Sequential

``model`` is a file (``.nir``, ``.net``, ``.pt``/``.pth``, ``.onnx``), a ``nir.NIRGraph`` or a
live ``torch.nn.Module``. The functions are imported from ``snn_deploy.api`` on first use, so
``import snn_deploy`` stays light (no torch, no matplotlib).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CompileResult",
    "__version__",
    "compile",
    "load",
    "load_program",
    "read_report",
    "save",
    "simulate",
    "verify",
]

if TYPE_CHECKING:
    from snn_deploy.api import (
        CompileResult,
        compile,
        load,
        load_program,
        read_report,
        save,
        simulate,
        verify,
    )


def __getattr__(name: str) -> Any:
    """Import the API on first use (PEP 562): ``snn_deploy.api`` imports numpy, nir, torch."""
    if name in __all__ and name != "__version__":
        return getattr(importlib.import_module("snn_deploy.api"), name)
    raise AttributeError(f"module 'snn_deploy' has no attribute {name!r}")
