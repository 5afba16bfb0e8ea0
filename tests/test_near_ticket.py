"""A near-cache fill comes from a GET sent after its ticket was taken: the ticket is what
an invalidation cancels, so bytes read before it may be older than a write whose
invalidation the ticket never saw, and kept they would be served until the key's next write."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis

from refresher import Refresher

pytestmark = pytest.mark.standalone_only


def gets(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def test_a_ticket_is_not_filled_by_a_get_another_read_sent_before_it(redis_url: str) -> None:
    """On one loop, reads of a key share the GET in flight. R0 reads while another read
    holds the key's ticket (so R0 fills nothing); once its GET has been answered by the
    server, the key is `set` and the invalidation applied; then R1 takes a new ticket and
    reads while R0's reply is still unread. R1 must not fill its ticket from that reply."""
    cache = Refresher(redis_url, queue="ticket-" + uuid.uuid4().hex[:8], near_cache=100)
    r = redis.Redis.from_url(redis_url)
    try:
        assert cache.near is not None and cache.near.tracker.wait_live(5)

        @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
        def load(n: int) -> str:
            return "loaded"

        assert load.get(1) == "loaded"
        key = load.keys(1).value
        cache.near.invalidate([key.encode()])  # no copy: the next reads go to Redis

        async def main() -> tuple[str, str, str]:
            assert await load.aget(2) == "loaded"  # this loop's connection made
            other, mine = cache.near.expect(key, load.state.policy)  # a read on its way elsewhere
            assert mine
            before = gets(r)
            r0 = asyncio.create_task(load.aget(1))
            deadline = time.monotonic() + 5
            while gets(r) == before:  # between two looks the loop is held: R0's reply stays unread
                assert time.monotonic() < deadline, "R0's GET never reached the server"
                await asyncio.sleep(0)  # R0 on its way to sending its GET
            load.set(1, "set")
            assert cache.near.tracker.sync()  # the write's invalidation applied
            cache.near.settle(other)
            r1 = asyncio.create_task(load.aget(1))
            first, second = await r0, await r1
            return first, second, await load.aget(1)

        first, _, after = asyncio.run(main())
        assert first == "loaded"  # R0's read began before the write
        assert after == "set"  # what the near cache serves once every read is over
    finally:
        cache.close()
        r.close()
