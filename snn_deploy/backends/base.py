"""What every backend returns from ``run``: a ``Trace`` of what each population emitted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from snn_deploy.errors import InputFileError
from snn_deploy.ir.net import Net

MAX_INPUT_PAYLOAD = 2**53
"""The largest input magnitude: inputs are read as float64, which holds every integer payload
up to 2**53 exactly (and int64, into which the simulator casts them, holds it too)."""

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a backend runs (steps or samples)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """Per-step records, all ``[batch, time, neurons]`` (neurons flat in C order).

    Attributes:
        outputs: Output node name -> what it recorded (spikes, or ``v`` of a non-spiking
            population, in integer units for a quantized net).
        populations: population name -> its output at every step.
        u: population name -> current, when state recording was asked for.
        v: population name -> voltage (after reset), when state recording was asked for.
        products: product unit name -> its output at every step (docs/SEMANTICS.md §4).
        u2: population name -> its second synaptic current, when state recording was asked
            for and it has one.
    """

    outputs: Mapping[str, npt.NDArray[np.generic]]
    populations: Mapping[str, npt.NDArray[np.generic]]
    u: Mapping[str, npt.NDArray[np.generic]]
    v: Mapping[str, npt.NDArray[np.generic]]
    products: Mapping[str, npt.NDArray[np.generic]] = field(default_factory=dict)
    u2: Mapping[str, npt.NDArray[np.generic]] = field(default_factory=dict)


@overload
def check_inputs(
    net: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    integer: Literal[False] = False,
    int64_range: bool = True,
) -> dict[str, npt.NDArray[np.float64]]: ...


@overload
def check_inputs(
    net: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    integer: Literal[True],
    int64_range: bool = True,
) -> dict[str, npt.NDArray[np.int64]]: ...


def check_inputs(
    net: Net,
    inputs: Mapping[str, npt.ArrayLike],
    *,
    integer: bool = False,
    int64_range: bool = True,
) -> dict[str, npt.NDArray[Any]]:
    """Validate inputs against the net: returns ``[batch, time, size]`` arrays, one per input.

    A single-input net accepts any one key; ``[time, *shape]`` arrays get a batch axis of 1.
    The arrays are float64, or int64 with ``integer`` (integer runs); integer-typed inputs
    are then checked without a float copy (they are finite and integral by type).

    With ``int64_range=False`` (and ``integer``) an int64 array is returned without its range
    check: the caller must run ``check_range``'s test on it, or one of its own that raises
    through ``check_range`` (the compiled simulator's one pass that also finds the peak).
    Every other type is checked here: only int64 arrays reach the caller unconverted.

    Raises:
        InputFileError: a missing input, a wrong shape, no sample or no time step, a value
            that is NaN, infinite or beyond ``MAX_INPUT_PAYLOAD``, unequal step counts, or
            (``integer``) a value that is not an integer.
    """
    if len(net.inputs) == 1 and len(inputs) == 1:
        inputs = {next(iter(net.inputs)): next(iter(inputs.values()))}
    missing = sorted(set(net.inputs) - set(inputs))
    if missing:
        raise InputFileError(f"inputs are missing for {missing}; given: {sorted(inputs)}")
    out: dict[str, npt.NDArray[Any]] = {}
    steps: set[int] = set()
    for name, shape in net.inputs.items():
        arr = np.asarray(inputs[name])
        if not (integer and arr.dtype.kind in "biu"):  # bool, int, uint: kept as they are
            arr = arr.astype(np.float64, copy=False)
        if arr.shape[-len(shape) :] != shape or arr.ndim not in (len(shape) + 1, len(shape) + 2):
            raise InputFileError(
                f"input {name!r} has shape {list(arr.shape)}; expected [batch, time, "
                f"{', '.join(map(str, shape))}] or [time, {', '.join(map(str, shape))}]"
            )
        if arr.size == 0:
            raise InputFileError(
                f"input {name!r} has shape {list(arr.shape)}: it needs at least one sample and "
                "one time step"
            )
        if not (integer and not int64_range and arr.dtype == np.int64):
            _check_values(name, arr)
        batch = arr.shape[0] if arr.ndim == len(shape) + 2 else 1
        arr = arr.reshape(batch, arr.shape[-len(shape) - 1], -1)
        steps.add(arr.shape[1])
        out[name] = _integers(name, arr) if integer else arr
    if len(steps) != 1:
        raise InputFileError(f"inputs have different numbers of time steps: {sorted(steps)}")
    return out


def _check_values(name: str, arr: npt.NDArray[Any]) -> None:
    """No NaN or inf, no magnitude beyond ``MAX_INPUT_PAYLOAD``: two reductions, no copy (the
    bound is compared as a Python number, so int64's minimum cannot wrap past it), none for
    integer types of 32 bits or fewer, whose every value is within it."""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputFileError(f"input {name!r} contains NaN or inf")
    if arr.dtype.kind in "biu" and arr.dtype.itemsize <= 4:
        return
    check_range(name, arr)


def check_range(name: str, arr: npt.NDArray[Any]) -> None:
    """The range check of ``check_inputs``: no magnitude beyond ``MAX_INPUT_PAYLOAD``.

    Raises:
        InputFileError: naming the largest value and where it is.
    """
    if max(arr.max().item(), -arr.min().item()) > MAX_INPUT_PAYLOAD:
        f = np.abs(arr.astype(np.float64))
        where = np.unravel_index(int(np.argmax(f)), arr.shape)
        raise InputFileError(
            f"input {name!r} has value {arr.astype(np.float64)[where]:g} at "
            f"{list(map(int, where))}, beyond the largest exact integer payload 2**53"
        )


def _integers(name: str, arr: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """``arr`` as int64 (no copy when it is already); a float array must hold integers."""
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.rint(arr)):
        raise InputFileError(
            f"input {name!r} has non-integer values; integer simulation takes spikes or "
            "integer graded payloads"
        )
    return arr.astype(np.int64, copy=False)
