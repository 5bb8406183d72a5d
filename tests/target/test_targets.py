"""Targets are data: every file validates and every number has a source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from snn_deploy.backends import get_all_backends
from snn_deploy.errors import TargetError
from snn_deploy.frontends import get_all_frontends
from snn_deploy.passes import get_all_passes
from snn_deploy.target.load import available, load_target, targets_dir


@pytest.mark.parametrize("name", available())
def test_every_target_loads_and_every_number_has_a_source(name):
    target = load_target(name)
    assert target.name == name
    assert target.backend in get_all_backends()
    for section in ("limits", "energy"):
        for field in dataclasses.fields(getattr(target, section)):
            if getattr(getattr(target, section), field.name) is not None:
                assert target.sources[f"{section}.{field.name}"].strip()
    assert len([k for k in target.sources if k.startswith("numeric.")]) == 15


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
            "'two Loihi 1 chips' (FACTS §2)\" }",
            "chips = { value = 2 }",
        )
    )
    with pytest.raises(TargetError, match=r"limits\.chips has no source"):
        load_target(bad)
    good = tmp_path / "good.toml"
    good.write_text(text)
    assert load_target(good).limits.chips == 2


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
