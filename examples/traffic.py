"""Reader processes for the demo. Threads in one process cannot show what happens
between processes, so each reader is a real OS process (spawned, not forked) running
threads that read through refresher or through the naive cache-aside."""

from __future__ import annotations

import multiprocessing as mp
import queue
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

CTX = mp.get_context("spawn")
THINK_SECONDS = 0.05  # on average, a request's own work between two reads


@dataclass(frozen=True)
class Phase:
    title: str
    mode: str  # "refresher" or "naive"
    user_ids: tuple[int, ...]
    seconds: float  # 0: every thread reads once, all at the same moment


@dataclass
class Report:
    """One process's view of one phase."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    enqueued: int = 0  # refresh tasks this process published (refresher's own stats)


def _read(get: Callable[[int], Any], phase: Phase, go: threading.Barrier, report: Report,
          lock: threading.Lock) -> None:
    rng = random.Random()
    go.wait()
    deadline = time.monotonic() + phase.seconds
    while True:
        started = time.perf_counter()
        try:
            get(rng.choice(phase.user_ids))
        except Exception:
            with lock:
                report.errors.append(traceback.format_exc(limit=2))
        else:
            with lock:
                report.latencies.append(time.perf_counter() - started)
        if time.monotonic() >= deadline:
            return
        time.sleep(rng.uniform(0, 2 * THINK_SECONDS))


def getter(mode: str) -> Callable[[int], Any]:
    """The read under test: refresher's loader handle, or the naive cache-aside."""
    from examples import loaders, naive  # imported once the demo has set the environment

    return loaders.user_profile.get if mode == "refresher" else naive.get_profile


def _run_phase(phase: Phase, threads: int) -> Report:
    from examples import loaders

    get = getter(phase.mode)
    enqueued_before = loaders.cache.stats["refresh_enqueued"]
    report, lock, go = Report(), threading.Lock(), threading.Barrier(threads)
    readers = [threading.Thread(target=_read, args=(get, phase, go, report, lock)) for _ in range(threads)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    loaders.cache.flush()  # count only tasks really handed to the broker
    report.enqueued = loaders.cache.stats["refresh_enqueued"] - enqueued_before
    return report


def _reader_process(plan: list[Phase], threads: int, start: Any, out: Any) -> None:
    from examples import loaders, naive  # noqa: F401  (imported and connected before any phase is timed)

    # As in a long-running app, the publisher has connected to the broker before the
    # stampede (the first read would start it, and its start-up would be timed too).
    loaders.cache.publisher.start()

    for phase in plan:
        start.wait()
        out.put(_run_phase(phase, threads))
    loaders.cache.close()


class Readers:
    """`processes` x `threads` readers that run `plan` one phase at a time, each phase
    released for every process at once by `run`."""

    def __init__(self, plan: list[Phase], processes: int, threads: int) -> None:
        self.plan = plan
        self._next = 0
        self._start = CTX.Barrier(processes + 1)
        self._out: Any = CTX.Queue()
        self._procs = [CTX.Process(target=_reader_process, args=(plan, threads, self._start, self._out), daemon=True)
                       for _ in range(processes)]

    def __enter__(self) -> Readers:
        for proc in self._procs:
            proc.start()
        return self

    def run(self, phase: Phase, tick: Callable[[], None], timeout: float = 60.0) -> list[Report]:
        """Release every process into `phase` (the next in the plan) and collect their
        reports, calling `tick` about four times a second meanwhile."""
        if phase != self.plan[self._next]:
            raise ValueError(f"the readers were given another phase next: {self.plan[self._next]}")
        self._next += 1
        self._start.wait(timeout=timeout)  # also waits for the processes' start-up, the first time
        deadline = time.monotonic() + phase.seconds + timeout
        reports: list[Report] = []
        while len(reports) < len(self._procs):
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in self._procs):
                raise RuntimeError(f"reader processes did not finish the phase {phase.title!r} ({phase.mode})")
            try:
                reports.append(self._out.get(timeout=0.25))
            except queue.Empty:
                tick()
        return reports

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
