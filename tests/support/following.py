"""Reader processes for tests/test_follow.py: in each, one thread (or task) misses a key
first; the others read it only once that miss is in flight in their process, and the
process says so once all of them have joined it. The key's loader holds its load until
the test opens the gate, so every read of every process meets the one load."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
import traceback
from typing import Any, Callable

from refresher import Refresher
from tests.support.loaders import control, count_call

CTX = mp.get_context("spawn")
GATE, JOINED = "test:follow:gate", "test:follow:joined"
ARGUMENT = 7

cache = Refresher()  # REFRESHER_REDIS_URL, set by tests/conftest.py


@cache.loader(ttl=60, lock_ttl=5, name="tests.follow.held")
def held(n: int) -> dict[str, int]:
    count_call("follow_held")
    popped(GATE)
    return {"n": n}


def popped(key: str) -> None:
    """BLPOP `key`, at most 60 s, a second at a time (within the control client's socket timeout)."""
    deadline = time.monotonic() + 60
    while control.blpop([key], timeout=1) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing was pushed to {key}")


def _until(done: Callable[[], bool]) -> None:
    """No event tells when a read has reached the flight: its count is polled (at most 20 s)."""
    deadline = time.monotonic() + 20
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the readers never joined the flight")
        time.sleep(0.002)


def _joined(key: str, readers: int) -> bool:
    flight = cache.sync.flights._flights.get(key)
    return flight is not None and flight.waiters >= readers


def _in_threads(followers: int, out: list[Any]) -> None:
    key = held.keys(ARGUMENT).value

    def read() -> None:
        try:
            out.append(held.get(ARGUMENT))
        except Exception:
            out.append(traceback.format_exc(limit=3))

    first = threading.Thread(target=read)
    first.start()
    _until(lambda: cache.sync.flights.running(key))
    others = [threading.Thread(target=read) for _ in range(followers)]
    for thread in others:
        thread.start()
    _until(lambda: _joined(key, followers))
    control.rpush(JOINED, 1)
    for thread in [first, *others]:
        thread.join()


async def _in_tasks(followers: int, out: list[Any]) -> None:
    key = held.keys(ARGUMENT).value

    async def read() -> None:
        try:
            out.append(await held.aget(ARGUMENT))
        except Exception:
            out.append(traceback.format_exc(limit=3))

    first = asyncio.create_task(read())
    while not cache.sync.flights.running(key):
        await asyncio.sleep(0.002)
    others = [asyncio.create_task(read()) for _ in range(followers)]
    while not _joined(key, followers):
        await asyncio.sleep(0.002)
    await asyncio.to_thread(control.rpush, JOINED, 1)
    await asyncio.gather(first, *others)


def _reader(mode: str, followers: int, results: Any) -> None:
    out: list[Any] = []
    try:
        if mode == "async":
            asyncio.run(_in_tasks(followers, out))
        else:
            _in_threads(followers, out)
    except Exception:
        out.append(traceback.format_exc(limit=3))
    results.put((out, cache.stats.snapshot()))


def run_followers(mode: str, processes: int, followers: int,
                  when_joined: Callable[[], object]) -> list[tuple[list[Any], dict[str, int]]]:
    """Each process's values (or error texts) and counters. `when_joined` runs once every
    process's readers wait on its flight, before the gate opens."""
    results = CTX.Queue()
    procs = [CTX.Process(target=_reader, args=(mode, followers, results)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        for _ in range(processes):
            popped(JOINED)
        when_joined()
        control.rpush(GATE, 1)
        return [results.get(timeout=60) for _ in range(processes)]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
