"""Parse and run pass pipelines such as ``lower{dt=0.001},quantize``.

The runner verifies the IR after every pass, can print the IR after a pass (``dump_after``),
and wraps a failing pass's error with the passes that ran before it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from snn_deploy.errors import PassError, SnnDeployError
from snn_deploy.ir.graph import Graph
from snn_deploy.ir.net import Net
from snn_deploy.passes import get_all_passes
from snn_deploy.passes.base import Pass, PassContext

_ITEM = re.compile(r"\s*([a-z][a-z0-9-]*)\s*(?:\{([^}]*)\})?\s*(?:,|$)")

DEFAULT = "lower,quantize,map"
"""The default pipeline of every current target (literal, ordered)."""


def parse(spec: str) -> list[Pass]:
    """Parse ``name{key=value,...},name`` into pass instances.

    Raises:
        PassError: unknown pass or option, or a value of the wrong type.
    """
    registry = get_all_passes()
    passes: list[Pass] = []
    pos = 0
    while pos < len(spec):
        match = _ITEM.match(spec, pos)
        if not match or match.end() == pos:
            raise PassError(f"cannot parse pipeline {spec!r} at position {pos}")
        name, options = match.group(1), match.group(2) or ""
        if name not in registry:
            raise PassError(f"unknown pass {name!r}; known: {', '.join(sorted(registry))}")
        cls = registry[name]()
        passes.append(cls(**_options(cls, options)))
        pos = match.end()
    return passes


def _options(cls: type[Pass], text: str) -> dict[str, Any]:
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in text.split(";" if ";" in text else ","))):
        key, _, value = item.partition("=")
        if key not in types:
            raise PassError(f"pass {cls.name!r} has no option {key!r}; options: {sorted(types)}")
        kind = {"float": float, "int": int, "str": str}.get(str(types[key]), str)
        try:
            out[key] = kind(value)
        except ValueError as exc:
            raise PassError(
                f"pass {cls.name!r}: option {key}={value!r} is not a {kind.__name__}"
            ) from exc
    return out


def run(
    ir: Graph | Net,
    passes: Sequence[Pass],
    ctx: PassContext,
    *,
    dump_after: Callable[[str, object], None] | None = None,
    before: Sequence[str] = (),
) -> Graph | Net:
    """Run ``passes`` in order, verifying after each one; ``before`` names the passes that
    already ran on ``ir`` (for error messages)."""
    history = list(before)
    for p in passes:
        try:
            ir = p.run(ir, ctx)  # type: ignore[assignment]
            ir.verify()
        except SnnDeployError as exc:
            ran = " -> ".join(history) or "(none)"
            exc.args = (f"{exc} [in pass {p.name!r}; passes run before: {ran}]",)
            raise
        history.append(p.name)
        if dump_after is not None:
            dump_after(p.name, ir)
    return ir
