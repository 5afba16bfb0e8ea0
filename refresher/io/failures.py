"""redis-py's errors turned into the core's own (refresher/core/failures.py), at the edge
where they come in: the Stepper, for an op's error and a pipeline's error replies, and the
driver's GET. The core never imports redis; a failure it lets escape a step goes back out
as the error redis-py raised (`escaped`), so what callers see does not change.
"""

from __future__ import annotations

from redis.exceptions import ClusterDownError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, OutOfMemoryError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.core import failures
from refresher.core.failures import CacheFailure, Refused, Unreachable, WrongType
from refresher.errors import CacheForbidden, CacheFull, CacheRefused, CacheTooOld, RefresherError

# ClusterDownError: a Cluster answers CLUSTERDOWN on every slot while a master fails over,
# and for as long as a shard is lost with its replica.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError)
# What Redis says, also when a script's command was refused (then a plain ResponseError).
_FULL = ("command not allowed when used memory",)
_FORBIDDEN = ("NOPERM", "no permissions", "can't run this command")
_UNKNOWN = ("unknown command", "unknown redis command", "unknown subcommand")


def _fix(exc: ResponseError) -> type[CacheRefused] | None:
    """Which refusal a Redis error is, if it is one that names a fix."""
    text = str(exc)
    if isinstance(exc, OutOfMemoryError) or any(part in text for part in _FULL):
        return CacheFull
    if isinstance(exc, NoPermissionError) or any(part in text for part in _FORBIDDEN):
        return CacheForbidden
    if any(part in text.lower() for part in _UNKNOWN):
        return CacheTooOld
    return None


def as_failure(exc: BaseException) -> BaseException:
    """The core's failure for a redis-py error (chained to it); any other exception as it is."""
    if not isinstance(exc, RedisError):
        return exc
    return failure_of(exc)


def failure_of(exc: RedisError) -> CacheFailure:
    failure: CacheFailure
    if isinstance(exc, UNAVAILABLE):
        failure = Unreachable(str(exc))
    elif isinstance(exc, ResponseError) and str(exc).startswith("WRONGTYPE"):
        failure = WrongType(str(exc))
    else:  # any other error of the cache's is a refusal, named when it is one with a fix
        failure = Refused(str(exc), _fix(exc) if isinstance(exc, ResponseError) else None)
    failure.__cause__ = exc
    return failure


def escaped(failure: CacheFailure) -> Exception:
    """What a caller sees of a failure no step handled: redis-py's error, as before."""
    return failure.__cause__ if isinstance(failure.__cause__, RedisError) else failure


def cache_error(exc: RedisError, doing: str) -> RefresherError:
    """The library's error for a redis-py error met while `doing`, naming the fix."""
    return failures.cache_error(failure_of(exc), doing)
