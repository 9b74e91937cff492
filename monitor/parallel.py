"""Batch work over the whole archive (monitor retag: tagging, story fingerprints) spread over the
machine's cores.

Processes, not threads: the work is pure Python and holds the GIL. Workers are started from a
fresh interpreter ("spawn"), never forked from the caller, which may hold a database connection
or, in the web desk, threads. If a worker dies (out of memory, killed), the batches it had are
done here instead: the caller gets every result, in order, just later.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)

# Below this many items a pool costs more than it saves (a spawned worker imports the package
# and unpickles the config: about a second).
PARALLEL_FROM_ITEMS = 10_000

_STATE: Any = None


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def processes_for(items: int, processes: int | None) -> int:
    """The worker count for `items` items: `processes` when given, else all cores for a large job
    and none (work in this process) for a small one."""
    if processes is not None:
        return max(1, processes)
    return cores() if items >= PARALLEL_FROM_ITEMS else 1


class WorkerUnavailable(Exception):
    """A worker could not make its state (its setup raised): its batches are done by the caller."""


def _init(setup: Callable[..., Any], args: tuple) -> None:
    global _STATE
    try:
        _STATE = setup(*args)
    except Exception as exc:  # said once by the caller, not as a traceback from each worker
        _STATE = WorkerUnavailable(str(exc))


def _call(func: Callable[[Any, Any], Any], batch: Any) -> Any:
    if isinstance(_STATE, WorkerUnavailable):
        raise _STATE
    return func(_STATE, batch)


def ordered_map(func: Callable[[Any, Any], Any], batches: Iterable[Any], *, state: Any,
                setup: Callable[..., Any], setup_args: tuple = (), processes: int = 1,
                ahead: int = 2) -> Iterator[Any]:
    """func(state, batch) for each batch, yielded in the batches' order.

    With processes > 1 the batches go to that many workers, each of which makes its own state
    with setup(*setup_args) (the same state, rebuilt: say, the config loaded from its file). func
    and setup must be module-level functions (workers import them by name) and setup_args small:
    a worker that dies before reading a large argument would leave the pool's start blocked. At
    most processes * ahead batches are in flight, so a large archive is never all in memory.
    """
    if processes <= 1:
        for batch in batches:
            yield func(state, batch)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_init,
                             initargs=(setup, setup_args)) as pool:
        pending: deque = deque()
        broken = False

        def result_of(batch, future):
            nonlocal broken
            if future is not None:
                try:
                    return future.result()
                except (BrokenProcessPool, WorkerUnavailable) as exc:
                    if not broken:
                        why = f" ({exc})" if isinstance(exc, WorkerUnavailable) else ""
                        log.warning("a worker process stopped%s; the remaining batches run in "
                                    "this process", why)
                    broken = True
            return func(state, batch)

        for batch in batches:
            future = None
            if not broken:
                try:
                    future = pool.submit(_call, func, batch)
                except BrokenProcessPool:
                    broken = True
            pending.append((batch, future))
            if len(pending) >= processes * ahead:
                yield result_of(*pending.popleft())
        while pending:
            yield result_of(*pending.popleft())
