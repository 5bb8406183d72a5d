"""Compare compiles: what changed between two (``snn-deploy report NEW --compare OLD``), and
the headline figures of several side by side (``snn-deploy report A B ...``).

Both ``report.json`` files are flattened to dotted keys and every leaf that differs is listed.
List items are named by their ``path`` or ``name`` field where they have one
(``artefacts[network.npz].sha256``, ``quantization.projections[fc1].exp``), so a change reads as
what changed, not as a position. The spike rasters are left out: a changed raster shows as
changed spike counts and agreement already.

``figures(name, report)`` reads one report's headline figures under the keys of ``ROWS``; a
figure a report does not have (no ``--inputs``, no placement, a target without a time per
step) is None, shown as "—"; an energy the target does not model is "not modelled".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FPGA_RESOURCES = ("luts", "ffs", "bram_blocks", "dsps")
"""The board resources of an FPGA compile, in the order every view lists them."""

SKIPPED = ("raster",)

ROWS = (
    ("model", "model"),
    ("target", "target"),
    ("steps T", "steps"),
    ("dt (s)", "dt"),
    ("pipeline", "pipeline"),
    ("weight rounding", "rounding"),
    ("neurons", "neurons"),
    ("synapses", "synapses"),
    ("cores used", "cores"),
    ("FPGA resources", "fpga_resources"),
    ("uJ / inference, hardware model", "energy_uj"),
    ("uJ / inference, 45 nm paper-style", "paper_energy_uj"),
    ("latency (steps), slowest output", "latency_steps"),
    ("wall clock per inference (s)", "latency_s"),
    ("prediction agreement, worst output", "prediction_agreement"),
    ("spike F1, worst population", "spike_f1"),
)
"""The side-by-side table: row label -> key of ``figures``."""

MISSING = "\N{EM DASH}"
"""How the side-by-side table shows a figure a report does not have."""


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


def figures(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """One compile's headline figures: ``folder`` (``name``) and the keys of ``ROWS``.

    The energy is "not modelled" when the target has no figure for any event that happened.
    """
    energy, paper, agreement = report["energy"], report["paper_energy"], report["agreement"]
    placement, notes = report["placement"], report["backend_notes"]
    projections = report["quantization"]["projections"]
    fpga = notes.get("resources", {}).get("total")
    f1 = [p.get("spike_f1") for p in (agreement or {}).get("populations", {}).values()]
    outputs = (agreement or {}).get("outputs", {}).values()
    return {
        "folder": name,
        "model": report["model"],
        "target": report["target"],
        "steps": None if energy is None else energy["counts"]["steps"],
        "dt": report["dt"],
        "pipeline": report.get("pipeline"),  # reports written before it was recorded have none
        "rounding": ",".join(sorted({p["rounding"] for p in projections})) or None,
        "neurons": report["resources"]["neurons"],
        "synapses": report["resources"]["synapses"],
        "cores": None if placement is None else placement["cores_used"],
        "fpga_resources": None if fpga is None else _fpga(notes["resources"]),
        "energy_uj": _energy_uj(energy),
        "paper_energy_uj": None if paper is None else paper["snn_uj"],
        "latency_steps": max(report["latency"].values(), default=None),
        "latency_s": None if energy is None else energy["latency"]["wall_clock_s"],
        "prediction_agreement": min((o["prediction_agreement"] for o in outputs), default=None),
        "spike_f1": min((v for v in f1 if v is not None), default=None),
    }


def _fpga(usage: dict[str, Any]) -> str:
    """The total resources (LUTs, FFs, block RAMs, DSPs) and where they come from: ``Yosys``
    or ``estimate``."""
    tool = "Yosys" if usage.get("tool") == "yosys" else "estimate"
    total = usage["total"]
    return ", ".join(f"{total[k]} {k}" for k in FPGA_RESOURCES if k in total) + f" ({tool})"


def _energy_uj(energy: dict[str, Any] | None) -> float | str | None:
    if energy is None:
        return None
    return energy["total_uj_per_inference"] if energy["breakdown_uj"] else "not modelled"


def side_by_side(columns: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The headers (one column per compile) and rows of the side-by-side table of ``figures``."""
    headers = ["", *(c["folder"] for c in columns)]
    return headers, [[label, *(c[key] for c in columns)] for label, key in ROWS]
