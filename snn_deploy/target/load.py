"""Load ``targets/*.toml`` into frozen ``Target`` values.

Every leaf value in a target file is a table ``{ value = ..., source = "..." }`` (optionally
``status = "verified-code" | "primary" | "secondary" | "estimate"``), so that no number
exists without the place it came from. Every ``[energy]`` figure also names its ``basis``
(``schema.Basis``): what it was measured on, e.g. ``"loihi1"`` for a Loihi 1 figure a Loihi 2
target borrows. ``numeric_from`` names a shared file in
``targets/formats/`` holding a core's arithmetic (the same for every Loihi-class target).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from snn_deploy.errors import TargetError
from snn_deploy.ir.net import NumericSpec
from snn_deploy.ir.types import (
    Accumulation,
    CurrentUpdate,
    DecayForm,
    FixedPoint,
    Overflow,
    ResetMode,
    ResetTiming,
    ThresholdCompare,
    VoltageUpdate,
    WeightExpScope,
)
from snn_deploy.target.schema import Basis, EnergyModel, FpgaBoard, Limits, Target

STATUSES = frozenset({"verified-code", "primary", "secondary", "estimate"})

ZERO_ALLOWED = frozenset(
    {"spike_payload_bits", "max_delay_steps", "bram_blocks", "dsps", "aliases_per_neuron"}
)
"""Limits and board resources that may be 0 (binary spikes, no delays, no block RAM or DSP);
every other capacity must be positive, and every energy figure non-negative."""

NUMERIC_KEYS = (
    "weight_bits",
    "weight_exp_min",
    "weight_exp_max",
    "decay_bits",
    "current_decay_offset",
    "voltage_decay_offset",
    "threshold_mant_bits",
    "threshold_shift",
    "input_shift",
    "bias_mant_bits",
    "bias_exp_min",
    "bias_exp_max",
    "state_bits",
    "current_overflow",
    "voltage_overflow",
)
"""The keys of a ``targets/formats/`` file: integers, and the two overflow modes (strings)."""

OPTIONAL_NUMERIC_KEYS: dict[str, tuple[str, type[enum.Enum] | None]] = {
    "decay_form": ("str", DecayForm),
    "current_update": ("str", CurrentUpdate),
    "accumulation": ("str", Accumulation),
    "voltage_update": ("str", VoltageUpdate),
    "input_latency": ("int", None),
    "input_payload_max": ("int", None),
    "weight_exp_scope": ("str", WeightExpScope),
}
"""Keys a ``targets/formats/`` file may give (``NumericSpec``'s generalisations of Lava's
arithmetic); absent, they take ``NumericSpec``'s defaults, Lava's behaviour."""

_TOP = {"name": "str", "description": "str", "backend": "str", "numeric_from": "str"}


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
    bases: dict[str, str] = {}
    values = _values(raw, "", sources, bases, path)
    for key, kind in _TOP.items():
        _check(values.get(key), kind, key, path)
    modes = _strings(values, "reset_modes", path)
    if not modes:
        raise TargetError(f'{path}: reset_modes is missing or empty; e.g. ["zero"]')
    formats = path.parent / "formats" / f"{values.pop('numeric_from')}.toml"
    numeric = _values(_read(formats), "numeric", sources, bases, formats)
    try:
        return Target(
            name=values["name"],
            description=values["description"],
            backend=values["backend"],
            numeric=_numeric(numeric, formats),
            reset_modes=frozenset(ResetMode(m) for m in modes),
            limits=_build(Limits, values.get("limits", {}), "limits", path),
            energy=_build(EnergyModel, values.get("energy", {}), "energy", path),
            energy_basis=_energy_basis(bases, values.get("energy", {}), path),
            sources=sources,
            path=path,
            numeric_path=formats,
            fpga=_build(FpgaBoard, values["fpga"], "fpga", path) if "fpga" in values else None,
            products=frozenset(_strings(values, "products", path)),
            reset_timings=frozenset(
                ResetTiming(m) for m in _strings(values, "reset_timings", path) or ["immediate"]
            ),
            threshold_compares=frozenset(
                ThresholdCompare(m) for m in _strings(values, "threshold_compares", path) or [">"]
            ),
        )
    except ValueError as exc:  # an unknown reset mode, timing, compare or overflow, a width
        raise TargetError(f"{path}: invalid target description: {exc}") from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: TOML syntax or UTF-8 decoding
        raise TargetError(f"cannot read target file {path}: {exc}") from exc


def _values(
    table: dict[str, Any],
    prefix: str,
    sources: dict[str, str],
    bases: dict[str, str],
    path: Path,
) -> dict[str, Any]:
    """Strip ``{value, source}`` leaves to plain values, collecting sources (and the bases
    given) by dotted key."""
    out: dict[str, Any] = {}
    for key, item in table.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if not isinstance(item, dict):
            raise TargetError(f"{path}: {dotted} must be a table {{ value = ..., source = ... }}")
        if "value" not in item:
            out[key] = _values(item, dotted, sources, bases, path)
            continue
        if not str(item.get("source", "")).strip():
            raise TargetError(f"{path}: {dotted} has no source")
        if item.get("status", "verified-code") not in STATUSES:
            raise TargetError(
                f"{path}: {dotted} has status {item['status']!r}, not in {sorted(STATUSES)}"
            )
        sources[dotted] = item["source"]
        if "basis" in item:
            bases[dotted] = item["basis"]
        out[key] = item["value"]
    return out


def _energy_basis(bases: dict[str, str], energy: dict[str, Any], path: Path) -> dict[str, Basis]:
    """The basis of every ``[energy]`` figure; refuses a basis anywhere else, an unknown one,
    and an energy figure without one."""
    known = [b.value for b in Basis]
    for key, basis in bases.items():
        if not key.startswith("energy."):
            raise TargetError(f"{path}: {key} has a basis; only [energy] figures take one")
        if basis not in known:
            raise TargetError(f"{path}: {key} has basis {basis!r}, not in {known}")
    for key in energy:
        if f"energy.{key}" not in bases:
            raise TargetError(f"{path}: energy.{key} has no basis; one of {known}")
    return {key: Basis(bases[f"energy.{key}"]) for key in energy}


def _strings(values: dict[str, Any], key: str, path: Path) -> list[str]:
    """``values[key]``, a list of strings (absent: empty)."""
    items = values.get(key, [])
    if not isinstance(items, list) or not all(isinstance(m, str) for m in items):
        raise TargetError(f"{path}: {key} is {items!r}; expected a list of strings")
    return items


def _build(cls: type[Any], table: Any, section: str, path: Path) -> Any:
    """``cls(**table)`` for a section of a target file, every value checked against its
    field's type: a string, or a finite number (an integer for ``int`` fields), positive or,
    for ``EnergyModel`` and ``ZERO_ALLOWED``, non-negative."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(table, dict):
        raise TargetError(f"{path}: [{section}] must be a table")
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise TargetError(f"{path}: unknown key {section}.{unknown[0]}; known: {', '.join(fields)}")
    for key, field in fields.items():
        if key in table:
            sign = "non-negative" if cls is EnergyModel or key in ZERO_ALLOWED else "positive"
            _check(table[key], str(field.type).split(" |")[0], f"{section}.{key}", path, sign)
        elif field.default is dataclasses.MISSING:
            raise TargetError(f"{path}: {section}.{key} is missing")
    return cls(**table)


