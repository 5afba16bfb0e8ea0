"""Reader processes that start together: threads in one process cannot show what happens
between processes, so stampedes are read by real OS processes (spawned, not forked).

The processes live for the whole run and take one job at a time, so a scenario pays for
their start-up (imports, connections) once rather than once per strategy. For each job
every process builds its strategy, starts its threads and waits at a barrier; the bench
then warms the key if it wants to and releases all of them at once.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bench.strategies import BulkStrategy, Spec, build

CTX = mp.get_context("spawn")
BARRIER_TIMEOUT_S = 120


@dataclass(frozen=True)
class Job:
    """Each of `threads` threads reads `keys[i::threads]` (every key if there is one),
    once each, or in a loop for `seconds`. With `batch`, a thread reads its keys with
    get_many, `batch` at a time, and waits for the refreshes each batch asked for to be
    handed over before the next (so no background queue overflows)."""

    spec: Spec
    keys: tuple[str, ...]
    threads: int
    seconds: float = 0.0
    batch: int = 0


@dataclass
class Report:
    latencies: list[float] = field(default_factory=list)  # seconds per read (per batch with `batch`)
    errors: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def _read(job: Job, ready: Any, go: Any) -> Report:
    report = Report()
    strategy = None
    try:
        strategy = build(job.spec)
        strategy.warm()
    except Exception:
        report.errors.append(traceback.format_exc(limit=5))
    start = threading.Event()

    def read(unit: Any) -> None:
        assert strategy is not None
        if job.batch:
            assert isinstance(strategy, BulkStrategy)
            strategy.get_many(unit)
            strategy.flush()
        else:
            strategy.get(unit)

    def run(keys: Sequence[str]) -> None:
        start.wait()
        latencies = report.latencies
        units = [keys[i : i + job.batch] for i in range(0, len(keys), job.batch)] if job.batch else keys
        deadline = time.monotonic() + job.seconds
        while True:
            for unit in units:
                t0 = time.perf_counter()
                try:
                    read(unit)
                except Exception:
                    report.errors.append(traceback.format_exc(limit=5))
                else:
                    latencies.append(time.perf_counter() - t0)  # list.append is atomic
            if time.monotonic() >= deadline:
                return

    shares = [job.keys if len(job.keys) == 1 else job.keys[i :: job.threads] for i in range(job.threads)]
    threads = [threading.Thread(target=run, args=(share,)) for share in shares] if strategy else []
    for t in threads:
        t.start()
    ready.wait(BARRIER_TIMEOUT_S)
    go.wait(BARRIER_TIMEOUT_S)
    start.set()
    for t in threads:
        t.join()
    if strategy is not None:
        strategy.flush()
        report.counters = strategy.counters()
        strategy.close()
    return report


def _serve(inbox: Any, outbox: Any, ready: Any, go: Any) -> None:
    while (job := inbox.get()) is not None:
        outbox.put(_read(job, ready, go))


class ReaderPool:
    """`processes` long-lived reader processes sharing a start barrier."""

    def __init__(self, processes: int) -> None:
        self.size = processes
        self._ready = CTX.Barrier(processes + 1)
        self._go = CTX.Barrier(processes + 1)
        self._outbox = CTX.Queue()
        self._inboxes = [CTX.Queue() for _ in range(processes)]
        self._procs = [CTX.Process(target=_serve, args=(inbox, self._outbox, self._ready, self._go), daemon=True)
                       for inbox in self._inboxes]
        for p in self._procs:
            p.start()

    def run(self, jobs: Sequence[Job], before_go: Callable[[], object] | None = None) -> tuple[list[Report], float]:
        """Run one job per process, released together; return their reports and the wall
        time (time.time()) at which they were released."""
        assert len(jobs) == self.size, f"one job per reader process ({self.size})"
        for inbox, job in zip(self._inboxes, jobs):
            inbox.put(job)
        self._ready.wait(BARRIER_TIMEOUT_S)  # every process has built its strategy and started its threads
        if before_go is not None:
            before_go()
        released = time.time()
        self._go.wait(BARRIER_TIMEOUT_S)
        longest = max(job.seconds for job in jobs)
        reports = [self._outbox.get(timeout=BARRIER_TIMEOUT_S + longest) for _ in jobs]
        return reports, released

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
