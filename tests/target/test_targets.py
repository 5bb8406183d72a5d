"""Targets are data: every file validates and every number has a source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from snn_deploy.backends import get_all_backends
from snn_deploy.errors import TargetError
from snn_deploy.frontends import get_all_frontends
from snn_deploy.passes import get_all_passes
from snn_deploy.target.load import (
    NUMERIC_KEYS,
    OPTIONAL_NUMERIC_KEYS,
    available,
    load_target,
    targets_dir,
)
from snn_deploy.target.schema import Basis


@pytest.mark.parametrize("name", available())
def test_every_target_loads_and_every_number_has_a_source(name):
    target = load_target(name)
    assert target.name == name
    assert target.backend in get_all_backends()
    for section in ("limits", "energy"):
        for field in dataclasses.fields(getattr(target, section)):
            if getattr(getattr(target, section), field.name) is not None:
                assert target.sources[f"{section}.{field.name}"].strip()
    numeric = {k.removeprefix("numeric.") for k in target.sources if k.startswith("numeric.")}
    assert set(NUMERIC_KEYS) <= numeric <= set(NUMERIC_KEYS) | set(OPTIONAL_NUMERIC_KEYS)


def test_required_targets_exist():
    assert {"sim", "loihi-sim", "loihi2", "loihi1"} <= set(available())


def test_a_number_without_source_is_rejected(tmp_path: Path):
    text = (targets_dir() / "loihi1.toml").read_text()
    (tmp_path / "formats").mkdir()
    (tmp_path / "formats" / "lava_fixed_pt.toml").write_text(
        (targets_dir() / "formats" / "lava_fixed_pt.toml").read_text()
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(
        text.replace(
            'chips = { value = 2, source = "lava magma/core/resources.py KapohoBay: '
            "'two Loihi 1 chips' (lava-nc v0.10.0)\" }",
            "chips = { value = 2 }",
        )
    )
    with pytest.raises(TargetError, match=r"limits\.chips has no source"):
        load_target(bad)
    good = tmp_path / "good.toml"
    good.write_text(text)
    assert load_target(good).limits.chips == 2


@pytest.mark.parametrize("name", available())
def test_sources_cite_public_references_not_internal_notes(name):
    assert not [k for k, v in load_target(name).sources.items() if "FACTS" in v]


@pytest.mark.parametrize("name", ["loihi2", "loihi-sim", "loihi2-netx"])
def test_loihi2_targets_mark_every_chip_figure_as_borrowed_from_loihi1(name):
    bases = load_target(name).energy_basis
    assert bases == {
        **dict.fromkeys(
            ["synop_pj", "neuron_update_pj", "spike_pj", "spike_inter_core_pj"], Basis.LOIHI1
        ),
        "mac_45nm_pj": Basis.CMOS_45NM,
        "ac_45nm_pj": Basis.CMOS_45NM,
    }


def _with_synop(tmp_path: Path, synop: str) -> Path:
    """loihi2.toml with its synop_pj line replaced by ``synop``."""
    (tmp_path / "formats").mkdir(exist_ok=True)
    (tmp_path / "formats" / "lava_fixed_pt.toml").write_text(
        (targets_dir() / "formats" / "lava_fixed_pt.toml").read_text()
    )
    lines = (targets_dir() / "loihi2.toml").read_text().splitlines()
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(synop if s.startswith("synop_pj") else s for s in lines))
    return path


@pytest.mark.parametrize(
    ("synop", "error"),
    [
        (
            'synop_pj = { value = 23.6, basis = "loihi3", source = "x" }',
            r"bad\.toml: energy\.synop_pj has basis 'loihi3', not in \['published', 'loihi1', "
            r"'xylo-audio3', 'cmos-45nm'\]$",
        ),
        (
            'synop_pj = { value = 23.6, source = "x" }',
            r"bad\.toml: energy\.synop_pj has no basis; one of \['published', 'loihi1', "
            r"'xylo-audio3', 'cmos-45nm'\]$",
        ),
    ],
)
def test_an_unknown_or_missing_basis_is_one_error_naming_file_and_key(tmp_path, synop, error):
    with pytest.raises(TargetError, match=error):
        load_target(_with_synop(tmp_path, synop))


def test_a_basis_outside_energy_is_refused(tmp_path: Path):
    path = _with_synop(tmp_path, 'synop_pj = { value = 23.6, basis = "loihi1", source = "x" }')
    path.write_text(
        path.read_text().replace("chips = { value = 1, ", 'chips = { value = 1, basis = "loihi1", ')
    )
    with pytest.raises(TargetError, match=r"limits\.chips has a basis; only \[energy\] figures"):
        load_target(path)


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError, match=r"unknown target .tpu.; available: .*loihi-sim, loihi1"):
        load_target("tpu")


def test_no_hardware_number_in_python_source():
    """Target numbers live in targets/*.toml only: no Loihi constant appears in the package."""
    package = Path(__file__).resolve().parents[2] / "snn_deploy"
    for path in package.rglob("*.py"):
        text = path.read_text()
        for constant in ("4096", "8192", "1048576", "131071", "23.6"):
            assert constant not in text, f"{constant} in {path}"


def test_registries_are_consistent():
    for name, loader in get_all_passes().items():
        assert loader().name == name
    for name, loader in get_all_backends().items():
        assert loader().name == name
    assert ".nir" in get_all_frontends()
