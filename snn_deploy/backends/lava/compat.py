"""Import shims that let Lava 0.10.0 and lava-dl 0.6.0 run on Python 3.11.

Both wheels declare ``Requires-Python >=3.10,<3.11`` and are installed with
``--no-deps --ignore-requires-python``. Three shims make them import and run. Each one
is active only while this module imports Lava and is undone afterwards:

1. **Dataclass defaults** (``import_lava``). ``lava/magma/compiler/var_model.py``
   gives the fields of ``CoreEncoder``, ``ChipEncoder`` and ``AxonEncoder`` a
   ``ByteEncoder()`` instance as their default. Python 3.11 rejects defaults
   whose class is unhashable (``ValueError: mutable default ... ByteEncoder``).
   While Lava is being imported, ``dataclasses._get_field`` is wrapped so that
   such a default becomes ``field(default_factory=...)``, which returns a deep
   copy of the instance. These encoders are used only by the Loihi hardware
   compiler, not by the CPU simulator. Delete this shim when a lava-nc release
   supports Python >= 3.11 (i.e. its ``var_model.py`` uses ``default_factory``).

2. **torchvision stub** (``import_netx``). ``lava.lib.dl.netx`` imports
   ``lava.lib.dl.slayer``, which imports ``slayer.object_detection``, which
   runs ``from torchvision import ops, transforms``. Those names are used only
   inside object-detection functions that netx never calls. If torchvision is
   missing, or fails to import next to the installed torch, empty stub modules
   ``torchvision``, ``torchvision.ops`` and ``torchvision.transforms`` are put
   in ``sys.modules`` for the duration of the import. Delete this shim when
   lava-dl stops importing torchvision at import time, or when a torchvision
   that matches the installed CPU torch can be installed.

3. **Start method** (``import_lava``). ``lava/magma/runtime/message_infrastructure/
   multiprocessing.py`` calls ``multiprocessing.set_start_method('fork')`` at import, which
   raises ``RuntimeError: context has already been set`` once anything in the process has
   fixed the start method (``multiprocessing.get_start_method()`` fixes it too: torch, numba
   and other frameworks' imports do so), so Lava could not run after them. While Lava is
   imported, a request for the method already in force is a no-op, and a request for another
   one is forced (Lava's runtime needs ``fork``). Delete this shim when lava-nc passes
   ``force=True`` or checks the current method.

``import_netx`` also swallows what lava-dl prints to stdout while importing
(a "Prophesee Dataset Toolbox could not be found" warning), so that it cannot
corrupt the CLI's output.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import importlib.util
import io
import multiprocessing
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["import_lava", "import_netx"]

_LAVA_INSTALL = (
    "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 && "
    "pip install 'numpy>=1.24.4,<2' 'scipy>=1.10.1,<2' 'networkx<=2.8.7' "
    "'asteval>=0.9.31,<0.10' 'scikit-learn>=1.5,<2'"
)
_NETX_INSTALL = (
    "pip install --no-deps --ignore-requires-python lava-dl==0.6.0 && "
    "pip install 'h5py>=3.7,<4' 'matplotlib<4' 'pillow>=10.0.1,<11' "
    "'opencv-python-headless>=4.8.1.78,<4.12'"
)

# Modules our backend uses. var_model is the one that needs shim 1.
_LAVA_MODULES = (
    "lava.magma.compiler.var_model",
    "lava.magma.core.run_configs",
    "lava.magma.core.run_conditions",
    "lava.proc.lif.process",
    "lava.proc.dense.process",
    "lava.proc.sparse.process",
    "lava.proc.conv.process",
    "lava.proc.io.source",
    "lava.proc.io.sink",
    "lava.proc.monitor.process",
    "lava.utils.weightutils",
    "lava.magma.runtime.message_infrastructure.multiprocessing",  # shim 3
)
_NETX_MODULE = "lava.lib.dl.netx"
_TORCHVISION_STUBS = ("torchvision", "torchvision.ops", "torchvision.transforms")

_lock = threading.Lock()
_state = {"lava": False, "netx": False}


def _copying_factory(value: object) -> Callable[[], object]:
    """Returns a factory that makes a fresh deep copy of ``value``."""
    return lambda: copy.deepcopy(value)


@contextlib.contextmanager
def _dataclass_instance_defaults() -> Iterator[None]:
    """Lets dataclass fields have dataclass instances as defaults (shim 1)."""
    original: Callable[..., Any] | None = getattr(dataclasses, "_get_field", None)
    if original is None:  # Private API gone: nothing to patch.
        yield
        return
    get_field: Callable[..., Any] = original

    def patched(cls: type, name: str, *args: Any, **kwargs: Any) -> Any:
        default = cls.__dict__.get(name, dataclasses.MISSING)
        if (
            dataclasses.is_dataclass(default)
            and not isinstance(default, type)
            and type(default).__hash__ is None
        ):
            setattr(cls, name, dataclasses.field(default_factory=_copying_factory(default)))
        return get_field(cls, name, *args, **kwargs)

    setattr(dataclasses, "_get_field", patched)  # noqa: B010 - private, not in typeshed.
    try:
        yield
    finally:
        setattr(dataclasses, "_get_field", original)  # noqa: B010


@contextlib.contextmanager
def _tolerant_start_method() -> Iterator[None]:
    """``multiprocessing.set_start_method`` that accepts the method already in force (shim 3)."""
    original = multiprocessing.set_start_method

    def patched(method: str | None, force: bool = False) -> None:
        current = multiprocessing.get_start_method(allow_none=True)
        if current is not None and current == method:
            return
        original(method, force=force or current is not None)

    multiprocessing.set_start_method = patched
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


def _torchvision_usable() -> bool:
    """Tells whether the real torchvision imports."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision")
    except Exception:
        for name in [m for m in sys.modules if m.partition(".")[0] == "torchvision"]:
            del sys.modules[name]
        return False
    return True


