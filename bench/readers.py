"""Reader processes that start together: threads in one process cannot show what happens
between processes, so stampedes are read by real OS processes (spawned, not forked).

The processes live for the whole run and take one job at a time, so a scenario pays for
their start-up (imports, connections) once rather than once per strategy. For each job
every process builds its strategy, starts its threads and waits at a barrier; the bench
then warms the key if it wants to and releases all of them at once. A thread that has
read stays alive until every process has read, as a server's pooled threads do: a thread
ending costs its process tens of microseconds of CPU (about 50 us each on 2 cores), and
200 threads ending while other readers of the same stampede are still being woken would
be counted in their latencies, though no server pays it per request.

An asyncio strategy's job runs on one event loop per process (`asyncio.run`), its readers
being tasks rather than threads: the strategy is built and warmed inside that loop, the
process waits at the barriers, and its tasks start together once released.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bench import origin
from bench.strategies import AsyncStrategy, BulkStrategy, Spec, build, build_async

CTX = mp.get_context("spawn")
BARRIER_TIMEOUT_S = 120
SLOW_S = 0.050  # a read over this long is a slow read; the reader notes when it began


@dataclass(frozen=True)
class Job:
    """Each of `threads` threads reads `keys[i::threads]` (every key if there is one),
    once each, or in a loop for `seconds`. With `batch`, a thread reads its keys with
    get_many, `batch` at a time, and waits for the refreshes each batch asked for to be
    handed over before the next (so no background queue overflows). For an asyncio
    strategy (`spec.is_async`), `threads` is the number of tasks on the process's loop."""

    spec: Spec
    keys: tuple[str, ...]
    threads: int
    seconds: float = 0.0
    batch: int = 0


@dataclass
class Report:
    latencies: list[float] = field(default_factory=list)  # seconds per read (per batch with `batch`)
    slow_at: list[float] = field(default_factory=list)  # wall-clock starts (time.time()) of reads over SLOW_S
    errors: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


def _shares(job: Job) -> list[tuple[str, ...]]:
    return [job.keys if len(job.keys) == 1 else job.keys[i :: job.threads] for i in range(job.threads)]


def _read(job: Job, ready: Any, go: Any, done: Any) -> Report:
    if job.spec.is_async:
        return asyncio.run(_aread(job, ready, go, done))
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

    unread = [len(_shares(job)) if strategy else 0]
    unread_lock, all_read, leave = threading.Lock(), threading.Event(), threading.Event()

    def run(keys: Sequence[str]) -> None:
        start.wait()
        try:
            _read_for(keys)
        finally:
            with unread_lock:
                unread[0] -= 1
                if unread[0] == 0:
                    all_read.set()
            leave.wait()

    def _read_for(keys: Sequence[str]) -> None:
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
                    took = time.perf_counter() - t0
                    latencies.append(took)  # list.append is atomic
                    if took > SLOW_S:
                        report.slow_at.append(time.time() - took)
            if time.monotonic() >= deadline:
                return

    threads = [threading.Thread(target=run, args=(share,)) for share in _shares(job)] if strategy else []
    for t in threads:
        t.start()
    ready.wait(BARRIER_TIMEOUT_S)
    go.wait(BARRIER_TIMEOUT_S)
    start.set()
    if threads:
        all_read.wait(BARRIER_TIMEOUT_S + job.seconds)
    done.wait(BARRIER_TIMEOUT_S + job.seconds)
    leave.set()
    for t in threads:
        t.join()
    if strategy is not None:
        strategy.flush()
        report.counters = strategy.counters()
        strategy.close()
    return report


async def _aread(job: Job, ready: Any, go: Any, done: Any) -> Report:
    """`_read` for an asyncio strategy, on this process's event loop (no batches)."""
    report = Report()
    strategy: AsyncStrategy | None = None
    try:
        strategy = build_async(job.spec)
        await strategy.warm()
    except Exception:
        report.errors.append(traceback.format_exc(limit=5))

    async def run(keys: Sequence[str]) -> None:
        assert strategy is not None
        latencies = report.latencies
        deadline = time.monotonic() + job.seconds
        while True:
            for key in keys:
                t0 = time.perf_counter()
                try:
                    await strategy.get(key)
                except Exception:
                    report.errors.append(traceback.format_exc(limit=5))
                else:
                    took = time.perf_counter() - t0
                    latencies.append(took)
                    if took > SLOW_S:
                        report.slow_at.append(time.time() - took)
            if time.monotonic() >= deadline:
                return

    # Nothing runs on the loop yet: blocking it at the barriers holds up no reader.
    ready.wait(BARRIER_TIMEOUT_S)
    go.wait(BARRIER_TIMEOUT_S)
    if strategy is not None:
        await asyncio.gather(*(run(share) for share in _shares(job)))
    await asyncio.to_thread(done.wait, BARRIER_TIMEOUT_S + job.seconds)  # the loop's own tasks go on meanwhile
    if strategy is not None:
        await strategy.flush()
        report.counters = strategy.counters()
        await strategy.close()
    await origin.aclose()
    return report


def _serve(inbox: Any, outbox: Any, ready: Any, go: Any, done: Any) -> None:
    while (job := inbox.get()) is not None:
        outbox.put(_read(job, ready, go, done))


class ReaderPool:
    """`processes` long-lived reader processes sharing a start barrier, and one that
    every process reaches when all its reads are done."""

    def __init__(self, processes: int) -> None:
        self.size = processes
        self._ready = CTX.Barrier(processes + 1)
        self._go = CTX.Barrier(processes + 1)
        self._done = CTX.Barrier(processes + 1)
        self._outbox = CTX.Queue()
        self._inboxes = [CTX.Queue() for _ in range(processes)]
        self._procs = [CTX.Process(target=_serve, args=(inbox, self._outbox, self._ready, self._go, self._done), daemon=True)
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
        self._done.wait(BARRIER_TIMEOUT_S + longest)
        reports = [self._outbox.get(timeout=BARRIER_TIMEOUT_S + longest) for _ in jobs]
        return reports, released

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
