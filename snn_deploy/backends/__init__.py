"""Backend registry: name -> lazy loader of a module with ``lower``, ``emit`` and ``run``.

Third parties add backends via the ``snn_deploy.backends`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from types import ModuleType


def get_all_backends() -> dict[str, Callable[[], ModuleType]]:
    """Every known backend, built-in first, then entry points."""
    backends: dict[str, Callable[[], ModuleType]] = {
        "sim": lambda: import_module("snn_deploy.backends.sim"),
        "lava": lambda: import_module("snn_deploy.backends.lava"),
        "fpga": lambda: import_module("snn_deploy.backends.fpga"),
        "xylo": lambda: import_module("snn_deploy.backends.xylo"),
    }
    for ep in entry_points(group="snn_deploy.backends"):
        backends[ep.name] = ep.load
    return backends