def _check(value: Any, kind: str, key: str, path: Path, sign: str = "") -> None:
    """Refuse ``value`` unless it is a ``kind`` ("str", "int" or "float"): a number must be
    finite and, if ``sign`` says so, "positive" or "non-negative"."""
    if value is None:
        raise TargetError(f"{path}: {key} is missing")
    if kind == "str":
        ok = isinstance(value, str)
    else:
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int if kind == "int" else (int, float))
            and math.isfinite(value)
            and {"": True, "positive": value > 0, "non-negative": value >= 0}[sign]
        )
    if not ok:
        what = {"str": "a string", "int": "an integer", "float": "a number"}[kind]
        raise TargetError(
            f"{path}: {key} is {value!r}; expected {what}" + (f", {sign}" if sign else "")
        )


def _numeric(v: dict[str, Any], path: Path) -> NumericSpec:
    for key in NUMERIC_KEYS:
        if key not in v:
            raise TargetError(f"{path}: numeric.{key} is missing")
        _check(v[key], "str" if key.endswith("_overflow") else "int", f"numeric.{key}", path)
    unknown = sorted(set(v) - set(NUMERIC_KEYS) - set(OPTIONAL_NUMERIC_KEYS))
    if unknown:
        raise TargetError(f"{path}: unknown key numeric.{unknown[0]}")
    extra: dict[str, Any] = {}
    for key, (kind, cls) in OPTIONAL_NUMERIC_KEYS.items():
        if key in v:
            _check(v[key], kind, f"numeric.{key}", path, "" if cls else "non-negative")
            extra[key] = cls(v[key]) if cls else v[key]

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
        **extra,
    )


__all__ = ["available", "load_target", "targets_dir"]
