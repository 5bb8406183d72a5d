"""Memory limits and the validation of loaded arrays: bytes read from a file are checked here.

A load or compile first estimates the memory it needs from the declared shapes (HDF5 dataset
shapes, ``.npy`` headers, NIR node shapes, PyTorch layer sizes, the network and the simulated
``batch x time x neurons``) and refuses with ``ResourceLimitError`` when the estimate exceeds
``max_memory()``: by default half of the machine's physical memory, set for a block of code
with ``memory_limit`` (the CLI's ``--max-memory``). Arrays loaded from a file are checked by
``check_array`` (dtype, shape, value range, finiteness) before anything uses them.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from snn_deploy.errors import InputFileError, ResourceLimitError

COPY_BYTES = 8
"""Bytes charged per loaded element on top of its stored size: the float64 or int64 copy that
every loader makes of what it reads (``np.asarray(..., dtype=np.float64)``, frozen IR arrays)."""

_LIMIT: ContextVar[int | None] = ContextVar("snn_deploy_max_memory", default=None)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def default_max_memory() -> int:
    """Half of the machine's physical memory, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def max_memory() -> int:
    """The memory a load or compile may need, in bytes (``memory_limit``, else the default)."""
    limit = _LIMIT.get()
    return default_max_memory() if limit is None else limit


@contextmanager
def memory_limit(limit: int | None) -> Iterator[None]:
    """Run a block under ``limit`` bytes (None: the default, half the physical memory)."""
    token = _LIMIT.set(limit)
    try:
        yield
    finally:
        _LIMIT.reset(token)


def parse_size(text: str) -> int:
    """Bytes from a size with an optional binary unit K, M, G or T (``8G``, ``512M``, ``1.5G``).

    Examples:
        >>> parse_size("8G"), parse_size("512m"), parse_size("1000")
        (8589934592, 536870912, 1000)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 8G, 512M or 1000000")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def size_text(nbytes: int) -> str:
    """``nbytes`` for a message: ``3.4 GiB (3600000000 bytes)``."""
    value, unit = float(nbytes), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    return f"{nbytes} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({nbytes} bytes)"


def check_memory(where: object, what: str, nbytes: int) -> None:
    """Refuse (``ResourceLimitError``) when ``nbytes``, the estimate so far, exceeds the limit.

    Args:
        where: the file (or the model) being loaded or compiled, named first in the message.
        what: what brought the estimate there, with its declared shape.
        nbytes: the estimated bytes of the whole load or compile up to and including it.
    """
    limit = max_memory()
    if nbytes > limit:
        raise ResourceLimitError(
            f"{where}: {what} would need about {size_text(nbytes)}, above the limit of "
            f"{size_text(limit)} (raise it with --max-memory, e.g. --max-memory 16G)"
        )


def check_array(
    where: object,
    name: str,
    value: Any,
    *,
    kinds: str,
    shape: tuple[int | None, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> npt.NDArray[Any]:
    """A loaded array after checking it, or ``InputFileError`` naming ``where`` and ``name``.

    Args:
        where: the file it came from.
        name: the array's name in the file.
        value: what was read.
        kinds: the accepted numpy dtype kinds (``"b"`` bool, ``"i"``/``"u"`` integer, ``"f"``
            float); float arrays must also be finite.
        shape: the expected shape; None entries accept any length.
        low: the smallest allowed value (inclusive).
        high: the largest allowed value (inclusive).
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in kinds:
        raise InputFileError(f"{where}: array {name!r} has dtype {arr.dtype}; expected {kinds!r}")
    if shape is not None and (
        arr.ndim != len(shape)
        or any(w not in (None, d) for w, d in zip(shape, arr.shape, strict=True))
    ):
        want = ["*" if d is None else d for d in shape]
        raise InputFileError(
            f"{where}: array {name!r} has shape {list(arr.shape)}; expected {want}"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputFileError(f"{where}: array {name!r} contains NaN or inf")
    if arr.size and (
        (low is not None and arr.min() < low) or (high is not None and arr.max() > high)
    ):
        raise InputFileError(
            f"{where}: array {name!r} has values {arr.min()}..{arr.max()} outside {low}..{high}"
        )
    return arr


def read_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The arrays of an ``.npz`` (no pickle), refusing it before reading when their declared
    shapes (the ``.npy`` headers) or inflated sizes need more memory than ``max_memory()``.

    Raises:
        InputFileError: not an ``.npz`` of plain arrays.
        ResourceLimitError: the arrays would not fit the limit.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise InputFileError(f"{path}: member {info.filename!r} is not an .npy array")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)  # type: ignore[no-untyped-call]
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, _ = read_header(f)  # type: ignore[no-untyped-call]
                total += info.file_size + math.prod(shape) * COPY_BYTES
                check_memory(path, f"array {info.filename[:-4]!r} of shape {list(shape)}", total)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise InputFileError(f"{path} is not a readable .npz file: {exc}") from exc
