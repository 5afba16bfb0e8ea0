"""A loader's reads and writes, written once for asyncio: `await load_user.aget(1001)` and
the rest. scripts/unasync.py generates reads.py (`get`, `get_many`, `set`, `invalidate`,
`invalidate_all`, `entry`, on the sync driver) from this file, and `make test` fails when
that copy is stale. Each builds the call's keys and runs the core's steps with the driver;
the decisions live in refresher/core."""

from __future__ import annotations

import time
from typing import Any, Iterable, ParamSpec, TypeVar

from refresher.api.loader_base import DOWN, LoaderBase, awaited_only
from refresher.api.served import Served, describe
from refresher.core.miss import follow
from refresher.core.near import Ticket
from refresher.core.read import Then, after_get
from refresher.core.state import NOTHING, Nothing
from refresher.core.write import bump_epoch, invalidate, set_value
from refresher.io.clock import now_ms
from refresher.io.drivers.tasks import BLOCKING

P = ParamSpec("P")
R = TypeVar("R")


class AsyncReads(LoaderBase[P, R]):
    async def aget(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Serve from the cache; refresh ahead in the window; load coalesced on a miss.
        Awaited, a sync loader's origin call runs in a thread: the loop never blocks."""
        state, near_cache = self.state, self.near  # each looked up once: this runs on every hit
        if state.is_async and BLOCKING:
            raise awaited_only(self.name, "get")
        if len(args) == 1 and not kwargs and ((kind := type(args[0])) is int or kind is str) \
                and (remembered := self.call.recent.get(args)) is not None:
            call = remembered  # Calls' own first look, without a call of it: f(id) seen before
        else:
            call = self.call(args, kwargs)
        if near_cache is not None and self.tracker.sync() \
                and not isinstance(hit := near_cache.hit(call.keys.value, state, time.time() * 1000), Nothing):
            return hit
        driver = self.cache.aio()
        if self.breaker.open and (down := self._down(call)) is not NOTHING:
            return await driver.run(down.steps) if type(down) is Then else down  # type: ignore[return-value]  # R | Then: mypy does not narrow by `type(x) is`
        near = NOTHING if near_cache is None else self._near(call, wait=BLOCKING)
        if near is NOTHING:
            if driver.flights.running(call.keys.value):  # a miss of this key in flight here: join it, no GET
                steps = follow(state, call)
                joined = await driver.run(steps)
                if not isinstance(joined, Nothing):
                    return joined
            raw = await driver.get(call.keys.value)
            if isinstance(raw, Exception) and not isinstance(kept := self._kept(call), Nothing):
                return kept
            value = after_get(state, call, raw, now_ms())
        elif type(near) is Ticket:
            try:  # settled once every step ran: a fill may come after fetching epochs
                # A GET of its own: one in flight was sent before the ticket, which an
                # invalidation arriving in between never cancelled (tests/test_near_ticket.py).
                value = after_get(state, call, await driver.get(call.keys.value, alone=True), now_ms(), near)
                return await driver.run(value.steps) if type(value) is Then else value  # type: ignore[return-value]  # R | Then: mypy does not narrow by `type(x) is`
            finally:
                near.near.settle(near)
        else:
            value = near  # type: ignore[assignment]  # R | Then: mypy does not narrow by `type(x) is`
        return await driver.run(value.steps) if type(value) is Then else value  # type: ignore[return-value]  # R | Then: mypy does not narrow by `type(x) is`

    async def aget_many(self, items: Iterable[Any]) -> list[R]:
        """`load_user.get_many([1, 2, 3])`: many reads in one round trip (one MGET).

        Each item is the loader's argument, or a tuple of its positional arguments. Hits
        are served from the MGET (asking for refreshes as `get` would); each miss then
        takes the ordinary coalesced miss path.
        """
        if self.state.is_async and BLOCKING:
            raise awaited_only(self.name, "get_many")
        calls = self._calls(items)
        return await self.cache.aio().run(self._fetch_many(calls)) if calls else []

    async def aset(self, *args: Any, **kwargs: Any) -> None:
        """`load_user.set(1001, value)`: store a value you already have. Any load or
        refresh of that key in flight is refused when it tries to write."""
        call, value = self._set_call(args, kwargs)
        await self.cache.aio().run(set_value(self.state, call, value))

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the value; the next read loads it again. A load already in flight for
        this key is refused when it tries to write, so it cannot bring the old data back."""
        await self.cache.aio().run(invalidate(self.state, self.call(args, kwargs)))

    async def ainvalidate_all(self, hard: bool = True) -> None:
        """Every value of this loader, at once, in O(1). `hard=True`: none is served again
        (the next read of each key loads it, coalesced). `hard=False`: each stays servable
        but is due for a refresh, which the workers do as it is next read: no stampede."""
        await self.cache.aio().run(bump_epoch(self.state.epoch_key, hard))

    async def aentry(self, *args: P.args, **kwargs: P.kwargs) -> Served[R]:
        """`get`, with the value's state, age and version (refresher.Served), for apps
        that show how fresh what they display is. Costs a GET more than `get`."""
        value = await self.aget(*args, **kwargs)
        call = self.call(args, kwargs)
        # its own GET: one shared with another read may have been sent before the value came
        raw = DOWN if self.breaker.of(call.keys.value).open else await self.cache.aio().get(call.keys.value, alone=True)
        return describe(self.state, self.near, call.keys.value, value, raw)
