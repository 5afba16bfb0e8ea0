"""The read path in one process, against a real redis-server."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Iterator

import pytest
import redis

from refresher import Refresher
from refresher.core.envelope import Envelope
from refresher import Loader
from tests.support.ageing import age, into_window
from tests.support.reading import Reading


@pytest.fixture
def cache(redis_url: str) -> Iterator[Refresher]:
    c = Refresher(redis_url, queue="test-" + uuid.uuid4().hex[:8])  # a queue no worker reads
    yield c
    c.close()


def unique() -> str:
    return "t." + uuid.uuid4().hex[:10]


def counted(cache: Refresher, ttl: float = 60, **options: Any) -> tuple[Loader[..., Any], list[Any]]:
    calls: list[Any] = []

    @cache.loader(ttl=ttl, name=unique(), **options)
    def load(user_id: int, verbose: bool = False) -> dict[str, Any]:
        calls.append((user_id, verbose))
        return {"id": user_id, "n": len(calls)}

    return load, calls


def test_miss_then_hit(reading: Reading, cache: Refresher) -> None:
    load, calls = counted(cache)
    assert reading.get(load, 1001) == {"id": 1001, "n": 1}
    assert reading.get(load, 1001) == {"id": 1001, "n": 1}
    assert calls == [(1001, False)]
    assert cache.stats["miss"] == 1 and cache.stats["hit"] == 1


def test_positional_keyword_and_default_arguments_share_a_key(reading: Reading, cache: Refresher) -> None:
    load, calls = counted(cache)
    reading.get(load, 1)
    reading.get(load, user_id=1)
    reading.get(load, 1, False)
    reading.get(load, 1, verbose=False)
    assert len(calls) == 1
    assert load.keys(1) == load.keys(user_id=1, verbose=False)


def test_one_and_the_string_one_are_different_keys(reading: Reading, cache: Refresher) -> None:
    load, calls = counted(cache)
    reading.get(load, 1)
    reading.get(load, "1")  # type: ignore[arg-type]
    assert len(calls) == 2
    assert load.keys(1) != load.keys("1")  # type: ignore[arg-type]


def test_default_name_is_module_and_qualname(cache: Refresher) -> None:
    @cache.loader(ttl=5)
    def profile(user_id: int) -> int:
        return user_id

    assert profile.name == f"{__name__}.test_default_name_is_module_and_qualname.<locals>.profile"


def test_value_is_stored_as_json_in_an_envelope_with_its_metadata(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, _ = counted(cache, ttl=300)
    reading.get(load, 7)
    envelope = Envelope.from_bytes(r.get(load.keys(7).value) or b"")
    assert json.loads(envelope.payload) == {"id": 7, "n": 1}
    assert envelope.ttl_ms == 300_000 and envelope.delta_ms >= 0
    assert 299_000 < r.pttl(load.keys(7).value) <= 300_000


def test_in_window_read_serves_the_value_and_publishes_one_task(
    reading: Reading, cache: Refresher, r: redis.Redis, broker: redis.Redis
) -> None:
    load, calls = counted(cache)
    first = reading.get(load, 5)
    into_window(r, load.keys(5))
    assert [reading.get(load, 5) for _ in range(20)] == [first] * 20
    assert len(calls) == 1
    assert cache.flush()
    assert broker.llen(cache.queue) == 1
    message = json.loads(broker.lindex(cache.queue, 0) or b"{}")
    assert message["headers"]["task"] == "refresher.refresh"
    assert message["content-type"] == "application/json"
    assert json.loads(__import__("base64").b64decode(message["body"]))[0][:3] == [load.name, [5, False], {}]
    assert cache.stats["refresh_enqueued"] == 1 and cache.stats["refresh_deduplicated"] == 19


def test_loader_error_reaches_the_caller_and_nothing_is_cached(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    @cache.loader(ttl=60, name=unique())
    def broken(n: int) -> int:
        raise LookupError(f"no row {n}")

    with pytest.raises(LookupError, match="no row 3"):
        reading.get(broken, 3)
    assert r.get(broken.keys(3).value) is None
    assert r.get(broken.keys(3).lock) is None


def test_unencodable_arguments_name_the_loader(reading: Reading, cache: Refresher) -> None:
    load, calls = counted(cache)
    with pytest.raises(TypeError, match=load.name):
        reading.get(load, object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict keys"):
        reading.get(load, {1: "a"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=load.name):
        reading.get(load, 1, 2, 3)  # type: ignore[call-arg]
    assert calls == []


def test_unencodable_result_names_the_loader_and_writes_nothing(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    @cache.loader(ttl=60, name=unique())
    def sets(n: int) -> Any:  # no annotation to say a set must come back: JSON would make it a list
        return {n}

    with pytest.raises(TypeError, match=sets.name):
        reading.get(sets, 1)
    assert r.keys(f"*{sets.name}*") == []


def test_foreign_bytes_are_a_counted_miss_and_overwritten(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, calls = counted(cache)
    key = load.keys(9).value
    r.set(key, b"\x80garbage that is not an envelope")
    assert reading.get(load, 9) == {"id": 9, "n": 1}
    assert cache.stats["corrupt"] == 1
    assert Envelope.from_bytes(r.get(key) or b"").payload == b'{"id":9,"n":1}'


def test_a_corrupt_payload_in_a_valid_header_is_a_miss_too(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, calls = counted(cache)
    key = load.keys(9).value
    r.set(key, Envelope(0, 1 << 41, 60_000, 0, 0, b"{not json").to_bytes())
    assert reading.get(load, 9) == {"id": 9, "n": 1}
    assert cache.stats["corrupt"] == 1


def test_oversized_value_is_returned_but_not_cached(reading: Reading, cache: Refresher, r: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    @cache.loader(ttl=60, name=unique(), max_value_bytes=100)
    def big(n: int) -> str:
        return "x" * n

    with caplog.at_level(logging.WARNING, logger="refresher"):
        assert reading.get(big, 500) == "x" * 500
    assert r.get(big.keys(500).value) is None
    assert "max_value_bytes" in caplog.text
    assert reading.get(big, 50) == "x" * 50
    assert r.get(big.keys(50).value) is not None


def test_set_and_invalidate(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, calls = counted(cache)
    def version() -> int:
        return Envelope.from_bytes(r.get(load.keys(1).value) or b"").version

    reading.set(load, 1, {"id": 1, "n": "set"})
    assert reading.get(load, 1) == {"id": 1, "n": "set"}
    assert calls == []
    versions = [version()]
    reading.invalidate(load, 1)
    versions.append(version())
    assert reading.get(load, 1) == {"id": 1, "n": 1}
    assert len(calls) == 1
    versions.append(version())
    assert len(set(versions)) == 3  # every write, a version of its own


def test_expired_value_is_reloaded(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, calls = counted(cache, ttl=60)
    reading.get(load, 4)
    age(r, load.keys(4), 60_000)
    assert reading.get(load, 4) == {"id": 4, "n": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "ttl must be > 0"),
        ({"ttl": -5}, "ttl must be > 0"),
        ({"ttl": 10, "refresh_window": 1.0}, "refresh window"),
        ({"ttl": 10, "refresh_window": 0}, "refresh window"),
        ({"ttl": 10, "lock_ttl": 10}, "lock_ttl"),
        ({"ttl": 10, "lock_ttl": 2}, "shorter than the refresh window"),
        ({"ttl": 10, "stale_ttl": -1}, "stale_ttl"),
        ({"ttl": 10, "ttl_jitter": 1.5}, "ttl_jitter"),
        ({"ttl": 10, "max_value_bytes": 0}, "max_value_bytes"),
    ],
)
def test_invalid_options_fail_at_decoration(cache: Refresher, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cache.loader(name=unique(), **options)


def test_a_loader_name_cannot_be_taken_twice(cache: Refresher) -> None:
    name = unique()
    cache.loader(ttl=5, name=name)(lambda: 1)
    with pytest.raises(ValueError, match="already used"):
        cache.loader(ttl=5, name=name)(lambda: 2)


def test_get_many_reads_in_one_round_trip_and_loads_only_the_misses(reading: Reading, cache: Refresher, r: redis.Redis) -> None:
    load, calls = counted(cache)
    # Once tracking is on, the first reads learn the loader's epoch and keep it: from then
    # on no read fetches it again (until it is invalidated).
    assert cache.tracker.wait_live(10)
    for n in (1, 2, 3):
        reading.get(load, n)
    r.config_resetstat()
    assert reading.get_many(load, [1, 2, 3]) == [{"id": n, "n": n} for n in (1, 2, 3)]
    stats = r.info("commandstats")
    assert stats["cmdstat_mget"]["calls"] == 1 and "cmdstat_get" not in stats
    assert reading.get_many(load, [3, 4, (5, True)]) == [{"id": 3, "n": 3}, {"id": 4, "n": 4}, {"id": 5, "n": 5}]
    assert calls[3:] == [(4, False), (5, True)]
    assert reading.get_many(load, []) == []
