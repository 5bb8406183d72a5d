"""Frontend registry: file suffix -> lazy loader of a ``load(path, **options) -> Graph``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _nir() -> Callable[..., Any]:
    from snn_deploy.frontends.nir import load

    return load


def _netx() -> Callable[..., Any]:
    from snn_deploy.frontends.netx import load

    return load


def _torch() -> Callable[..., Any]:
    from snn_deploy.frontends.torch import load

    return load


def _onnx() -> Callable[..., Any]:
    from snn_deploy.frontends.onnx import load

    return load


def get_all_frontends() -> dict[str, Callable[[], Callable[..., Any]]]:
    """Every frontend, keyed by the file suffix it reads (docs/FRONTENDS.md)."""
    return {".nir": _nir, ".net": _netx, ".pt": _torch, ".pth": _torch, ".onnx": _onnx}
