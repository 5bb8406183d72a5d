"""Where dataset-scale work runs: this process, local worker processes, or a Ray cluster.

An engine maps a module-level function over argument tuples and yields the results as they
finish (in any order: callers key them), with at most ``2 × workers`` tasks in flight, so the
arguments a lazy iterator produces (shards read from disk) stay bounded in memory.

* ``InProcess``: one task after another, here (``--workers 1``, the default).
* ``Processes``: ``concurrent.futures.ProcessPoolExecutor`` with ``spawn`` workers (a forked
  child of a process whose numba or BLAS threads are running can deadlock); each worker's
  numba threads are set to ``cpu_count // workers`` so that the workers do not oversubscribe.
* ``Ray``: tasks of one CPU each on a Ray cluster (``ray.init(address)``: ``auto`` or
  ``HOST:PORT``); values given to ``share`` are put in the object store once and fetched once
  per node. Every node must run the same snn-deploy (same Python environment).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from snn_deploy.errors import BackendUnavailableError, SnnDeployError, UsageError


class Engine(Protocol):
    """What ``evaluate`` and ``sweep`` run their tasks on."""

    workers: int
    """How many tasks run at once."""
    threads: int | None
    """numba threads per task (None: leave the process's setting)."""
    ships_data: bool
    """Whether tasks run where the driver's files may be absent (then the driver reads the
    data and ships it with the task)."""

    def share(self, value: Any) -> Any:
        """A handle to ``value`` to pass to many tasks (sent once where possible)."""

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """``fn(*a)`` for each ``a``, yielded as they finish."""

    def close(self) -> None:
        """Stop the workers (a Ray cluster itself is left running)."""


def open_engine(workers: int | None = None, ray: str | None = None) -> Engine:
    """The engine for ``--workers N`` and ``--ray ADDRESS``.

    Raises:
        UsageError: ``workers`` below 1.
        BackendUnavailableError: ``ray`` given and Ray is not installed (extra ``cluster``).
    """
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1; got {workers}")
    if ray is not None:
        return Ray(ray, workers)
    if workers is None or workers == 1:
        return InProcess()
    return Processes(workers)


class InProcess:
    """Every task in this process, one after another."""

    workers = 1
    threads: int | None = None
    ships_data = False

    def share(self, value: Any) -> Any:
        return value

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        for a in args:
            yield fn(*a)

    def close(self) -> None:
        return None


def set_threads(threads: int) -> None:
    """Let numba's parallel loops (the simulator's samples) use ``threads`` threads here."""
    import numba

    numba.set_num_threads(min(threads, _max_threads()))


def _max_threads() -> int:
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]


class Processes:
    """``workers`` local processes (``spawn``), each with its share of the CPU threads."""

    ships_data = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.threads: int | None = max(1, (os.cpu_count() or 1) // workers)
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=set_threads,
            initargs=(self.threads,),
        )

    def share(self, value: Any) -> Any:
        return value

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        pending: set[cf.Future[Any]] = set()
        todo = iter(args)
        while True:
            for a in todo:
                pending.add(self.pool.submit(fn, *a))
                if len(pending) >= 2 * self.workers:
                    break
            if not pending:
                return
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Ray:
    """Tasks of one CPU each on a Ray cluster; ``workers`` defaults to its CPU count."""

    ships_data = True
    threads: int | None = 1

    def __init__(self, address: str, workers: int | None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise BackendUnavailableError(
                "--ray needs Ray: pip install 'snn-deploy[cluster]'"
            ) from exc
        self.ray = ray
        try:
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=False,
            )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UsageError(f"--ray {address}: cannot connect to a Ray cluster ({exc})") from exc
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        self.workers = workers or max(1, int(cpus))
        self.remote: dict[Callable[..., Any], Any] = {}

    def share(self, value: Any) -> Any:
        return self.ray.put(value)

    def imap(self, fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        remote = self.remote.setdefault(fn, self.ray.remote(num_cpus=1, max_retries=0)(fn))
        pending: list[Any] = []
        todo = iter(args)
        while True:
            for a in todo:
                pending.append(remote.remote(*a))
                if len(pending) >= 2 * self.workers:
                    break
            if not pending:
                return
            done, pending = self.ray.wait(pending, num_returns=1)
            try:
                yield self.ray.get(done[0])
            except self.ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, SnnDeployError):
                    raise cause from None
                raise

    def close(self) -> None:
        self.ray.shutdown()
