"""The exceptions a caller may need to tell apart."""

from __future__ import annotations


class RefresherError(Exception):
    """Base class for the errors this library raises itself."""


class CacheUnavailable(RefresherError):
    """The cache Redis could not be reached in time (connection refused, timeout).

    Raised instead of redis-py's own errors so callers need one `except`; with
    `fail_open=True` the loader is called directly instead.
    """


class CacheRefused(RefresherError):
    """The cache Redis is reachable but refused a command refresher needs. The subclasses
    say which fix applies; with `fail_open=True` a read calls the loader instead."""


class CacheFull(CacheRefused):
    """The cache Redis is at `maxmemory` and may not evict (`noeviction`, Redis's default)."""

    HINT = ("set maxmemory-policy to volatile-lru (or volatile-lfu): values carry a TTL and are "
            "evicted first, epoch keys have none and are kept; or raise maxmemory")


# Everything a cache user runs, scripts' own calls included (ACLs apply inside Lua too):
# reads, the scripts, sharded pub/sub (plain on a Redis 6.2), tracking (CLIENT ID, the
# invalidation channel), INFO for the server's version, SCAN for `refresher keys`, and the
# Cluster client's topology. docs/security.md; tests/test_security.py runs with exactly this.
ACL_COMMANDS = (
    "+get", "+mget", "+set", "+del", "+pttl", "+pexpire", "+type", "+getrange", "+time", "+scan", "+ping",
    "+info", "+evalsha", "+eval", "+script|load", "+spublish", "+ssubscribe", "+sunsubscribe", "+publish",
    "+subscribe", "+unsubscribe", "+client|tracking", "+client|id", "+client|setname", "+cluster|slots",
    "+cluster|shards", "+readonly",
)


def acl_rule(namespace: str = "refresher") -> tuple[str, ...]:
    """The ACL SETUSER rules a cache user needs: the namespace's keys and channels, the
    tracking channel, and ACL_COMMANDS."""
    return (f"~{namespace}:*", f"&{namespace}:*", "&__redis__:invalidate", *ACL_COMMANDS)


class CacheForbidden(CacheRefused):
    """The cache Redis user's ACL does not allow a command, key or channel refresher uses."""

    HINT = ("grant the refresher user its commands on the namespace's keys and channels: "
            f"ACL SETUSER <user> {' '.join(acl_rule('<namespace>'))} (docs/security.md)")


class CacheTooOld(CacheRefused):
    """The cache Redis does not know a command refresher uses (renamed, disabled, or older
    than Redis 7.0, which brought SPUBLISH and SSUBSCRIBE)."""

    HINT = "use Redis 7.0 or newer, with EVALSHA, SPUBLISH, SSUBSCRIBE and CLIENT TRACKING enabled"


class LoadFailed(RefresherError):
    """Another process was loading this key for us and its loader raised.

    In the process that ran the loader, callers get the loader's own exception; callers
    coalesced onto it from other processes get this, naming the original error.
    """

    def __init__(self, loader: str, error_type: str, message: str) -> None:
        super().__init__(f"loader {loader!r} failed in another process: {error_type}: {message}")
        self.loader = loader
        self.error_type = error_type
        self.message = message


class RefreshFailed(RefresherError):
    """A refresh task's loader raised; the message is its exception's type and message.

    Raised by the task after the key's back-off was set and its lock released, so that
    Celery and Flower record a FAILURE (state filters, failure counts, `task-failed`
    events) while the old value stays servable. Never retried by Celery: the back-off
    is the only retry. A batch raises it naming each key that failed.
    """


class TaskRejected(RefresherError):
    """A refresh task this worker will not run: no such loader here, arguments that do
    not fit it, or another `version=` of the loader. The message says which; the task
    ends FAILURE, is not retried, and writes nothing."""


class UnknownLoader(RefresherError, LookupError):
    """A refresh task named a loader this worker has not registered."""
