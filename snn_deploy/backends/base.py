"""What every backend returns from ``run``: a ``Trace`` of what each population emitted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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


def check_inputs(
    net: Net, inputs: Mapping[str, npt.ArrayLike]
) -> dict[str, npt.NDArray[np.float64]]:
    """Validate inputs against the net: returns ``[batch, time, size]`` arrays, one per input.

    A single-input net accepts any one key; ``[time, *shape]`` arrays get a batch axis of 1.

    Raises:
        InputFileError: a missing input, a wrong shape, no sample or no time step, a value
            that is NaN, infinite or beyond ``MAX_INPUT_PAYLOAD``, or unequal step counts.
    """
    if len(net.inputs) == 1 and len(inputs) == 1:
        inputs = {next(iter(net.inputs)): next(iter(inputs.values()))}
    missing = sorted(set(net.inputs) - set(inputs))
    if missing:
        raise InputFileError(f"inputs are missing for {missing}; given: {sorted(inputs)}")
    out: dict[str, npt.NDArray[np.float64]] = {}
    steps: set[int] = set()
    for name, shape in net.inputs.items():
        arr = np.asarray(inputs[name], dtype=np.float64)
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
        if not np.all(np.isfinite(arr)):
            raise InputFileError(f"input {name!r} contains NaN or inf")
        if np.max(np.abs(arr)) > MAX_INPUT_PAYLOAD:
            where = np.unravel_index(int(np.argmax(np.abs(arr))), arr.shape)
            raise InputFileError(
                f"input {name!r} has value {arr[where]:g} at {list(map(int, where))}, beyond "
                "the largest exact integer payload 2**53"
            )
        batch = arr.shape[0] if arr.ndim == len(shape) + 2 else 1
        arr = arr.reshape(batch, arr.shape[-len(shape) - 1], -1)
        steps.add(arr.shape[1])
        out[name] = arr
    if len(steps) != 1:
        raise InputFileError(f"inputs have different numbers of time steps: {sorted(steps)}")
    return out
