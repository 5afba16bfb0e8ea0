"""Redis's errors turned into this library's own, in one place: callers catch
RefresherError and read what to do, never redis-py's classes.

A lost connection is CacheUnavailable; a server that answers but refuses (full, an ACL,
a command it does not know) is a CacheRefused subclass naming the fix. A read meeting
either goes the same way (`cache_down`): with fail_open the loader is called directly,
else the error is raised.
"""

from __future__ import annotations

from typing import Any, TypeVar

from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.core.calls import Call
from refresher.core.ops import Coalesce, Load, Steps
from refresher.core.state import LoaderState
from refresher.errors import CacheForbidden, CacheFull, CacheRefused, CacheTooOld, CacheUnavailable, RefresherError
from refresher.core.logs import about

R = TypeVar("R")

# ClusterDownError: a Cluster answers CLUSTERDOWN on every slot while a master fails over,
# and for as long as a shard is lost with its replica.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError)
# What Redis says, also when a script's command was refused (then a plain ResponseError).
_FULL = ("command not allowed when used memory",)
_FORBIDDEN = ("NOPERM", "no permissions", "can't run this command")
_UNKNOWN = ("unknown command", "unknown redis command", "unknown subcommand")


def refused(exc: BaseException) -> type[CacheRefused] | None:
    """Which refusal a Redis error is, if it is one."""
    if not isinstance(exc, ResponseError):
        return None
    text = str(exc)
    if isinstance(exc, OutOfMemoryError) or any(part in text for part in _FULL):
        return CacheFull
    if isinstance(exc, NoPermissionError) or any(part in text for part in _FORBIDDEN):
        return CacheForbidden
    if any(part in text.lower() for part in _UNKNOWN):
        return CacheTooOld
    return None


def is_cache_trouble(exc: BaseException) -> bool:
    """The cache could not do what was asked: unreachable, or refusing (not a wrong type,
    not a loader's own error)."""
    return isinstance(exc, UNAVAILABLE) or refused(exc) is not None


def is_wrong_type(exc: BaseException) -> bool:
    """A key holds another Redis type than a string: bytes somebody else wrote."""
    return isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE")


def cache_error(exc: Exception, doing: str) -> RefresherError:
    """The error to raise for `exc`, met while `doing` ("reading <key>")."""
    if isinstance(exc, UNAVAILABLE):
        return CacheUnavailable(f"cache Redis unavailable while {doing}: {exc}")
    kind = refused(exc) or CacheRefused
    hint = getattr(kind, "HINT", "")
    return kind(f"cache Redis refused a command while {doing}: {exc}" + (f"; to fix: {hint}" if hint else ""))


def reply_text(reply: object) -> str:
    """An error a script returned (a publish refused), as text for a log line."""
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def count(state: LoaderState[Any], exc: BaseException) -> None:
    state.stats.incr("cache_unavailable" if isinstance(exc, UNAVAILABLE) else "cache_refused")


def cache_down(state: LoaderState[R], call: Call, exc: Exception) -> Steps[R]:
    """The cache cannot serve this read (unreachable or refusing): one exception type per
    cause, or with fail_open the loader itself, still coalesced within the process."""
    count(state, exc)
    error = cache_error(exc, f"reading {call.keys.value}")
    if not state.settings.fail_open:
        state.stats.incr("error")
        raise error from exc
    about(state.name, call.keys.value).warning("%s; calling the loader directly", error)
    value, _ = yield Coalesce(call.keys.value, lambda: _call_origin(state, call))
    return value  # type: ignore[no-any-return]  # a yield's value is Any: the driver sends what the op asked for


def _call_origin(state: LoaderState[R], call: Call) -> Steps[R]:
    return (yield Load(state.fn, call, None))  # type: ignore[no-any-return]  # a yield's value is Any: the driver sends what the op asked for
