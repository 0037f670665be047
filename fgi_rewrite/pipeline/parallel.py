"""Spread a run's per-file work over worker processes (``--jobs``) with the result of one process.

A run maps two tasks over files (run.py): find and analyze the Function classes of each file that
may define one, then check and rewrite each target. A task is a module-level function
``task(index, context, item)``. ``InProcess`` calls it with the run's own ProjectIndex; ``Workers``
calls it in worker processes that each build their own ProjectIndex over the same project files,
so every name resolves exactly as in one process (each worker parses, lazily, the modules its
files need). Results come back in the order of the items, whatever order the workers finish in,
so reports and diffs do not depend on ``--jobs``.

Workers are started with ``spawn`` on every platform: they inherit no state from the main process
(the stdin overlay of run.py, open files) and get everything as pickled arguments, so they behave
alike on Linux, macOS and Windows. They ignore SIGINT: on Ctrl-C the main process stops them
(``Workers.stop``) and exits 130. An exception in a task is the task's to report (run.py turns it
into an internal error for its file); a worker that dies (killed, out of memory, a crash in C
code) breaks the pool, and the items it and the others had not finished go to ``lost`` (or raise
``BrokenProcessPool`` without one): nothing waits for a dead worker.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fgi_rewrite.project.index import ProjectIndex
from fgi_rewrite.project.source_module import FROM_DISK, SourceReader

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

# ProcessPoolExecutor accepts at most 61 workers on Windows; more never help this tool anyway.
MAX_JOBS = 61
# Starting a worker costs about a second on a loaded 2-core machine (each imports libcst and
# builds its index), about what one process needs for 200 plain files or 7 files defining
# autograd.Functions (parsed with metadata and analyzed). Smaller runs stay in one process.
MIN_WORK = 200
FUNCTION_FILE_WORK = 30
# Tasks per worker: enough that the workers finish close together, few enough that the pickled
# context sent with each task stays negligible.
TASKS_PER_JOB = 16
MAX_CHUNK = 16  # items per task


def default_jobs() -> int:
    """The CPUs this process may use (as black and ruff default to), at most ``MAX_JOBS``."""
    count: int | None
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13: honours affinity
    if process_cpu_count is not None:
        count = process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows before Python 3.13
        count = os.cpu_count()
    return max(1, min(count or 1, MAX_JOBS))


def worth_workers(targets: int, function_files: int) -> bool:
    """Whether a run this large is quicker with worker processes than in one process."""
    return targets + FUNCTION_FILE_WORK * function_files >= MIN_WORK


def chunks(weights: Sequence[int], jobs: int) -> list[list[int]]:
    """Indices of the items grouped into tasks, heaviest first (so that no large file is left
    for the end, when the other workers are idle): a heavy item alone, light ones together."""
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    target = max(sum(weights) / (jobs * TASKS_PER_JOB), 1)
    groups: list[list[int]] = []
    weight = 0.0
    for i in order:
        if not groups or weight >= target or len(groups[-1]) >= MAX_CHUNK:
            groups.append([])
            weight = 0.0
        groups[-1].append(i)
        weight += weights[i]
    return groups


class Mapper(Protocol):
    def map(
        self,
        task: Callable[[ProjectIndex, C, T], R],
        context: C,
        items: Sequence[T],
        advance: Callable[[int], None],
        weight: Callable[[T], int] = lambda item: 1,
        lost: Callable[[T, str], R] | None = None,
    ) -> list[R]:
        """``[task(index, context, item) for item in items]``, calling ``advance(n)`` as items
        finish. ``weight(item)`` estimates an item's cost (workers take heavy items first);
        ``lost(item, reason)`` stands for an item whose worker died."""


class InProcess:
    def __init__(self, index: ProjectIndex) -> None:
        self.index = index

    def map(
        self,
        task: Callable[[ProjectIndex, C, T], R],
        context: C,
        items: Sequence[T],
        advance: Callable[[int], None],
        weight: Callable[[T], int] = lambda item: 1,
        lost: Callable[[T, str], R] | None = None,
    ) -> list[R]:
        results = []
        for item in items:
            results.append(task(self.index, context, item))
            advance(1)
        return results


class Workers:
    def __init__(
        self, jobs: int, root: Path, files: Sequence[Path], read: SourceReader = FROM_DISK
    ) -> None:
        self.jobs = jobs
        self._tokens = itertools.count()
        self._executor = ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(root, tuple(files), read),
        )

    def map(
        self,
        task: Callable[[ProjectIndex, C, T], R],
        context: C,
        items: Sequence[T],
        advance: Callable[[int], None],
        weight: Callable[[T], int] = lambda item: 1,
        lost: Callable[[T, str], R] | None = None,
    ) -> list[R]:
        # Pickled once here; each worker unpickles it once (``_run_chunk`` keeps it by token).
        token, blob = next(self._tokens), pickle.dumps(context, pickle.HIGHEST_PROTOCOL)
        groups = chunks([weight(item) for item in items], self.jobs)
        futures = {
            self._executor.submit(_run_chunk, task, token, blob, [items[i] for i in group]): group
            for group in groups
        }
        results: dict[int, R] = {}
        for future in as_completed(futures):
            group = futures[future]
            try:
                results.update(zip(group, future.result(), strict=True))
            except BrokenProcessPool as exc:
                if lost is None:
                    raise
                reason = f"a worker process died ({exc})"
                results.update((i, lost(items[i], reason)) for i in group)
            advance(len(group))
        return [results[i] for i in range(len(items))]

    def stop(self) -> None:
        """End the workers at once, with whatever they were doing (Ctrl-C, an error), or once
        all results are in: a worker exiting normally first frees every syntax tree it holds,
        which takes seconds for a large project."""
        terminate = getattr(self._executor, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
            return
        # Before 3.14 the executor cannot end running tasks: end its processes ourselves
        # (``shutdown`` forgets them, so take them first).
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)


# ---- in the worker processes ------------------------------------------------------------------

_index: ProjectIndex | None = None
_context: tuple[int, Any] | None = None


def _start_worker(root: Path, files: tuple[Path, ...], read: SourceReader) -> None:
    global _index
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    _index = ProjectIndex(root, files, read)


def _run_chunk(
    task: Callable[[ProjectIndex, Any, T], R], token: int, blob: bytes, chunk: Sequence[T]
) -> list[R]:
    global _context
    assert _index is not None, "worker not initialized"
    if _context is None or _context[0] != token:
        _context = (token, pickle.loads(blob))
    return [task(_index, _context[1], item) for item in chunk]
