"""Pass registry: name -> lazy loader. Third parties add passes via the ``snn_deploy.passes``
entry-point group."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from snn_deploy.passes.base import Pass


def _lower() -> type[Pass]:
    from snn_deploy.passes.lower import Lower

    return Lower


def _quantize() -> type[Pass]:
    from snn_deploy.passes.quantize import Quantize

    return Quantize


def _map() -> type[Pass]:
    from snn_deploy.passes.map import Map

    return Map


def get_all_passes() -> dict[str, Callable[[], type[Pass]]]:
    """Every known pass, built-in first, then entry points."""
    passes: dict[str, Callable[[], type[Pass]]] = {
        "lower": _lower,
        "quantize": _quantize,
        "map": _map,
    }
    for ep in entry_points(group="snn_deploy.passes"):
        passes[ep.name] = ep.load
    return passes
