"""Run a file reader in a forked child process, so a crash of a C library cannot take us down.

The HDF5 C library (behind h5py, which ``nir.read`` and the netx reader use) can crash the
whole process with a segmentation fault on a corrupt file; our fuzzer found such a one-byte
corruption of a valid NIR file (tests/fixtures/nir/PROVENANCE.md). Readers of untrusted HDF5
run here: the child returns the result (or the exception's type and text) through a pipe, and
a child that dies is reported as one clear ``InputFileError``.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TypeVar

from snn_deploy.errors import InputFileError, SnnDeployError

T = TypeVar("T")


class ReaderError(Exception):
    """An exception raised by the reader in the child, re-raised in the parent."""

    def __init__(self, kind: str, message: str, *, os_error: bool) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.os_error = kind, message, os_error


def _child(conn: Connection, read: Callable[[Path], object], path: Path) -> None:
    try:
        result: tuple[bool, object] = (True, read(path))
    except SnnDeployError as exc:  # ours pickle as they are
        result = (False, exc)
    except Exception as exc:  # every other failure goes back to the parent as data
        result = (False, (type(exc).__name__, str(exc), isinstance(exc, OSError)))
    conn.send(result)
    conn.close()


def read_isolated(read: Callable[[Path], T], path: Path) -> T:
    """``read(path)`` in a forked child.

    Raises:
        SnnDeployError: ``read`` raised one; it is re-raised as it was.
        ReaderError: ``read`` raised another exception; carries its type name and message.
        InputFileError: the child died (e.g. a segmentation fault in the HDF5 library).
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, read, path), daemon=True)
    child.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:
        child.join()
        code = child.exitcode or 0
        why = signal.Signals(-code).name if code < 0 else f"exit code {code}"
        raise InputFileError(
            f"{path}: the file reader crashed ({why}) while reading it; the file is corrupt"
        ) from None
    finally:
        receive.close()
    child.join()
    if ok:
        return value  # type: ignore[no-any-return]  # the child's read() returned a T
    if isinstance(value, SnnDeployError):
        raise value
    kind, message, os_error = value
    raise ReaderError(kind, message, os_error=os_error)
