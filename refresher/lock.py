"""An owned Redis lock: a TTL, a random token, released and extended only by its owner.

Each Lua script sits beside the method that runs it. redis-py's Script runs EVALSHA and
reloads the script on NOSCRIPT, so a `SCRIPT FLUSH` costs one extra round trip.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

from redis import Redis
from redis.commands.core import Script

TOKEN_BYTES = 16


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


class Lock:
    """One attempt at owning `key`. Never released by anybody but the owner."""

    def __init__(self, redis: Redis, key: str, ttl_ms: int, companions: tuple[str, ...] = ()) -> None:
        self.redis = redis
        self.key = key
        self.companions = companions  # keys whose TTL follows the lock's while we own it
        self.ttl_ms = ttl_ms
        self.token = new_token()
        self._release, self._extend = _scripts(redis)

    def acquire(self) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    RELEASE = """
    if redis.call('GET', KEYS[1]) == ARGV[1] then
        redis.call('DEL', KEYS[1])
        if ARGV[2] then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
        return 1
    end
    return 0
    """

    def release(self, channel: str | None = None, message: bytes = b"") -> bool:
        """Compare-and-delete; if released, optionally tell the waiters on `channel`."""
        args: list[str | bytes] = [self.token]
        if channel is not None:
            args += [channel, message]
        return bool(self._release(keys=[self.key], args=args))

    EXTEND = """
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
    for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
    return 1
    """

    def extend(self) -> bool:
        """Push the lock's expiry (and its companions') one TTL ahead, if we still own it."""
        return bool(self._extend(keys=[self.key, *self.companions], args=[self.token, self.ttl_ms]))

    @contextmanager
    def kept_alive(self, max_hold_ms: int) -> Iterator[None]:
        """Extend the lock every third of its TTL while the body runs.

        The watchdog stops when the body ends, when an extension finds the lock owned by
        someone else, or once the lock has been held for `max_hold_ms`: a hung loader
        cannot keep a key locked forever.
        """
        stop = threading.Event()
        watchdog = threading.Thread(
            target=self._watch, args=(stop, max_hold_ms), name=f"lock-watchdog:{self.key}", daemon=True
        )
        watchdog.start()
        try:
            yield
        finally:
            stop.set()
            watchdog.join()

    def _watch(self, stop: threading.Event, max_hold_ms: int) -> None:
        interval = self.ttl_ms / 3000
        extensions = max(0, (max_hold_ms - self.ttl_ms) * 3 // self.ttl_ms)
        for _ in range(extensions):
            if stop.wait(interval):
                return
            try:
                if not self.extend():
                    return
            except Exception:  # a blip must not kill the watchdog's caller; the TTL still bounds the lock
                return


_registered: weakref.WeakKeyDictionary[Redis, tuple[Script, Script]] = weakref.WeakKeyDictionary()


def _scripts(redis: Redis) -> tuple[Script, Script]:
    """The release and extend scripts, registered once per client rather than per lock."""
    scripts = _registered.get(redis)
    if scripts is None:
        scripts = _registered[redis] = (redis.register_script(Lock.RELEASE), redis.register_script(Lock.EXTEND))
    return scripts
