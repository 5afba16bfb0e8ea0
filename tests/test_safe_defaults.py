"""Review findings of issue 19, each a regression test that failed before its fix: names
that end in a newline, non-finite options, passwords in query strings, a metrics port open
to the network, an epoch map without a bound."""

from __future__ import annotations

import math
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from refresher.core import epochs
from refresher.io.connect import masked
from refresher.core.options import Options
from tests.support.servers import WorkerProcess, free_port
from tests.support.sockets import listening_addresses


@pytest.mark.parametrize("name", ["forged\n", "forged\nrefresher: loader=x key=y refresh written"])
def test_a_loader_name_with_a_newline_is_refused(redis_url: str, name: str) -> None:
    """A trailing newline got past `^...$`, and a worker logs `loader=NAME`: a name could
    start a line of its own in the worker's log."""
    cache = Refresher(redis_url)
    try:
        with pytest.raises(ValueError, match="loader name"):
            cache.loader(ttl=60, name=name)(lambda: 1)
        with pytest.raises(ValueError, match="tag"):
            cache.invalidate_tag("user:1\n")
    finally:
        cache.close()


@pytest.mark.parametrize("option", ["ttl", "lock_ttl", "max_load_time", "error_backoff", "stale_ttl",
                                    "ttl_jitter", "max_value_bytes"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_options_are_refused_by_name(option: str, value: float) -> None:
    """NaN compares false with everything: max_value_bytes=nan turned the size limit off."""
    options: dict[str, Any] = {"ttl": 60.0, option: value}
    with pytest.raises(ValueError, match=f"{option} must be a finite number"):
        Options(**options).resolved()


@pytest.mark.parametrize("url, shown", [
    ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
    ("redis://u:s3cret@h/0?db=1&PASSWORD=s3cret", "redis://u:***@h/0?db=1&PASSWORD=***"),
    ("redis+sentinel://h:26379/mymaster?sentinel_password=s3cret&x=1", "redis+sentinel://h:26379/mymaster?sentinel_password=***&x=1"),
    ("redis://h:6379/0?socket_timeout=5", "redis://h:6379/0?socket_timeout=5"),
])
def test_masking_hides_passwords_in_query_strings(url: str, shown: str) -> None:
    assert masked(url) == shown


@pytest.fixture
def metrics_worker(redis_url: str, request: pytest.FixtureRequest) -> Iterator[int]:
    port = free_port()
    worker = WorkerProcess(redis_url, extra_env={"REFRESHER_METRICS_PORT": str(port), **request.param}).start()
    yield port
    worker.discard()


@pytest.mark.parametrize("metrics_worker, address", [({}, "127.0.0.1"), ({"REFRESHER_METRICS_ADDR": "127.0.0.2"}, "127.0.0.2")],
                         indirect=["metrics_worker"])
def test_worker_metrics_listen_on_loopback_unless_told_otherwise(metrics_worker: int, address: str) -> None:
    """The metrics server starts before the worker says it is ready."""
    assert listening_addresses(metrics_worker) == {address}


def test_the_epochs_a_process_keeps_are_bounded(redis_url: str, r: redis.Redis,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tag a value carries adds its epoch to the process's map: with many tags (one per
    user, say) it grew without end. Past the bound the oldest is forgotten and fetched again."""
    monkeypatch.setattr(epochs, "KNOWN_EPOCHS", 50)
    cache = Refresher(redis_url)
    try:
        @cache.loader(ttl=60, name="bounded." + uuid.uuid4().hex[:8], tags=lambda n: [f"user:{n}"])
        def load(n: int) -> int:
            return n

        assert cache.tracker.wait_live(10)
        for n in range(200):
            assert load.get(n) == n
        assert 0 < len(cache.epochs._known) <= 50
        cache.invalidate_tag("user:3")  # a forgotten epoch is fetched again: the invalidation holds
        assert r.get(load.keys(3).value) is not None
        assert load.get(3) == 3 and cache.stats["miss"] == 201
    finally:
        cache.close()