def _stub_module(name: str) -> types.ModuleType:
    """Makes an empty module whose attributes raise a clear error."""
    module = types.ModuleType(name, "Stub inserted by snn_deploy: torchvision is unusable.")

    def __getattr__(attr: str) -> Any:
        raise AttributeError(
            f"{name}.{attr}: torchvision is stubbed by snn_deploy (lava-dl object detection "
            "is unavailable)"
        )

    vars(module)["__getattr__"] = __getattr__  # PEP 562 module __getattr__.
    return module


@contextlib.contextmanager
def _torchvision_stub() -> Iterator[None]:
    """Puts a torchvision stub in ``sys.modules`` if the real one is unusable (shim 2)."""
    if _torchvision_usable():
        yield
        return
    stubs = {name: _stub_module(name) for name in _TORCHVISION_STUBS}
    vars(stubs["torchvision"]).update(
        ops=stubs["torchvision.ops"], transforms=stubs["torchvision.transforms"]
    )
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]


def _missing(exc: ModuleNotFoundError, what: str, steps: str) -> ImportError:
    """Builds the ImportError raised when Lava or one of its dependencies is missing."""
    return ImportError(
        f"{what} is not usable: module {exc.name!r} is not installed. Install it with: {steps}"
    )


def import_lava() -> None:
    """Imports Lava (lava-nc 0.10.0) with the Python 3.11 shim applied.

    Idempotent: after the first successful call it returns at once.

    Raises:
        ImportError: Lava or one of its runtime dependencies is not installed.
    """
    if _state["lava"]:
        return
    with _lock:
        if _state["lava"]:
            return
        try:
            with _dataclass_instance_defaults(), _tolerant_start_method():
                for module in _LAVA_MODULES:
                    importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise _missing(exc, "Lava (lava-nc 0.10.0)", _LAVA_INSTALL) from exc
        _state["lava"] = True


def import_netx() -> None:
    """Imports ``lava.lib.dl.netx`` (lava-dl 0.6.0) with both shims applied.

    Idempotent: after the first successful call it returns at once.

    Raises:
        ImportError: lava-nc, lava-dl or one of their runtime dependencies is
            not installed.
    """
    if _state["netx"]:
        return
    import_lava()
    with _lock:
        if _state["netx"]:
            return
        try:
            with (
                _dataclass_instance_defaults(),
                _torchvision_stub(),
                contextlib.redirect_stdout(io.StringIO()),
            ):
                importlib.import_module(_NETX_MODULE)
        except ModuleNotFoundError as exc:
            raise _missing(exc, "lava-dl netx (lava-dl 0.6.0)", _NETX_INSTALL) from exc
        _state["netx"] = True
