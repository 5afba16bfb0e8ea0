"""What a cache failure means, decided in one place: callers catch RefresherError and
read what to do, never redis-py's classes.

The I/O side (refresher/io/failures.py) hands the core its failures as the types below,
carrying redis-py's text; here they become the library's errors. An unreachable cache is
CacheUnavailable; a server that answers but refuses (full, an ACL, a command it does not
know) is a CacheRefused subclass naming the fix. A read meeting either goes the same way
(`cache_down`): with fail_open the loader is called directly, else the error is raised.
"""

from __future__ import annotations

from typing import Any, TypeVar

from refresher.core.calls import Call
from refresher.core.copies import Copy, handout
from refresher.core.ops import Coalesce, Load, Steps
from refresher.core.state import LoaderState
from refresher.errors import CacheRefused, CacheUnavailable, RefresherError
from refresher.core.logs import about

R = TypeVar("R")


class CacheFailure(Exception):
    """An op the cache could not do, as the core sees it: `str()` is the cache's own words."""


class Unreachable(CacheFailure):
    """No answer: the connection failed or timed out, or a Cluster is down (a master
    failing over, or a shard lost with its replica)."""


class Refused(CacheFailure):
    """The cache answered with an error. `fix` is the library's error naming what to
    change when the refusal is one (full, forbidden, too old); None for any other."""

    def __init__(self, text: str, fix: type[CacheRefused] | None = None) -> None:
        super().__init__(text)
        self.fix = fix


class WrongType(Refused):
    """The key holds another Redis type than a string: bytes somebody else wrote."""


def is_cache_trouble(exc: BaseException) -> bool:
    """The cache could not do what was asked: unreachable, or refusing for any reason,
    named (full, an ACL) or not (READONLY, MISCONF, LOADING, BUSY), which a read answers
    as it does an outage. Not a wrong type (foreign bytes, reloaded), not a loader's error."""
    return isinstance(exc, Unreachable) or (isinstance(exc, Refused) and not isinstance(exc, WrongType))


def cache_error(exc: CacheFailure, doing: str) -> RefresherError:
    """The error to raise for `exc`, met while `doing` ("reading <key>")."""
    if isinstance(exc, Unreachable):
        return CacheUnavailable(f"cache Redis unavailable while {doing}: {exc}")
    kind = exc.fix if isinstance(exc, Refused) and exc.fix is not None else CacheRefused
    hint = getattr(kind, "HINT", "")
    return kind(f"cache Redis refused a command while {doing}: {exc}" + (f"; to fix: {hint}" if hint else ""))


def reply_text(reply: object) -> str:
    """An error a script returned (a publish refused), as text for a log line."""
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def count(state: LoaderState[Any], exc: CacheFailure) -> None:
    state.stats.incr("cache_unavailable" if isinstance(exc, Unreachable) else "cache_refused")


def cache_down(state: LoaderState[R], call: Call, exc: CacheFailure) -> Steps[R]:
    """The cache cannot serve this read (unreachable or refusing): one exception type per
    cause, or with fail_open the loader itself, still coalesced within the process."""
    count(state, exc)
    error = cache_error(exc, f"reading {call.keys.value}")
    if not state.settings.fail_open:
        state.stats.incr("error")
        raise error from exc
    about(state.name, call.keys.value).warning("%s; calling the loader directly", error)
    (value, _, copy), led = yield Coalesce(call.keys.value, lambda: _call_origin(state, call), followed=False)
    return value if led else copy(value)  # type: ignore[no-any-return]  # a yield's value is Any: the driver sends what the op asked for


def _call_origin(state: LoaderState[R], call: Call) -> Steps[tuple[R, bool, Copy]]:
    """The origin's value, as current as the cache could have it: a miss's flight lands
    with the same shape (core/miss.py), whichever of them a read of the key joins."""
    value = yield Load(state.fn, call, None)
    return value, True, handout(value)
