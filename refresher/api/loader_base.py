"""What a loader handle's reads and writes share, sync and async alike: its keys, its
state, the near cache's part of a read and the breaker's. The reads themselves are in
areads.py (written once, for asyncio) and reads.py (generated from it); loader.py puts
them together as `Loader`."""

from __future__ import annotations

import time
from typing import Any, Callable, Generic, Iterable, ParamSpec, TypeVar

from refresher.api.cache import Cache
from refresher.core.calls import CACHE_SIZE, Call, Calls
from refresher.core.failures import Unreachable, cache_down
from refresher.core.ops import Steps
from refresher.core.read import Then, fetch_many, read_near
from refresher.core.state import NOTHING, Nothing, LoaderState
from refresher.io.clock import now_ms
from refresher.io.drivers import loop
from refresher.core.keys import Keys, check_name
from refresher.core.near import Entry, Ticket
from refresher.core.options import Settings

DOWN = Unreachable("the cache Redis is known unreachable")  # what entry() does not wait to find
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def awaited_only(name: str, method: str) -> TypeError:
    """What a sync read of an `async def` loader raises (its value needs an event loop)."""
    return TypeError(f"loader {name!r} is `async def`: read it with `await loader.a{method}(...)`")


class LoaderBase(Generic[P, R]):
    def __init__(self, cache: Cache, fn: Callable[P, R], name: str, settings: Settings) -> None:
        self.cache = cache
        self.fn = fn
        self.name = check_name(name)
        self.settings = settings
        self.near = cache.near if settings.near else None
        self.breaker, self.tracker = cache.breaker, cache.tracker  # the tracker: synced before near lookups
        # As many calls remembered as the near cache holds copies: past that, every near
        # hit would build its keys again (about 1.3 µs, most of a near hit).
        remember = CACHE_SIZE if self.near is None else max(CACHE_SIZE, self.near.max_entries)
        self.call = Calls(fn, cache.namespace, self.name, settings.version, remember)
        self.state: LoaderState[R] = LoaderState(self.name, fn, settings, self.call, cache.stats, cache.epochs)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<refresher loader {self.name} ttl={self.settings.ttl_ms / 1000:g}s>"

    def keys(self, *args: P.args, **kwargs: P.kwargs) -> Keys:
        return self.call(args, kwargs).keys

    def run_steps(self, steps: Steps[T]) -> T:
        """Run core steps to the end from sync code, as a worker does: `async def`
        loaders on this process's event loop thread, the others in this thread."""
        if not self.state.is_async:
            return self.cache.sync.run(steps)
        return loop.run(lambda: self.cache.aio().run(steps))

    def _down(self, call: Call) -> R | Then | Nothing:
        """The cache Redis is known to be unreachable: a near copy kept from before the
        outage (stale_if_down), else at once what a read that failed does (fail_open's
        loader, or CacheUnavailable); NOTHING for the one read per cool-down that goes to
        Redis to find out whether it answers again. On a Cluster: the key's master's, or its epoch key's."""
        if not (breaker := self.breaker.of(call.keys.value, self.state.epoch_key)).open:
            return NOTHING
        if not isinstance(kept := self._kept(call), Nothing):
            return kept
        if breaker.probe():
            return NOTHING
        gone = Unreachable(f"not answering for {breaker.age():.1f} s; not waiting on it")
        return Then(cache_down(self.state, call, gone))

    def _kept(self, call: Call) -> R | Nothing:
        """A near copy kept from before an outage, while stale_if_down allows."""
        if self.near is None:
            return NOTHING
        state: LoaderState[R] = self.state
        return self.near.kept(call.keys.value, state, time.monotonic())

    def _near(self, call: Call, wait: bool) -> R | Then | Ticket | Nothing:
        """What the near cache can serve (a value, or steps that ask for its refresh
        first), else the ticket this read from Redis fills, or NOTHING (off, or another
        read of the key is on its way). With `wait`, a thread waits for that other read,
        up to the socket timeout, and looks again: one GET per key per process refills it.
        For the reads that `near.hit` (tried first) did not serve."""
        near, state = self.near, self.state
        assert near is not None
        key = call.keys.value
        entry = near.lookup(key) if self.tracker.sync() else None  # invalidations received so far applied first
        if entry is not None and (value := read_near(state, call, entry.envelope, entry.served(), now_ms())) is not None:
            return value
        found, mine = near.expect(key, state.policy)
        if (type(found) is Ticket and not mine and wait and found.done.wait(self.cache.socket_timeout)) \
                or type(found) is Entry:
            found = near.lookup(key) if self.tracker.sync() else None  # what the other read kept, invalidations applied
        if type(found) is Entry:
            value = read_near(state, call, found.envelope, found.served(), now_ms())
            return NOTHING if value is None else value
        return found if mine else NOTHING  # type: ignore[return-value]  # R | Then: mypy does not narrow by `type(x) is`

    def _fetch_many(self, calls: list[Call]) -> Steps[list[R]]:
        """The batch's steps, with what the near cache or an open breaker answers left out of the MGET."""
        if self.near is None and not self.breaker.open:
            return (yield from fetch_many(self.state, calls))
        served: dict[int, Any] = {}
        tickets: dict[int, Ticket] = {}
        for i, call in enumerate(calls):
            found: R | Then | Ticket | Nothing = NOTHING
            if self.near is not None and self.tracker.sync():
                found = self.near.hit(call.keys.value, self.state, time.time() * 1000)
            if found is NOTHING and self.breaker.open:
                found = self._down(call)
            if found is NOTHING and self.near is not None:
                found = self._near(call, wait=False)
            if type(found) is Ticket:
                tickets[i] = found
            elif found is not NOTHING:
                served[i] = found
        try:
            return (yield from fetch_many(self.state, calls, served, tickets))  # type: ignore[arg-type]  # R | Then: mypy does not narrow by `type(x) is`
        finally:
            for ticket in tickets.values():
                ticket.near.settle(ticket)

    def _calls(self, items: Iterable[Any]) -> list[Call]:
        return [self.call(item if isinstance(item, tuple) else (item,), {}) for item in items]

    def _set_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Call, Any]:
        if not args:
            raise TypeError(f"loader {self.name!r}: set() needs the arguments and then the value")
        return self.call(args[:-1], kwargs), args[-1]
