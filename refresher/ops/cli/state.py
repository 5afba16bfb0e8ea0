"""What Redis holds for a loader: one call's state (`refresher inspect`) and the keys of all
its cached calls (`refresher keys`). Read-only: nothing here writes or asks for a refresh."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from redis.cluster import RedisCluster

from refresher.core.calls import Call
from refresher.ops.cli.common import redis_call
from refresher.io.connect import SyncClient
from refresher.core.protocol.layout import BACKOFF
from refresher.core.state import Nothing
from refresher.io.clock import now_ms
from refresher.api.loader import Loader
from refresher.core.policy import Verdict, Window, decide

STATES = {Verdict.FRESH: "fresh", Verdict.REFRESH: "in window", Verdict.STALE: "stale", Verdict.MISS: "missing"}
SCAN_COUNT = 1000


@dataclass(frozen=True)
class KeyState:
    """One call's key as a reader would see it now. Times in ms; None where there is nothing."""

    loader: str
    key: str
    state: str  # fresh / in window / stale / missing: the reader's verdict (policy.decide)
    why_missing: str | None  # not cached / invalidated / expired / unreadable
    version: int | None
    age_ms: int | None
    ttl_ms: int | None  # the TTL the value was written with
    ttl_left_ms: int | None  # negative once it has run out
    window_ms: int | None  # the loader's refresh window, the last part of the TTL (None: XFetch, which draws)
    stale_ms: int | None  # how long past its TTL it may still be served if a reload fails
    key_pttl_ms: int | None  # when Redis drops the key
    size_bytes: int | None  # the stored envelope: header and payload
    lock_pttl_ms: int | None  # a load or refresh holds the key's lock for this long yet
    pending: str | None  # "refresh": a refresh was asked for; "backoff": a load failed lately
    pending_pttl_ms: int | None


def read_state(loader: Loader[Any, Any], call: Call) -> KeyState:
    """One round trip (the four keys share a slot), then the reader's own decision. MGET,
    not GET: a key of another Redis type (somebody else's) reads as nothing, shown as
    such, rather than failing the command."""
    keys = call.keys
    (raw,), kind, key_pttl, lock_pttl, (pending,), pending_pttl = redis_call(
        loader, ("MGET", keys.value), ("TYPE", keys.value), ("PTTL", keys.value), ("PTTL", keys.lock),
        ("MGET", keys.pending), ("PTTL", keys.pending),
    )
    kind = kind.decode(errors="replace") if isinstance(kind, bytes) else str(kind)
    state, now = loader.state, now_ms()
    envelope = state.parse(raw, quiet=True)
    # For XFetch this is one draw, as a reader's own decision would be.
    verdict = decide(envelope, now, state.policy)
    why = None
    if envelope is not None and verdict is not Verdict.MISS and isinstance(state.decode(envelope, quiet=True), Nothing):
        verdict, why = Verdict.MISS, "unreadable"  # a reader counts it as corrupt and reloads
    elif verdict is Verdict.MISS and raw is None and kind != "none":
        why = f"unreadable: a Redis {kind}, not a string"  # a reader reloads it and writes over it
    elif verdict is Verdict.MISS:
        why = ("not cached" if raw is None else "unreadable" if envelope is None
               else "invalidated" if envelope.tombstone else "expired")
    shown = envelope if envelope is not None and not envelope.tombstone else None  # a tombstone has no age or TTL
    return KeyState(
        loader=loader.name,
        key=keys.value,
        state=STATES[verdict],
        why_missing=why,
        version=envelope.version if envelope is not None else None,
        age_ms=now - shown.written_ms if shown is not None else None,
        ttl_ms=shown.ttl_ms if shown is not None else None,
        ttl_left_ms=shown.expires_ms - now if shown is not None else None,
        window_ms=loader.settings.window_ms if isinstance(state.policy, Window) else None,
        stale_ms=shown.stale_ms if shown is not None else None,
        key_pttl_ms=key_pttl if key_pttl >= 0 else None,
        size_bytes=len(raw) if raw is not None else None,
        lock_pttl_ms=lock_pttl if lock_pttl >= 0 else None,
        pending=None if pending is None else "backoff" if pending == BACKOFF else "refresh",  # any other bytes too
        pending_pttl_ms=pending_pttl if pending is not None and pending_pttl >= 0 else None,
    )


PENDING = {None: "none", "refresh": "a refresh was asked for", "backoff": "backing off after a failed load"}


def describe(s: KeyState) -> list[tuple[str, str]]:
    """The state as label/text rows for a person."""
    rows = [("loader", s.loader), ("key", s.key), ("state", f"missing ({s.why_missing})" if s.why_missing else s.state)]
    if s.version is not None:
        rows.append(("version", str(s.version)))
    if s.age_ms is not None and s.ttl_ms is not None and s.ttl_left_ms is not None:
        left = f"{_secs(s.ttl_left_ms)} of {_secs(s.ttl_ms)}" if s.ttl_left_ms >= 0 else f"none, ran out {_secs(-s.ttl_left_ms)} ago"
        window = f"the last {_secs(s.window_ms)}" if s.window_ms is not None else "XFetch, drawn per read"
        rows += [("age", _secs(s.age_ms)), ("TTL left", f"{left} (refresh window: {window})"),
                 ("stale_ttl", _secs(s.stale_ms or 0))]
    if s.size_bytes is not None:
        rows += [("Redis TTL", _secs(s.key_pttl_ms) if s.key_pttl_ms is not None else "no expiry"),
                 ("size", f"{s.size_bytes} bytes")]
    rows += [("lock", f"held, {_secs(s.lock_pttl_ms)} left" if s.lock_pttl_ms is not None else "free"),
             ("pending", PENDING[s.pending] + (f", {_secs(s.pending_pttl_ms)} left" if s.pending_pttl_ms is not None else ""))]
    return rows


def _secs(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def key_pattern(loader: Loader[Any, Any]) -> str:
    """A SCAN MATCH for the value keys of every call of `loader`: `<namespace>:{<loader>:*}`.
    Locks and markers start `<namespace>:lock{` and `<namespace>:pending{` (keys.py); those
    0.1.0 left as `<value>:lock` do not end in the closing brace as a value key does
    (arguments holding braces are hashed). Glob characters in the namespace or name are escaped."""
    prefix = f"{loader.cache.namespace}:{{{loader.name}:"
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*}"


def scan(client: SyncClient, match: str) -> Iterator[bytes]:
    """Every key matching `match`, by SCAN (never KEYS, which blocks Redis); on a Redis
    Cluster, every master in turn, since each holds only its own slots."""
    if isinstance(client, RedisCluster):
        for node in client.get_primaries():  # type: ignore[no-untyped-call]  # redis-py leaves RedisCluster.get_primaries unannotated
            yield from client.scan_iter(match=match, count=SCAN_COUNT, target_nodes=node)
    else:
        yield from client.scan_iter(match=match, count=SCAN_COUNT)
