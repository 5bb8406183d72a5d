"""Load ``targets/*.toml`` into frozen ``Target`` values.

Every leaf value in a target file is a table ``{ value = ..., source = "..." }`` (optionally
``status = "verified-code" | "primary" | "secondary" | "estimate"``), so that no number
exists without the place it came from. ``numeric_from`` names a shared file in
``targets/formats/`` holding a core's arithmetic (the same for every Loihi-class target).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from snn_deploy.errors import TargetError
from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import FixedPoint, Overflow, ResetMode
from snn_deploy.target.schema import EnergyModel, FpgaBoard, Limits, Target

STATUSES = frozenset({"verified-code", "primary", "secondary", "estimate"})


def targets_dir() -> Path:
    """The folder of built-in target files (``targets/`` in a checkout, package data in a wheel)."""
    packaged = Path(str(resources.files("snn_deploy"))) / "_targets"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "targets"


def available() -> list[str]:
    """Names of the built-in targets."""
    return sorted(_read(p)["name"]["value"] for p in targets_dir().glob("*.toml"))


def load_target(name_or_path: str | Path) -> Target:
    """Load a built-in target by name, or a user's TOML file by path.

    Raises:
        TargetError: unknown name, unreadable file, missing source, or bad value.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml":
        by_name = {_read(p)["name"]["value"]: p for p in targets_dir().glob("*.toml")}
        if str(name_or_path) not in by_name:
            raise TargetError(
                f"unknown target {name_or_path!r}; available: {', '.join(sorted(by_name))}"
            )
        path = by_name[str(name_or_path)]
    raw = _read(path)
    sources: dict[str, str] = {}
    values = _values(raw, "", sources, path)
    formats = path.parent / "formats" / f"{values.pop('numeric_from')}.toml"
    numeric = _values(_read(formats), "numeric", sources, formats)
    try:
        return Target(
            name=values["name"],
            description=values["description"],
            backend=values["backend"],
            numeric=_numeric(numeric),
            reset_modes=frozenset(ResetMode(m) for m in values["reset_modes"]),
            limits=Limits(**values.get("limits", {})),
            energy=EnergyModel(**values.get("energy", {})),
            sources=sources,
            path=path,
            numeric_path=formats,
            fpga=FpgaBoard(**values["fpga"]) if "fpga" in values else None,
            products=frozenset(values.get("products", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TargetError(f"{path}: invalid target description: {exc}") from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetError(f"cannot read target file {path}: {exc}") from exc


def _values(
    table: dict[str, Any], prefix: str, sources: dict[str, str], path: Path
) -> dict[str, Any]:
    """Strip ``{value, source}`` leaves to plain values, collecting sources by dotted key."""
    out: dict[str, Any] = {}
    for key, item in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if not isinstance(item, dict):
            raise TargetError(f"{path}: {dotted} must be a table {{ value = ..., source = ... }}")
        if "value" not in item:
            out[key] = _values(item, dotted, sources, path)
            continue
        if not str(item.get("source", "")).strip():
            raise TargetError(f"{path}: {dotted} has no source")
        if item.get("status", "verified-code") not in STATUSES:
            raise TargetError(
                f"{path}: {dotted} has status {item['status']!r}, not in {sorted(STATUSES)}"
            )
        sources[dotted] = item["source"]
        out[key] = item["value"]
    return out


def _numeric(v: dict[str, Any]) -> NumericSpec:
    def reg(bits: int, overflow: str) -> FixedPoint:
        symmetric = overflow == "saturate-symmetric"
        mode = Overflow.SATURATE if symmetric else Overflow(overflow)
        return FixedPoint(width=bits, signed=True, overflow=mode, symmetric=symmetric)

    return NumericSpec(
        weight=FixedPoint(width=v["weight_bits"], signed=True),
        weight_exp_min=v["weight_exp_min"],
        weight_exp_max=v["weight_exp_max"],
        decay=FixedPoint(width=v["decay_bits"], signed=False),
        current_decay_offset=v["current_decay_offset"],
        voltage_decay_offset=v["voltage_decay_offset"],
        threshold=FixedPoint(width=v["threshold_mant_bits"], signed=False),
        threshold_shift=v["threshold_shift"],
        input_shift=v["input_shift"],
        bias=FixedPoint(width=v["bias_mant_bits"], signed=True),
        bias_exp_min=v["bias_exp_min"],
        bias_exp_max=v["bias_exp_max"],
        current=reg(v["state_bits"], v["current_overflow"]),
        voltage=reg(v["state_bits"], v["voltage_overflow"]),
    )


__all__ = ["available", "load_target", "targets_dir"]
