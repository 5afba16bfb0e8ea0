"""Redis keyspace notifications as events a test can wait on: "this lock expired",
"the watchdog extended it", instead of sleeping through a TTL and hoping."""

from __future__ import annotations

import time
from collections import Counter

import redis
from redis.cluster import RedisCluster


class KeyEvents:
    """Subscribed to the keyspace channels of `keys` (generic and expiry events).

    The subscription is confirmed before the constructor returns, so no event that
    happens afterwards is missed.
    """

    FLAGS = "Kgx"  # keyspace channel; generic (del, expire, ...) and expired events
    TOUCH_EVERY = 0.01  # seconds between reads of a key awaited to expire

    def __init__(self, r: redis.Redis | RedisCluster, *keys: str, db: int = 0, flags: str = FLAGS) -> None:
        if isinstance(r, RedisCluster):  # notifications are local to the node that holds the key
            node = r.get_node_from_key(keys[0])
            r = redis.Redis(host=node.host, port=node.port)
        r.config_set("notify-keyspace-events", flags)  # "K$gx": string commands (set) too
        self._client = r
        self._prefix = f"__keyspace@{db}__:"
        self._pubsub = r.pubsub()
        self._pubsub.subscribe(*(self._prefix + k for k in keys))
        for _ in keys:
            confirmation = self._pubsub.get_message(timeout=5)
            assert confirmation is not None and confirmation["type"] == "subscribe", confirmation
        self.seen: Counter[tuple[str, str]] = Counter()

    def _take(self, timeout: float) -> bool:
        message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None:
            return False
        key = message["channel"].decode()[len(self._prefix):]
        self.seen[(key, message["data"].decode())] += 1
        return True

    def wait(self, key: str, event: str, timeout: float = 5.0, count: int = 1) -> bool:
        """True once `event` ("expired", "expire", "del", ...) has happened `count` times
        on `key`; False if the timeout passes first.

        Redis reports "expired" only when it finds the key past its TTL: its active cycle
        samples 20 volatile keys a round at hz 10, which a loaded server can run late (a wait
        of 5 s once timed out), while any command that touches the key expires it at once.
        So a wait for "expired" touches the key every 10 ms: the event still comes from the
        key's own TTL running out, never from a DEL."""
        deadline = time.monotonic() + timeout
        while self.seen[(key, event)] < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if event == "expired":
                self._client.exists(key)
                left = min(left, self.TOUCH_EVERY)
            self._take(left)
        return True

    def expire(self, key: str, timeout: float = 5.0) -> bool:
        """Let `key` expire now (PEXPIRE 1, asserted to find it) and wait for the event."""
        expired = self.count(key, "expired")
        assert self._client.pexpire(key, 1), f"{key} is not there to expire"
        return self.wait(key, "expired", timeout, count=expired + 1)

    def count(self, key: str, event: str) -> int:
        """How often `event` has happened on `key` so far (reads what has arrived)."""
        while self._take(0):
            pass
        return self.seen[(key, event)]

    def close(self) -> None:
        self._pubsub.close()
        self._client.config_set("notify-keyspace-events", "")
