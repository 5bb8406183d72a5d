"""The exception hierarchy and the exit codes: every user error is an ``SnnDeployError``.

The CLI prints one line ``error: <message>`` for these and exits with the class's ``exit_code``
(the table below, also in the README); ``--debug`` shows the traceback. Messages name the node,
the pass or file, the limit and the value.

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success (``verify``: every output equal)
1     internal error: a bug in snn-deploy (the line says so; ``--debug`` shows the traceback)
2     usage error: unknown option, bad option value, options that do not fit together
3     a budget is broken (``report --max-cores`` and the other gates)
4     a model, input, target or output path cannot be used (unreadable, malformed, unsupported,
      not representable, refused to overwrite, too large for ``--max-memory``)
5     the network breaks a design rule of the target
6     verification mismatch: a backend's outputs differ from the expected vectors
7     an optional toolchain (Lava, Icarus Verilog, Yosys) is missing
130   interrupted (Ctrl-C or SIGTERM); nothing was left half-written
====  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

EXIT_INTERNAL = 1


class SnnDeployError(Exception):
    """Base class of all user-facing errors."""

    exit_code: ClassVar[int] = 4


class UsageError(SnnDeployError):
    """Options that are invalid or do not fit together (e.g. ``--dt`` for a compiled folder)."""

    exit_code = 2


class InputFileError(SnnDeployError):
    """A model, input, target or output file cannot be read, written or has the wrong format."""


class ResourceLimitError(InputFileError):
    """Loading or compiling would need more memory than allowed (``--max-memory``)."""


class VerificationError(SnnDeployError):
    """A graph or network breaks an IR invariant (shapes, edges, parameter values)."""


class UnsupportedOpError(SnnDeployError):
    """A node type, module or op has no converter; the message lists the supported ones."""


class QuantizationError(SnnDeployError):
    """Parameters cannot be represented in the target's fixed-point formats."""


class DesignRuleError(SnnDeployError):
    """A network breaks one or more hardware limits of the target.

    Attributes:
        violations: the broken limits (``target.rules.Violation``), for ``check --json``.
    """

    exit_code = 5

    def __init__(self, message: str, violations: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class BudgetError(SnnDeployError):
    """A report budget (cores, energy, agreement) is broken or cannot be checked."""

    exit_code = 3


class MismatchError(SnnDeployError):
    """A backend's outputs differ from the expected vectors (``verify``, ``simulate --expect``)."""

    exit_code = 6


class TargetError(SnnDeployError):
    """A target description is missing, malformed or lacks a source for a number."""


class PassError(SnnDeployError):
    """A pass failed; the message carries the pass history."""


class BackendUnavailableError(SnnDeployError):
    """An optional toolchain (Lava, an HDL simulator) is not installed."""

    exit_code = 7


class Interrupted(SnnDeployError):
    """Ctrl-C or SIGTERM: the command stopped and cleaned up what it had started."""

    exit_code = 130
