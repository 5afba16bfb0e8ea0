"""The tracker's thread, and what it says when tracking cannot be turned on."""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Protocol

from redis.exceptions import NoPermissionError

from refresher.io.tracking_link import PING_EVERY

log = logging.getLogger("refresher")
RETRY_FIRST, RETRY_MOST = 0.5, 30.0  # the back-off between attempts to turn tracking on


def not_on(exc: Exception, quiet: bool) -> None:
    """Say why tracking is off: at WARNING once (the caller knows), then at DEBUG."""
    if isinstance(exc, NoPermissionError) or "NOPERM" in str(exc):
        message = ("refresher: near cache off: the Redis user may not turn on tracking (%s); grant it with "
                   "`ACL SETUSER <user> +client|tracking +client|id +subscribe &__redis__:invalidate`. "
                   "Until then every read fetches its loader's epochs.")
    else:
        message = "refresher: near cache off (epochs fetched on every read) until tracking is on: %s"
    log.log(logging.DEBUG if quiet else logging.WARNING, message, exc)


def backoff(failures: int, cooldown: float | None) -> float:
    """The wait after `failures` attempts in a row failed. During an outage (`cooldown`, the
    breaker's) reads wait for this reconnect (held breaker), or serve kept copies until the
    master, or Sentinel's new one, answers: it is tried every cool-down."""
    return min(RETRY_FIRST * 2.0 ** (failures - 1), RETRY_MOST if cooldown is None else max(cooldown, PING_EVERY))


class Turning(Protocol):
    def _step(self) -> float: ...


AT_EXIT: weakref.WeakSet[threading.Event] = weakref.WeakSet()  # trackers' `closed`, set when the process exits


def turns(owner: weakref.ref[Turning], closed: threading.Event) -> None:
    """A tracker's thread. It holds its tracker for a turn only, so a Refresher nobody
    holds is collected (and its thread ends, quietly) rather than kept for the process's life."""
    while not closed.is_set():
        held = owner()
        if held is None:
            return
        pause = held._step()
        del held
        closed.wait(pause)


@atexit.register
def _exiting() -> None:
    """The process is ending (after its non-daemon threads): its servers may be stopped
    with it, and that is no loss to warn of. atexit, not a daemon thread's luck."""
    for closed in list(AT_EXIT):
        closed.set()
