"""Server-assisted invalidation: the near cache's one source of truth about writes.

One connection per Redis master runs `CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX ...`
for the epoch keys (epochs.py) and, with a near cache, the values (`<ns>:{`), listening on
`__redis__:invalidate` (tracking_link.py): the server names every such key written to this
process. Readers apply what has arrived on the read itself (`sync`: one poll when nothing
has), so a copy an invalidation already received made stale is never served. A thread pings
each master: a lost link or a frozen master marks the tracker down (near cache bypassed,
epochs fetched on every read) until every master is tracked again. In an outage (frozen or
unreachable, not refusing) copies are kept for stale_if_down and the breaker is held open,
so reads answer at once; the reconnect drops every kept copy before tracking is back on.
Started by a near cache's first read, or by epoch fetches that pay for it (tracking_start.py).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import weakref
import time
from typing import Callable

from redis.connection import ConnectionPool
from redis.exceptions import RedisError

from refresher.io.breaker import Breaker, Breakers
from refresher.io.tracking_link import (CLIENT_NAME, DEAD_AFTER, FROZEN, OUTAGE, PING_EVERY, Link, answer_by, arrivals,
                                        close_answered, connect, horizon, names)
from refresher.io.tracking_start import Demand
from refresher.io.tracking_thread import AT_EXIT, RETRY_MOST, backoff, not_on, turns

__all__ = ["CLIENT_NAME", "DEAD_AFTER", "PING_EVERY", "Tracker"]

log = logging.getLogger("refresher")

Invalidate = Callable[[list[bytes] | None], None]
"""Called with the keys written, or None when everything must go (FLUSHALL, a lost link)."""


class Tracker:
    """Keeps `invalidate` told of every write under `prefixes` on each master, or says it
    cannot (`sync()` is False) and has flushed everything."""

    def __init__(self, pools: Callable[[], list[ConnectionPool]], prefixes: list[str], invalidate: Invalidate,
                 keep: Callable[[], None] = lambda: None, breaker: Breakers | None = None) -> None:
        self._pools = pools
        self._prefixes = prefixes
        self._invalidate = invalidate
        self._keep = keep  # an outage began: keep the copies, no longer served as current
        self.breaker: Breakers = breaker or Breaker(RETRY_MOST)
        self._connecting = ""  # the master a connect is turning tracking on at
        self._links: list[Link] = []
        self.lock = threading.Lock()
        self._draining = False  # a drain has read bytes it has not applied yet
        self._poll, self._close_poll = arrivals([])  # what sync() asks: has anything arrived?
        self._tls = False
        self._answer_by = math.inf  # when the oldest unanswered PING makes the tracker dead
        self._horizon: float | None = None  # while down: the links' last `horizon` (None: never live)
        self.live = False
        self._on = threading.Event()  # set while live: what wait_live waits on
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None  # started by a near read, or by epoch fetches
        self._demand = Demand()
        self._failures = 0  # attempts to turn tracking on that failed in a row
        self._outage = False  # copies kept (Redis unreachable): the reconnect is tried every cool-down
        self._said = False  # a WARNING has said tracking is off since it was last on
        AT_EXIT.add(self._closed)  # closed quietly when the process exits
        mine = weakref.WeakMethod(self._forked)  # the fork hook must not keep a closed Refresher alive
        if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork either
            os.register_at_fork(after_in_child=lambda: (forked := mine()) is not None and forked())

    def _start(self) -> None:
        with self.lock:
            if self._thread is None:
                self._thread = threading.Thread(target=turns, args=(weakref.ref(self), self._closed),
                                                name="refresher-tracking", daemon=True)
                self._thread.start()

    def _forked(self) -> None:
        """A forked child (a prefork worker) starts its own connections when it first reads."""
        self.lock = threading.Lock()
        self.live, self._draining, self._links, self._thread, self._failures, self._said = False, False, [], None, 0, False
        self._on, self._horizon = threading.Event(), None
        self._poll, self._close_poll = arrivals([])
        self._invalidate(None)

    def sync(self) -> bool:
        """`drain`, then `current` (inlined: a near hit makes this call): False when copies
        must not be served (not tracking, or a PING has gone unanswered too long)."""
        if not self.live:
            if self._thread is None:
                self._start()
            return False
        try:
            # Bytes not read yet, or a closed connection: one poll for every master, and
            # no lock. `_draining` is looked at after it: a drain reads the bytes
            # first and applies them after.
            if self._poll(0, 1) or self._draining or (self._tls and any(link.sock.pending() for link in self._links)):
                with self.lock:
                    self._drain()
        except (ValueError, OSError):  # the poll was closed under us: the tracker just went down
            return False
        except Exception as exc:  # the poll itself failed: what it guards cannot be trusted
            with self.lock:
                self._down(exc)
            return False
        return self.live and time.monotonic() < self._answer_by

    def drain(self) -> None:
        """Apply every invalidation that has arrived, starting nothing: what the drivers
        do before the core decides on what they read."""
        if self.live:
            self.sync()

    def current(self) -> bool:
        """Whether what was applied is all there is to know (tracking, and answering): what
        the core asks, reading no connection, starting nothing."""
        return self.live and time.monotonic() < self._answer_by

    def fetched(self) -> None:
        """The core fetched epochs it would have kept were tracking on (tracking_start.py)."""
        if self._thread is None and self._demand.due():
            self._start()

    def lag(self) -> float | None:
        """Seconds since the `horizon` (tracking_link.py): how stale a near copy served now can
        be, at most. While down it grows from the last answered PING, bounding what an outage
        keeps. None before tracking first came on, and once closed. For the metrics, not reads."""
        since = horizon(self._links, self._horizon) if self.live else self._horizon
        return None if since is None or self._closed.is_set() else time.monotonic() - since

    @property
    def down(self) -> bool:
        """Started by a read but not tracking (connecting, or lost): copies are bypassed."""
        return self._thread is not None and not self.live and not self._closed.is_set()

    def wait_live(self, timeout: float) -> bool:
        """For tests and start-up: block until tracking is on (or the timeout passes)."""
        if self._thread is None:
            self._start()
        self._on.wait(timeout)
        return self.live

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self.lock:
            self._down(None)

    def _drain(self) -> None:  # under the lock, as _down is
        self._draining = True
        try:
            for link in self._links:
                for keys in link.read():
                    self._invalidate(names(keys))
        except Exception as exc:  # whatever it was, what we keep is no longer known to be current
            self._down(exc)
        finally:
            self._draining = False

    def _down(self, exc: BaseException | None, where: str = "") -> None:
        """The loss said once, and what was kept flushed, or, while Redis is unreachable
        rather than refusing, kept for stale_if_down (a closed tracker's is no loss). A
        frozen master (`where`, "host:port") holds its breaker open."""
        was_live = self.live
        self._horizon = horizon(self._links, self._horizon)  # before `live` goes: lag() reads it then
        if was_live and exc is not None and not self._closed.is_set():
            log.warning("refresher: near cache bypassed: the invalidation connection failed: %s", exc)
            self._said = True
        self.live = False
        self._on.clear()
        if isinstance(exc, OUTAGE) and not self._closed.is_set():
            self._keep()
            self._outage = True
            if isinstance(exc, FROZEN) and (breaker := self.breaker.node(where)) is not None:
                breaker.trip(held=True)
        else:  # refused, or closed: nothing kept may be served
            self._invalidate(None)
            self._outage = False
            if self.breaker.held:  # refused, not unreachable: reads find out for themselves
                self.breaker.reset()
        self._close_poll()
        for link in self._links:
            link.close()
        self._links = []

    def _step(self) -> float:
        """One turn of the thread, and the wait before the next: whatever fails takes the
        tracker down (near cache flushed and bypassed, epochs fetched) until it is on again."""
        try:
            if self.live:
                self._tend()
            else:
                self._connect()
                self._failures, self._said = 0, False
            return PING_EVERY / 4
        except Exception as exc:
            with self.lock:
                if not self.live:  # a live tracker says so itself, in _down
                    not_on(exc, quiet=self._said or self._closed.is_set())
                    self._said = True
                self._down(exc, "" if self.live else self._connecting)
            self._failures += 1
            return backoff(self._failures, self.breaker.cooldown if self.breaker.held or self._outage else None)

    def _connect(self) -> None:
        self._connecting = ""  # until a master's link is being made
        links = connect(self._pools(), self._prefixes, lambda name: setattr(self, "_connecting", name))
        poll, close_poll = arrivals(links)
        with self.lock:
            self._links = links
            self._poll, self._close_poll = poll, close_poll
            self._tls = any(link.tls for link in links)
            self._answer_by = math.inf
            self._invalidate(None)  # anything kept from before was not tracked meanwhile
            self.live, self._outage = True, False
            self.breaker.reset()  # the copies kept through an outage are gone: reads go on
            self._on.set()
        log.info("refresher: tracking writes under %s on %d master(s)", ", ".join(self._prefixes), len(links))

    def _tend(self) -> None:
        """Read what arrived while no reader did (PINGs' answers too), ping each link, and
        declare the tracker down when a link breaks or a PING goes unanswered for DEAD_AFTER.
        On a clock, not per push: a thread woken per write would take readers' GIL each time."""
        links, now = self._links, time.monotonic()
        answered: list[tuple[str, float]] = []
        with self.lock:
            if self._links is not links or not self.live:
                return  # closed, or gone down meanwhile
            try:
                arrived = self._poll(0, 1)
            except (ValueError, OSError):  # closed by a reader that found the link broken
                return
            if arrived:
                self._drain()
                if not self.live:  # what it read took the tracker down
                    return
            for link in links:
                try:
                    answered.append((link.name, link.beat(now)))
                except (OSError, ConnectionError, RedisError) as exc:
                    self._down(exc, link.name)
                    return
        close_answered(self.breaker, answered)
        self._answer_by = answer_by(links)
