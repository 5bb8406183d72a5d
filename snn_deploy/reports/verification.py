"""Test vectors and their exact comparison: what ``verify`` and ``simulate --expect`` check.

A vectors file (``vectors.npz``, written by ``compile --inputs`` and by ``simulate -o``) holds
``input.<name>`` (the inputs as given), ``output.<name>`` (what each Output node recorded,
``[batch, time, neurons]``) and, with ``compile --record-state``, ``u.<population>`` and
``v.<population>`` (and ``u2.<population>`` for a population with a second current). Two
runs agree when every array other than the inputs is equal, as in
``numpy.testing.assert_array_equal``: same shape, same values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import numpy as np
import numpy.typing as npt

from snn_deploy.backends.base import Trace

PREFIXES = ("input.", "output.", "u.", "v.", "u2.")
"""The keys of a vectors file: ``<prefix><name>``."""


def vectors(
    inputs: Mapping[str, npt.ArrayLike], trace: Trace
) -> dict[str, npt.NDArray[np.generic]]:
    """The vectors of a run: its inputs, its outputs and, when recorded, every ``u`` and ``v``."""
    arrays = {f"input.{k}": np.asarray(v) for k, v in inputs.items()}
    records_of = (("output.", trace.outputs), ("u.", trace.u), ("v.", trace.v), ("u2.", trace.u2))
    for prefix, records in records_of:
        arrays.update({f"{prefix}{k}": np.asarray(v) for k, v in records.items()})
    return arrays


def records_state(expected: Mapping[str, object]) -> bool:
    """Whether the expected vectors hold ``u`` or ``v`` (so the run must record them)."""
    return any(k.startswith(("u.", "v.", "u2.")) for k in expected)


@dataclass(frozen=True, slots=True)
class Check:
    """One compared array: how many of its slots differ and the first that does.

    Attributes:
        name: the vectors key (``output.<name>``, ``u.<population>``, ``v.<population>``).
        slots: values compared (0 when the array is missing on one side or shapes differ).
        mismatches: slots that differ.
        first: the first differing slot in C order: ``sample``, ``step``, ``neuron``
            (flat index), ``expected``, ``got``; None when equal.
        problem: why the array could not be compared at all; None when it could.
    """

    name: str
    slots: int
    mismatches: int
    first: dict[str, int | float] | None
    problem: str | None

    @property
    def passed(self) -> bool:
        """Whether the array is equal on both sides."""
        return self.problem is None and self.mismatches == 0

    def describe(self) -> str:
        """One line: ``equal``, the problem, or the count and the first mismatch."""
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        if self.first is None:
            return f"{self.name}: equal ({self.slots} values)"
        f = self.first
        return (
            f"{self.name}: {self.mismatches} of {self.slots} values differ; first at sample "
            f"{f['sample']}, step {f['step']}, neuron {f['neuron']}: expected {f['expected']}, "
            f"got {f['got']}"
        )


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of comparing a run with expected vectors (``Check``s in key order)."""

    folder: str
    target: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """Whether every array is equal."""
        return all(c.passed for c in self.checks)

    def summary(self) -> str:
        """One line: how many arrays differ and the first mismatch."""
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return f"{self.folder} on {self.target}: all {len(self.checks)} arrays equal"
        return (
            f"{self.folder} on {self.target}: {len(failed)} of {len(self.checks)} arrays differ; "
            f"{failed[0].describe()}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (``--json``)."""
        return {
            "folder": self.folder,
            "target": self.target,
            "passed": self.passed,
            "checks": [
                {
                    "name": c.name,
                    "passed": c.passed,
                    "slots": c.slots,
                    "mismatches": c.mismatches,
                    "first": c.first,
                    "problem": c.problem,
                }
                for c in self.checks
            ],
        }

    def junit_xml(self) -> str:
        """A JUnit XML report, one testcase per compared array, for CI test views."""
        suite = ElementTree.Element(
            "testsuite",
            name=f"snn-deploy verify {self.folder}",
            tests=str(len(self.checks)),
            failures=str(sum(not c.passed for c in self.checks)),
            errors="0",
        )
        for c in self.checks:
            case = ElementTree.SubElement(
                suite, "testcase", classname=f"snn-deploy.verify.{self.target}", name=c.name
            )
            if not c.passed:
                ElementTree.SubElement(case, "failure", message=c.describe()).text = c.describe()
        root = ElementTree.Element("testsuites")
        root.append(suite)
        ElementTree.indent(root)
        return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def compare(
    expected: Mapping[str, npt.ArrayLike], got: Mapping[str, npt.ArrayLike]
) -> tuple[Check, ...]:
    """Compare every expected array but the inputs with the same key in ``got``, exactly.

    Arrays are ``[batch, time, ...]``, as in a ``Trace``; the first mismatch is reported with
    the neuron index flat in C order.

    An expected array that ``got`` lacks, or an output of ``got`` the expected vectors lack,
    fails with a ``problem``; ``u``/``v`` that only ``got`` has are not compared.
    """
    names = {k for k in expected if not k.startswith("input.")}
    names |= {k for k in got if k.startswith("output.")}
    return tuple(_check(k, expected.get(k), got.get(k)) for k in sorted(names))


def _check(name: str, expected: npt.ArrayLike | None, got: npt.ArrayLike | None) -> Check:
    if expected is None:
        return Check(name, 0, 0, None, "missing from the expected vectors")
    if got is None:
        return Check(name, 0, 0, None, "expected, but the run did not record it")
    want, have = np.asarray(expected), np.asarray(got)
    if want.shape != have.shape:
        return Check(name, 0, 0, None, f"expected shape {list(want.shape)}, got {list(have.shape)}")
    differ = (want != have).reshape(*want.shape[:2], -1)  # [batch, time, neurons (flat)]
    count = int(np.count_nonzero(differ))
    if count == 0:
        return Check(name, int(want.size), 0, None, None)
    first_slot = np.unravel_index(int(np.argmax(differ)), differ.shape)  # first True
    sample, step, neuron = (int(i) for i in first_slot)
    first: dict[str, int | float] = {
        "sample": sample,
        "step": step,
        "neuron": neuron,
        "expected": want.reshape(differ.shape)[sample, step, neuron].item(),
        "got": have.reshape(differ.shape)[sample, step, neuron].item(),
    }
    return Check(name, int(want.size), count, first, None)
