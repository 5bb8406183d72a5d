"""Helpers for users' own tests (pytest or plain ``assert``): is a deployment still bit-exact?

Example, in a user's ``tests/test_deployment.py`` (docs/CI.md)::

    from snn_deploy.testing import assert_deployment_matches

    def test_deployment_is_bit_exact():
        assert_deployment_matches("build/model")
"""

from __future__ import annotations

from pathlib import Path

from snn_deploy import api


def assert_deployment_matches(out_dir: str | Path, target: str | None = None) -> None:
    """Replay a compile output folder's ``vectors.npz`` and require every output to be equal.

    Args:
        out_dir: a folder written by ``snn-deploy compile ... --inputs``.
        target: ``sim``, ``loihi-sim`` or ``rtl`` (``api.verify``); default: the backend the
            folder was compiled for.

    Raises:
        AssertionError: an output differs; the message has, per array, the number of
            differing values and the first one (sample, step, neuron, expected, got).
        SnnDeployError: the folder cannot be verified (no vectors, missing toolchain, ...).
    """
    result = api.verify(out_dir, target=target)
    if not result.passed:
        lines = [result.summary(), *(c.describe() for c in result.checks)]
        raise AssertionError("\n".join(lines))
