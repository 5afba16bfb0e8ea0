"""The core decides and the drivers do the I/O: refresher/core imports nothing that does
I/O and reads no clock, redis-py's errors reach it as its own failures, and what it lets
escape reaches the caller as redis-py raised it."""

from __future__ import annotations

import ast
import time
import uuid
from pathlib import Path

import pytest
import redis

from refresher import CacheUnavailable, Refresher
from refresher.core.failures import Refused, Unreachable, WrongType
from refresher.core.renew import refresh
from refresher.errors import CacheFull, RefreshFailed
from refresher.io.failures import escaped, failure_of
from tests.support.reading import Reading

ROOT = Path(__file__).resolve().parent.parent
IO = {"redis", "hiredis", "kombu", "celery", "socket", "select", "ssl", "asyncio", "time"}  # time: it comes in


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports, TYPE_CHECKING blocks and function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[: len(module.split(".")) - node.level] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def _path(module: str) -> Path | None:
    for candidate in (ROOT / (module.replace(".", "/") + ".py"), ROOT / module.replace(".", "/") / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_the_core_and_all_it_imports_do_no_io_and_read_no_clock() -> None:
    todo = [f"refresher.core.{path.stem}" for path in (ROOT / "refresher" / "core").glob("*.py") if path.stem != "__init__"]
    seen: set[str] = set()
    outside: dict[str, set[str]] = {}
    while todo:
        module = todo.pop()
        if module in seen or (path := _path(module)) is None:
            continue
        seen.add(module)
        for name in _imports(path, module):
            if name.split(".")[0] in IO:
                outside.setdefault(module, set()).add(name)
            elif name.startswith("refresher.") and _path(name) is not None:
                todo.append(name)
    assert outside == {}
    assert {module for module in seen if not module.startswith("refresher.core")} <= {"refresher.errors"}


@pytest.mark.parametrize("error, kind, fix", [
    (redis.exceptions.ConnectionError("Error 111 connecting"), Unreachable, None),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), Unreachable, None),
    (redis.exceptions.ClusterDownError("The cluster is down"), Unreachable, None),
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), Refused, CacheFull),
    (redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), WrongType, None),
    (redis.exceptions.ResponseError("ERR something else"), Refused, None),
])
def test_redis_errors_reach_the_core_as_its_own_and_leave_it_as_they_came(
        error: redis.exceptions.RedisError, kind: type, fix: type | None) -> None:
    failure = failure_of(error)
    assert type(failure) is kind and str(failure) == str(error)
    assert getattr(failure, "fix", None) is fix
    assert escaped(failure) is error


@pytest.mark.parametrize("error", [
    redis.exceptions.ResponseError("ERR the origin's own"),
    redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."),  # was CacheFull
], ids=["plain", "oom"])
def test_a_loaders_own_redis_error_reaches_the_caller_as_the_loader_raised_it(
        reading: Reading, redis_url: str, error: redis.exceptions.ResponseError) -> None:
    """A loader whose origin is a Redis: its error goes through the core's miss path and
    comes out unchanged, not as the core's failure type (nor as the cache being full)."""
    cache = Refresher(redis_url, queue="q-" + uuid.uuid4().hex[:8])

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        raise error

    try:
        with pytest.raises(redis.exceptions.ResponseError) as raised:
            reading.get(load, 1)
        assert raised.value is error
        assert cache.stats["error"] == 1 and cache.stats["cache_refused"] == 0
    finally:
        cache.close()


def test_a_loaders_own_redis_timeout_on_a_worker_refresh_is_named_as_it_was_raised(redis_url: str) -> None:
    """A loader whose origin is a Redis times out: the refresh fails with the loader's
    error by its own name (what logs and Flower show), not as the cache being unreachable."""
    cache = Refresher(redis_url, queue="q-" + uuid.uuid4().hex[:8])

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        raise redis.exceptions.TimeoutError("Timeout reading from the origin's Redis")

    try:
        with pytest.raises(RefreshFailed) as raised:
            load.run_steps(refresh(load.state, load.call((1,), {}), time.time(), None))
        assert str(raised.value).startswith("TimeoutError: Timeout reading from the origin's Redis"), raised.value
        assert cache.stats["load_failed"] == 1 and cache.stats["cache_unavailable"] == 0
    finally:
        cache.close()


def test_an_unreachable_cache_is_cache_unavailable_chained_to_redis_pys_error(reading: Reading) -> None:
    cache = Refresher("redis://127.0.0.1:1/0", queue="q-" + uuid.uuid4().hex[:8], socket_timeout=0.5)

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        return n

    try:
        with pytest.raises(CacheUnavailable, match="cache Redis unavailable while reading") as raised:
            reading.get(load, 1)
        assert isinstance(raised.value.__cause__, Unreachable)
        assert isinstance(raised.value.__cause__.__cause__, redis.exceptions.ConnectionError)
        assert cache.stats["cache_unavailable"] == 1
    finally:
        cache.close()
