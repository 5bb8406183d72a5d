"""What changed between two compiles: ``snn-deploy report NEW --compare OLD``.

Both ``report.json`` files are flattened to dotted keys and every leaf that differs is listed.
List items are named by their ``path`` or ``name`` field where they have one
(``artefacts[network.npz].sha256``, ``quantization.projections[fc1].exp``), so a change reads as
what changed, not as a position. The spike rasters are left out: a changed raster shows as
changed spike counts and agreement already.
"""

from __future__ import annotations

from typing import Any

SKIPPED = ("raster",)


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every leaf whose value differs: ``{"key", "old", "new"}`` in key order (None: absent)."""
    a, b = _flatten(old, ""), _flatten(new, "")
    return [
        {"key": k, "old": a.get(k), "new": b.get(k)}
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]


def _flatten(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k not in SKIPPED:
                out.update(_flatten(v, f"{key}.{k}" if key else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            label = v.get("path", v.get("name", i))
            out.update(_flatten(v, f"{key}[{label}]"))
        return out
    return {key: value}
