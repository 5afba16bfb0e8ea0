"""Reader processes for stampede tests: threads in one process cannot show
cross-process coalescing, so these are real OS processes (spawned, not forked)."""

from __future__ import annotations

import importlib
import multiprocessing as mp
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

CTX = mp.get_context("spawn")


@dataclass
class ReadReport:
    values: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def _resolve(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _reader(loader_path: str, args: list[Any], threads: int, seconds: float,
            ready: Any, go: Any, out: Any) -> None:
    loader = _resolve(loader_path)
    report = ReadReport()
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
            if time.monotonic() >= deadline:
                return

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    for w in workers:
        w.join()
    loader.cache.flush()
    report.stats = loader.cache.stats.snapshot()
    out.put(report)


def run_readers(loader_path: str, args: list[Any], processes: int, threads: int,
                seconds: float = 0.0, before_go: Callable[[], object] | None = None) -> list[ReadReport]:
    """Start `processes` x `threads` readers, release them together, and collect one
    report per process. With seconds=0 each thread reads once; otherwise it reads in a
    loop for that long. `before_go` runs once every reader is ready (to warm a key)."""
    ready = CTX.Barrier(processes + 1)
    go = CTX.Event()
    out = CTX.Queue()
    procs = [CTX.Process(target=_reader, args=(loader_path, args, threads, seconds, ready, go, out))
             for _ in range(processes)]
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
