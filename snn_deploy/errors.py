"""The exception hierarchy: every error a user can cause is an ``SnnDeployError``.

The CLI prints ``error: <message>`` for these and exits with code 2; anything else is a bug
and keeps its traceback. Messages name the node, the pass or file, the limit and the value.
"""

from __future__ import annotations


class SnnDeployError(Exception):
    """Base class of all user-facing errors."""


class InputFileError(SnnDeployError):
    """A model, input or target file cannot be read or has the wrong format."""


class VerificationError(SnnDeployError):
    """A graph or network breaks an IR invariant (shapes, edges, parameter values)."""


class UnsupportedOpError(SnnDeployError):
    """A node type, module or op has no converter; the message lists the supported ones."""


class QuantizationError(SnnDeployError):
    """Parameters cannot be represented in the target's fixed-point formats."""


class DesignRuleError(SnnDeployError):
    """A network breaks one or more hardware limits of the target."""


class TargetError(SnnDeployError):
    """A target description is missing, malformed or lacks a source for a number."""


class PassError(SnnDeployError):
    """A pass failed; the message carries the pass history."""


class BackendUnavailableError(SnnDeployError):
    """An optional toolchain (Lava, an HDL simulator) is not installed."""
