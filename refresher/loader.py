"""The loader handle (`load_user.get(1001)`) and the read path behind it.

A hit is one GET. A hit inside the refresh window also asks a worker for a refresh, once
per key however many readers see it: a per-process memo, then a SET NX pending marker. A miss loads inline:
one caller per process (singleflight), one process per key (an owned lock), and the
other processes sleep on the key's signal channel until the value lands.
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, ParamSpec, TypeVar, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.envelope import NOTHING_READ, CorruptEnvelope, Envelope, new_version
from refresher.errors import CacheUnavailable, LoadFailed
from refresher.calls import Call, Calls
from refresher.keys import Keys, check_name
from refresher.lock import Lock
from refresher.options import Settings
from refresher.policy import Verdict, decide
from refresher.store import FAILED, FILLED, RETRY, Claim, Commit

if TYPE_CHECKING:
    from refresher.client import Refresher

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("refresher")

BACKOFF = b"backoff"  # pending-marker value after a failed refresh: no new attempt until it expires
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
SERVABLE = (Verdict.FRESH, Verdict.REFRESH)
ASKED_SIZE = 4096


class _Nothing:
    """No usable value: distinct from a cached None."""


NOTHING = _Nothing()


def now_ms() -> int:
    return int(time.time() * 1000)


class _Retry(Exception):
    """The lock holder went away without a value: contend for the lock again."""


class Loader(Generic[P, R]):
    def __init__(self, cache: Refresher, fn: Callable[P, R], name: str, settings: Settings) -> None:
        self.cache = cache
        self.fn = fn
        self.name = check_name(name)
        self.settings = settings
        self.policy = settings.policy
        self.codec = settings.codec
        self.ttl_ms = settings.ttl_ms
        self.stale_ms = settings.stale_ms
        self.lock_ttl_ms = settings.lock_ttl_ms
        self.max_load_ms = settings.max_load_ms
        self.error_backoff_ms = settings.error_backoff_ms
        self.call = Calls(fn, cache.namespace, self.name)
        # Refreshes this process has already asked for: value key -> (the version of the
        # value it was asked for, until when). Saves in-window readers a claim each.
        self._asked: dict[str, tuple[int, float]] = {}
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<refresher loader {self.name} ttl={self.ttl_ms / 1000:g}s>"

    # -- the public handle -------------------------------------------------------

    def get(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Serve from the cache; refresh ahead in the window; load coalesced on a miss."""
        call = self.call(args, kwargs)
        if not self.cache.publisher.started:
            self.cache.publisher.start()
        try:
            raw = cast(bytes | None, self.cache.redis.get(call.keys.value))
        except _UNAVAILABLE as exc:
            return self._cache_down(call, exc)
        value = self._hit(call, raw, now_ms())
        if isinstance(value, _Nothing):
            return self._miss(call, raw)
        self.cache.stats.incr("hit")
        return value

    def _hit(self, call: Call, raw: bytes | None, now: int) -> R | _Nothing:
        """The value, if what was read can be served as it is (asking for a refresh when
        it is in its window); NOTHING sends the caller down the miss path."""
        envelope = self._parse(raw)
        if envelope is None:
            return NOTHING
        verdict = decide(envelope, now, self.policy)
        if verdict not in SERVABLE:
            return NOTHING
        value = self._value_of(envelope)
        if verdict is Verdict.REFRESH and not isinstance(value, _Nothing):
            self._ask_for_refresh(call, envelope)
        return value

    def _miss(self, call: Call, raw: bytes | None) -> R:
        envelope = self._parse(raw, quiet=True)
        try:
            stale = envelope if envelope is not None and decide(envelope, now_ms(), self.policy) is Verdict.STALE else None
            if stale is not None and self._backing_off(call) and not isinstance(value := self._value_of(stale), _Nothing):
                self.cache.stats.incr("stale_served")  # the origin failed lately: don't try again yet
                return value
            return self._load(call, stale)
        except _UNAVAILABLE as exc:
            return self._cache_down(call, exc)

    def get_many(self, items: Iterable[Any]) -> list[R]:
        """`load_user.get_many([1, 2, 3])`: many reads in one round trip (one MGET).

        Each item is the loader's argument, or a tuple of its positional arguments.
        Hits are served from the MGET (asking for refreshes as `get` would); each miss
        then takes the ordinary coalesced miss path.
        """
        calls = [self.call(item if isinstance(item, tuple) else (item,), {}) for item in items]
        if not calls:
            return []
        if not self.cache.publisher.started:
            self.cache.publisher.start()
        try:
            found = cast(list[bytes | None], self.cache.redis.mget([c.keys.value for c in calls]))
        except _UNAVAILABLE as exc:
            return [self._cache_down(call, exc) for call in calls]
        now = now_ms()
        values: list[R] = []
        hits = 0
        for call, raw in zip(calls, found):
            value = self._hit(call, raw, now)
            if isinstance(value, _Nothing):
                value = self._miss(call, raw)
            else:
                hits += 1
            values.append(value)
        self.cache.stats.incr("hit", hits)  # once per batch, not once per key
        return values

    def set(self, *args: Any, **kwargs: Any) -> None:
        """`load_user.set(1001, value)`: store a value you already have. Any load or
        refresh of that key in flight is refused when it tries to write."""
        if not args:
            raise TypeError(f"loader {self.name!r}: set() needs the arguments and then the value")
        call = self.call(args[:-1], kwargs)
        envelope = self._envelope(self._encode(args[-1]), delta_ms=0)
        # Kept in Redis (unservable once past its TTL) for as long as a load that began
        # before it can still try to commit, so that load finds this version and is refused.
        self._replace(call, envelope, max(envelope.ttl_ms + self.stale_ms, self.max_load_ms + self.lock_ttl_ms))

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Drop the value; the next read loads it again. A load already in flight for
        this key is refused when it tries to write, so it cannot bring the old data back."""
        call = self.call(args, kwargs)
        tombstone = Envelope(new_version(), now_ms(), 0, 0, 0, b"", tombstone=True)
        # The tombstone outlives any lock taken before it, so its version is what every
        # writer that started earlier is checked against.
        self._replace(call, tombstone, self.max_load_ms + self.lock_ttl_ms)

    def _replace(self, call: Call, envelope: Envelope, px: int) -> None:
        """A write the caller must know failed: a cache outage raises CacheUnavailable,
        the one exception type reads raise too, even with fail_open."""
        try:
            self.cache.store.replace(call.keys, envelope, px)
        except _UNAVAILABLE as exc:
            self.cache.stats.incr("cache_unavailable")
            raise CacheUnavailable(f"cache Redis unavailable while writing {call.keys.value}: {exc}") from exc

    def keys(self, *args: P.args, **kwargs: P.kwargs) -> Keys:
        return self.call(args, kwargs).keys

    # -- arguments and values ------------------------------------------------------

    def _encode(self, value: Any) -> bytes:
        try:
            return self.codec.encode(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"loader {self.name!r}: the value cannot be encoded: {exc}") from None

    def _envelope(self, payload: bytes, delta_ms: int) -> Envelope:
        ttl_ms = self.ttl_ms
        if self.settings.ttl_jitter:
            ttl_ms -= int(ttl_ms * self.settings.ttl_jitter * random.random())
        return Envelope(new_version(), now_ms(), ttl_ms, self.stale_ms, max(0, delta_ms), payload)

    def _parse(self, raw: bytes | None, quiet: bool = False) -> Envelope | None:
        if raw is None:
            return None
        try:
            return Envelope.from_bytes(raw)
        except CorruptEnvelope:
            if not quiet:
                self._count_corrupt()
            return None

    def _value_of(self, envelope: Envelope, quiet: bool = False) -> R | _Nothing:
        """The decoded payload, or NOTHING if the codec cannot read it."""
        try:
            return cast(R, self.codec.decode(envelope.payload))
        except Exception:
            if not quiet:
                self._count_corrupt()
            return NOTHING

    def _servable(self, raw: bytes | None) -> R | _Nothing:
        """A second look (after taking the lock, or while waiting): the value if some
        other process has just written a usable one, else NOTHING. Not counted again."""
        envelope = self._parse(raw, quiet=True)
        if envelope is None or decide(envelope, now_ms(), self.policy) not in SERVABLE:
            return NOTHING
        return self._value_of(envelope, quiet=True)

    def _count_corrupt(self) -> None:
        self.cache.stats.incr("corrupt")
        log.warning("refresher: unreadable data for loader %s treated as a miss", self.name)

    # -- refresh-ahead ---------------------------------------------------------------

    def _ask_for_refresh(self, call: Call, envelope: Envelope) -> None:
        """Publish one refresh task per key per marker lifetime, from whichever reader
        claims the marker first. Never raises: the caller has a value to serve."""
        key = call.keys.value
        asked = self._asked.get(key)
        if asked is not None and asked[0] == envelope.version and asked[1] > time.monotonic():
            self.cache.stats.incr("refresh_deduplicated")
            return
        publisher = self.cache.publisher
        if not publisher.available():
            self.cache.stats.incr("publish_skipped")
            return
        # The marker outlives a slow publish; once a worker takes the key's lock it
        # re-arms the marker to the lock's TTL (see refresh.py).
        marker = Lock(self.cache.redis, call.keys.pending, self.lock_ttl_ms + int(publisher.timeout * 1000))
        try:
            claim = self.cache.store.claim_refresh(call.keys, envelope.version, marker.token, marker.ttl_ms)
        except RedisError as exc:
            log.warning("refresher: could not mark %s for refresh: %s", key, exc)
            return
        if len(self._asked) >= ASKED_SIZE:
            self._asked.clear()
        # Remembered for lock_ttl, never longer than the marker can live once a worker
        # holds it: after a crash the next read here asks again within lock_ttl.
        self._asked[key] = (envelope.version, time.monotonic() + self.lock_ttl_ms / 1000)
        if claim is not Claim.CLAIMED:
            self.cache.stats.incr("refresh_deduplicated")
            return

        def unclaim() -> None:
            self._asked.pop(key, None)
            marker.release()

        expires_s = max(1.0, (envelope.expires_ms + envelope.stale_ms - now_ms()) / 1000)
        if not publisher.submit(self.name, call.args, call.kwargs, envelope.version, expires_s, on_failure=unclaim):
            unclaim()

    def _backing_off(self, call: Call) -> bool:
        """A failed load set the key's back-off: serve what we have, don't try again yet."""
        return self.cache.redis.get(call.keys.pending) == BACKOFF

    # -- the miss path ---------------------------------------------------------------

    def _load(self, call: Call, stale: Envelope | None) -> R:
        led = False

        def lead() -> R:
            nonlocal led
            led = True
            return self._fill(call, stale)

        value, _ = self.cache.flights.do(call.keys.value, lead)
        self.cache.stats.incr("miss" if led else "coalesced")
        return value  # type: ignore[no-any-return]

    def _fill(self, call: Call, stale: Envelope | None) -> R:
        while True:
            lock = Lock(self.cache.redis, call.keys.lock, self.lock_ttl_ms)
            try:
                if lock.acquire():
                    return self._fill_holding(call, lock, stale)
                return self._await_holder(call)
            except _Retry:
                continue
            except Exception:
                if stale is None:
                    raise
                log.exception("refresher: reloading %s failed; serving the stale value", call.keys.value)
                return self._serve_stale(stale)

    def _fill_holding(self, call: Call, lock: Lock, stale: Envelope | None) -> R:
        """We own the lock. Since our read, somebody may have written the value, or
        failed to load it (the key is then backing off: serve the stale value, if any,
        rather than be a second attempt on a failing origin)."""
        raw, pending = self.cache.store.read(call.keys)
        if not isinstance(value := self._servable(raw), _Nothing):
            lock.release()
            return value
        if stale is not None and pending == BACKOFF:
            lock.release()
            return self._serve_stale(stale)
        envelope = self._parse(raw, quiet=True)
        seen = envelope.version if envelope is not None else NOTHING_READ
        value, _ = self.load_and_commit(call, lock, seen, started_ms=now_ms(), back_off=stale is not None)
        return value

    def load_and_commit(
        self, call: Call, lock: Lock, seen: int, started_ms: int, *, back_off: bool
    ) -> tuple[R, Commit | str]:
        """Run the loader under `lock` (kept alive by a bounded watchdog) and write the
        result if we still hold the lock and the value is still the version `seen`. Waiters are always told how it
        went; the loader's own exception is re-raised to our caller, after the key's
        back-off is set if `back_off` (there is an old value to serve meanwhile)."""
        signal = call.keys.signal
        try:
            with lock.kept_alive(self.max_load_ms):
                value = self.fn(*call.args, **call.kwargs)
            payload = self._encode(value)
        except Exception as exc:
            self.cache.stats.incr("load_failed")
            if back_off:
                # While we still hold the lock: released first, another process could
                # take the lock and call the failing origin again at once.
                self.back_off(call)
            lock.release(signal, FAILED + json.dumps({"type": type(exc).__name__, "message": str(exc)}).encode())
            raise
        except BaseException:
            lock.release(signal, RETRY)
            raise
        self.cache.stats.incr("load")
        envelope = self._envelope(payload, now_ms() - started_ms)
        if len(payload) > self.settings.max_value_bytes:
            log.warning(
                "refresher: %s is %d bytes, over max_value_bytes=%d; served but not cached",
                call.keys.value, len(payload), self.settings.max_value_bytes,
            )
            self.cache.stats.incr("too_large")
            lock.release(signal, FILLED + envelope.to_bytes())
            return value, "too_large"
        try:
            outcome = self.cache.store.commit(call.keys, lock.token, seen, envelope, envelope.ttl_ms + self.stale_ms)
        except RedisError as exc:
            log.warning("refresher: loaded %s but could not store it: %s", call.keys.value, exc)
            return value, "not_stored"
        if outcome is not Commit.WRITTEN:
            self.cache.stats.incr(f"commit_{outcome.name.lower()}")
            log.info("refresher: dropped the load of %s: %s", call.keys.value, outcome.name.lower())
        return value, outcome

    def _serve_stale(self, stale: Envelope) -> R:
        self.cache.stats.incr("stale_served")
        return cast(R, self.codec.decode(stale.payload))

    def _await_holder(self, call: Call) -> R:
        """Sleep on the key's signal channel until the lock holder writes or gives up.

        Subscribing before looking again closes the race with a holder that finishes in
        between. If the holder dies, its lock expires and we wake to take it over.
        """
        self.cache.stats.incr("waited")
        with self.cache.redis.pubsub() as pubsub:  # type: ignore[no-untyped-call]
            pubsub.subscribe(call.keys.signal)
            pubsub.get_message(timeout=self.cache.socket_timeout)  # the subscribe confirmation
            with self.cache.redis.pipeline(transaction=False) as pipe:
                pipe.get(call.keys.value)
                pipe.pttl(call.keys.lock)
                raw, lock_pttl = pipe.execute()
            if not isinstance(value := self._servable(raw), _Nothing):
                return value
            if lock_pttl <= 0:
                raise _Retry
            deadline = time.monotonic() + lock_pttl / 1000
            while (left := deadline - time.monotonic()) > 0:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None:
                    return self._heard(message["data"])
        raise _Retry

    def _heard(self, data: bytes) -> R:
        kind, body = data[:1], data[1:]
        if kind == FILLED:
            envelope = self._parse(body, quiet=True)
            if envelope is not None and not envelope.tombstone:
                if not isinstance(value := self._value_of(envelope, quiet=True), _Nothing):
                    return value
        if kind == FAILED:
            error = json.loads(body)
            raise LoadFailed(self.name, error["type"], error["message"])
        raise _Retry

    def back_off(self, call: Call) -> None:
        """After a failed load, hold off further attempts on this key fleet-wide: readers
        serve what they have and ask for no refresh, workers drop refresh tasks."""
        try:
            self.cache.redis.set(call.keys.pending, BACKOFF, px=self.error_backoff_ms)
        except RedisError as exc:
            log.warning("refresher: could not record the back-off for %s: %s", call.keys.value, exc)

    def _cache_down(self, call: Call, exc: Exception) -> R:
        self.cache.stats.incr("cache_unavailable")
        if not self.settings.fail_open:
            raise CacheUnavailable(f"cache Redis unavailable while reading {call.keys.value}: {exc}") from exc
        log.warning("refresher: cache Redis unavailable (%s); calling %s directly", exc, self.name)
        value, _ = self.cache.flights.do(call.keys.value, lambda: self.fn(*call.args, **call.kwargs))
        return value  # type: ignore[no-any-return]
