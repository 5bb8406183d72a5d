"""The pass protocol: a frozen dataclass with a kebab-case ``name`` and one ``run`` method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from snn_deploy.passes.calibration import Calibration
from snn_deploy.target.schema import Target


@dataclass(frozen=True, kw_only=True)
class PassContext:
    """What every pass may read besides the IR.

    Attributes:
        target: the compile target.
        calibration: what the float net showed on the user's calibration inputs
            (``--calibrate``); None without them.
        input_max: input name -> the largest |payload| the registers must hold for it
            (``quantize.input_ranges``); an input not listed: 1 (binary spikes).
    """

    target: Target
    calibration: Calibration | None = None
    input_max: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Pass:
    """Base class. ``run`` returns a new IR value (or the same object if nothing changed).

    Passes take and return either a ``Graph`` or a ``Net``; ``lower`` is the one pass that turns
    the first into the second. The pipeline verifies the result after every pass.
    """

    name: ClassVar[str]

    def run(self, ir: object, ctx: PassContext) -> object:
        """Transform ``ir``."""
        raise NotImplementedError
