"""Reader processes for stampede tests: threads in one process cannot show
cross-process coalescing, so these are real OS processes (spawned, not forked)."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing as mp
import threading
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

from tests.support.loopwatch import blocked_callbacks

CTX = mp.get_context("spawn")
# A read served from the near cache takes microseconds; a reader that went straight on to
# the next would hold a CPU (and its process's GIL) for nothing, starving the worker and the
# publisher on a 2-core machine in a way no app does. Such readers pause between reads.
FROM_MEMORY = 0.0001
PACE = 0.0005


# In a reader process, how many reader processes there are (0 elsewhere): a stampede's
# loader (loaders.slow_user) holds its load until the others wait for it (`waited_for`).
_processes = 0


def waited_for(subscribers: Callable[[], int], timeout: float) -> None:
    """Return once every other reader process waits for this load (`subscribers()`, the
    processes subscribed to the key's signal channel, counts them), or after `timeout`;
    at once outside run_readers. A process the OS scheduled late would otherwise find the
    value written and only hit, and a stampede test could not say every process met it."""
    deadline = time.monotonic() + timeout
    while _processes and subscribers() < _processes - 1 and time.monotonic() < deadline:
        time.sleep(0.005)


@dataclass
class ReadReport:
    values: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def _resolve(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _reader(loader_path: str, args: list[Any], threads: int, seconds: float, mode: str, watch_loop: bool,
            ready: Any, go: Any, out: Any, processes: int) -> None:
    global _processes
    _processes = processes
    loader = _resolve(loader_path)
    report = ReadReport()
    if mode == "async":
        asyncio.run(_read_in_tasks(loader, args, threads, seconds, watch_loop, ready, go, report))
    else:
        _read_in_threads(loader, args, threads, seconds, ready, go, report)
    loader.cache.flush()
    report.stats = loader.cache.stats.snapshot()
    out.put(report)


def _read_in_threads(loader: Any, args: list[Any], threads: int, seconds: float,
                     ready: Any, go: Any, report: ReadReport) -> None:
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait()
        go.wait()
        deadline = time.monotonic() + seconds
        while True:
            t0 = time.perf_counter()
            try:
                value = loader.get(*args)
            except Exception:
                with lock:
                    report.errors.append(traceback.format_exc(limit=3))
            else:
                with lock:
                    report.values.append(value)
                    report.latencies.append(time.perf_counter() - t0)
                if time.perf_counter() - t0 < FROM_MEMORY:
                    time.sleep(PACE)
            if time.monotonic() >= deadline:
                return

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    for w in workers:
        w.join()


async def _read_in_tasks(loader: Any, args: list[Any], tasks: int, seconds: float, watch_loop: bool,
                         ready: Any, go: Any, report: ReadReport) -> None:
    """`tasks` concurrent `aget` loops on this process's one event loop. With
    `watch_loop`, callbacks that hold the loop for 20 ms or more (tests/support/loopwatch.py)
    are reported as errors: the loop must never block."""
    await loader.cache.aio().redis.ping()  # connected (a Cluster client has mapped its slots) before go
    started = asyncio.Event()

    async def run() -> None:
        await started.wait()
        deadline = time.monotonic() + seconds
        while True:
            t0 = time.perf_counter()
            try:
                value = await loader.aget(*args)
            except Exception:
                report.errors.append(traceback.format_exc(limit=3))
            else:
                report.values.append(value)
                report.latencies.append(time.perf_counter() - t0)
                if time.perf_counter() - t0 < FROM_MEMORY:
                    await asyncio.sleep(PACE)
            if time.monotonic() >= deadline:
                return

    readers = [asyncio.create_task(run()) for _ in range(tasks)]
    await asyncio.to_thread(ready.wait)
    await asyncio.to_thread(go.wait)
    asyncio.get_running_loop().set_debug(watch_loop)  # asyncio's checks of calls from other threads too
    with blocked_callbacks() if watch_loop else nullcontext([]) as blocked:
        started.set()
        await asyncio.gather(*readers)
    report.errors.extend(blocked)


def run_readers(loader_path: str, args: list[Any], processes: int, threads: int,
                seconds: float = 0.0, before_go: Callable[[], object] | None = None,
                mode: str | list[str] = "sync", watch_loop: bool = False) -> list[ReadReport]:
    """Start `processes` x `threads` readers, release them together, and collect one
    report per process. With seconds=0 each thread reads once; otherwise it reads in a
    loop for that long. `before_go` runs once every reader is ready (to warm a key).
    `mode` "async" makes each process's readers asyncio tasks calling `aget` on one loop
    (`watch_loop`: with asyncio's slow-callback detection); a list gives each process its
    own mode."""
    modes = mode if isinstance(mode, list) else [mode] * processes
    ready = CTX.Barrier(processes + 1)
    go = CTX.Event()
    out = CTX.Queue()
    procs = [CTX.Process(target=_reader, args=(loader_path, args, threads, seconds, modes[i], watch_loop, ready, go, out,
                                               processes))
             for i in range(processes)]
    for p in procs:
        p.start()
    ready.wait(timeout=60)  # every process has imported, connected and started its threads
    if before_go is not None:
        before_go()
    go.set()
    reports = [out.get(timeout=60 + seconds) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return reports
