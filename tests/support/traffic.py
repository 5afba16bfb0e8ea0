"""Writes, invalidations and reads of a few keys from threads, with counters that only go up,
so a test can tell an old value landing over a newer one from a write that was lost.

The origin (a plain Redis) holds each key's counter; one writer thread bumps it and then
`set`s that value for the keys it writes (the origin first, as an app writes its database
before its cache), so every load and refresh also reads a counter no lower than any value
written before it began. Each reader thread records what it read in its own order: a
counter that goes back in one thread's record is a value older than one already served.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any, Callable

import redis

from refresher import Loader


def origin_key(n: int) -> str:
    return f"traffic:origin:{n}"


def counter_at(origin: redis.Redis, n: int) -> int:
    return int(origin.get(origin_key(n)) or 0)


class Traffic:
    def __init__(self, load: Loader[..., Any], origin: redis.Redis, written: list[int], loaded: list[int],
                 readers: int = 2, write_every: float = 0.005) -> None:
        """`written` keys are bumped and `set`; `loaded` keys are only bumped at the
        origin, so they change in the cache only through loads and refreshes."""
        self.load, self.origin = load, origin
        self.written, self.loaded = written, loaded
        self.write_every = write_every
        self.acked: dict[int, list[tuple[float, int]]] = {}  # (monotonic time `set` returned, counter)
        self.seen: list[dict[int, list[tuple[float, int]]]] = [{} for _ in range(readers)]  # (monotonic start, counter)
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write), threading.Thread(target=self._invalidate)]
        self._threads += [threading.Thread(target=self._read, args=(seen,)) for seen in self.seen]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _attempt(self, kind: str, op: Callable[[], Any]) -> tuple[bool, Any]:
        try:
            return True, op()
        except Exception as exc:  # while a failover lasts: counted by type, for the test to judge
            self.errors[f"{kind}: {type(exc).__module__}.{type(exc).__name__}"] += 1
            return False, None

    def _write(self) -> None:
        keys = self.written + self.loaded
        while not self._stop.wait(self.write_every):  # pacing the simulated traffic
            n = random.choice(keys)
            counter = int(self.origin.incr(origin_key(n)))
            if n in self.written and self._attempt("set", lambda: self.load.set(n, {"n": n, "counter": counter}))[0]:
                self.acked.setdefault(n, []).append((time.monotonic(), counter))

    def _invalidate(self) -> None:
        while not self._stop.wait(0.05):
            n = random.choice(self.written)
            self._attempt("invalidate", lambda: self.load.invalidate(n))

    def _read(self, seen: dict[int, list[tuple[float, int]]]) -> None:
        keys = self.written + self.loaded
        while not self._stop.wait(0.002):
            for n in keys:
                started = time.monotonic()
                ok, value = self._attempt("get", lambda: self.load.get(n))
                if ok:
                    seen.setdefault(n, []).append((started, value["counter"]))


def backward_steps(record: list[tuple[float, int]]) -> list[tuple[float, int, int]]:
    """Where a reader's record of one key went back: (when the read began, counter before, counter read)."""
    return [(t, before, after) for (_, before), (t, after) in zip(record, record[1:]) if after < before]
