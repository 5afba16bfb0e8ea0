"""TLS and AUTH/ACL for both the cache and the broker, against real redis-servers."""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import redis

from refresher import Refresher
from refresher.errors import acl_rule
from tests.conftest import TaskLog
from tests.support.ageing import into_window
from tests.support.inprocess import in_process_worker
from tests.support.servers import RedisServer
from tests.support.tls import tls_redis


def exercise(cache: Refresher, admin: redis.Redis, tasks_done: TaskLog) -> None:
    """Miss, hit, refresh by a worker, set and invalidate: every command the library uses."""
    calls: list[int] = []

    @cache.loader(ttl=60, name="sec." + uuid.uuid4().hex[:8])
    def load(n: int) -> dict[str, int]:
        calls.append(n)
        return {"n": n, "version": len(calls)}

    assert load.get(1) == {"n": 1, "version": 1}
    assert load.get(1) == {"n": 1, "version": 1}
    into_window(admin, load.keys(1))
    assert load.get(1) == {"n": 1, "version": 1}
    assert tasks_done.wait(1) == ["written"]
    assert load.get(1) == {"n": 1, "version": 2}
    load.set(1, {"n": 1, "version": 99})
    assert load.get(1) == {"n": 1, "version": 99}
    load.invalidate(1)
    assert load.get(1) == {"n": 1, "version": 3}


def waited_for(cache: Refresher, other: Refresher) -> None:
    """Two Refreshers miss one key at once: one loads, the other waits on the key's signal
    channel (SSUBSCRIBE) and gets the value it wrote."""
    name, release = "sec.wait." + uuid.uuid4().hex[:8], threading.Event()
    loads: list[int] = []

    def slow(n: int) -> int:
        loads.append(n)
        release.wait(5)
        return n * 10

    first, second = (c.loader(ttl=60, name=name, tags=lambda n: ["sec"])(slow) for c in (cache, other))
    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(first.get, 7)
        while not loads:
            time.sleep(0.005)
        waiter = pool.submit(second.get, 7)
        time.sleep(0.1)
        release.set()
        assert (leader.result(5), waiter.result(5), loads) == (70, 70, [7])
    assert other.stats["waited"] == 1


@pytest.fixture
def acl_server() -> Iterator[RedisServer]:
    server = RedisServer(None, "--requirepass", "admin-secret")
    server.start()
    admin = redis.Redis(port=server.port, password="admin-secret")
    # The cache user has exactly the documented rule: the namespace's keys and channels,
    # the tracking channel, and the commands refresher runs (refresher.errors.acl_rule).
    admin.execute_command("ACL", "SETUSER", "cache", "on", ">cache-secret", "resetchannels", *acl_rule())
    admin.acl_setuser("broker", enabled=True, passwords=["+broker-secret"], keys=["*"], channels=["*"],
                      commands=["+@all"])
    admin.close()
    yield server
    server.stop()


def test_acl_users_restricted_to_the_namespace_work_end_to_end(acl_server: RedisServer, tasks_done: TaskLog) -> None:
    base = f"127.0.0.1:{acl_server.port}/0"
    cache = Refresher(f"redis://cache:cache-secret@{base}", f"redis://broker:broker-secret@{base}", near_cache=100)
    admin = redis.Redis(port=acl_server.port, password="admin-secret")
    with in_process_worker(f"redis://broker:broker-secret@{base}"):
        exercise(cache, admin, tasks_done)
    other = Refresher(f"redis://cache:cache-secret@{base}", f"redis://broker:broker-secret@{base}")
    waited_for(cache, other)
    cache.invalidate_tag("sec")
    assert cache.tracker.wait_live(2)  # CLIENT TRACKING was granted: the near cache is not bypassed
    # the restriction is real: the cache user cannot write outside its namespace
    with pytest.raises(redis.exceptions.NoPermissionError):
        cache.redis.set("elsewhere", 1)
    with pytest.raises(redis.exceptions.AuthenticationError):
        Refresher(f"redis://cache:wrong@{base}").redis.ping()
    cache.close()
    admin.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisServer, str]]:
    made = tls_redis(tmp_path)
    yield made.server, f"{made.url}?ssl_cert_reqs=required&ssl_ca_certs={made.cert}"
    made.server.stop()


def test_rediss_urls_work_for_cache_and_broker(tls_server: tuple[RedisServer, str], tasks_done: TaskLog) -> None:
    _, url = tls_server
    cache = Refresher(url)  # the broker defaults to the same rediss:// URL
    admin = redis.Redis.from_url(url)
    with in_process_worker(url):
        exercise(cache, admin, tasks_done)
    assert issubclass(cache.redis.connection_pool.connection_class, redis.SSLConnection)
    cache.close()
    admin.close()


@pytest.mark.parametrize("verified", [True, False], ids=["ca-given", "no-tls-parameters"])
def test_a_rediss_broker_url_without_tls_parameters_verifies_the_certificate(tmp_path: Path, verified: bool) -> None:
    """kombu alone takes `rediss://host` as CERT_NONE: the publish would go to a server whose
    self-signed certificate nobody checked. refresher's publisher verifies it against the
    system's CAs (which do not hold this one), so the publish fails; given the CA it goes."""
    made = tls_redis(tmp_path)
    with_ca = f"{made.url}?ssl_cert_reqs=required&ssl_ca_certs={made.cert}"
    cache = Refresher(with_ca, broker_url=with_ca if verified else made.url, namespace="tls" + uuid.uuid4().hex[:6])
    admin = redis.Redis.from_url(with_ca)
    try:

        @cache.loader(ttl=60, name="sec.tls." + uuid.uuid4().hex[:8])
        def load(n: int) -> int:
            return n

        assert load.get(1) == 1
        into_window(admin, load.keys(1))
        assert load.get(1) == 1  # served, and a refresh published in the background
        deadline = time.monotonic() + 10
        while not (cache.stats["refresh_enqueued"] or cache.stats["publish_failed"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (cache.stats["refresh_enqueued"], cache.stats["publish_failed"]) == ((1, 0) if verified else (0, 1))
        queued = admin.llen(cache.queue)
        assert queued == (1 if verified else 0)
    finally:
        cache.close()
        admin.close()
        made.server.stop()


SECURITY_PAGE = Path(__file__).parent.parent / "docs" / "security.md"


def test_the_acl_rule_on_the_security_page_is_the_one_tested() -> None:
    """The page's `ACL SETUSER cache ...` line is what operators copy: it must be the rule
    the end-to-end test above grants (refresher.errors.acl_rule), not a stale copy."""
    shown = [line.strip() for line in SECURITY_PAGE.read_text().splitlines() if line.strip().startswith("ACL SETUSER cache ")]
    assert shown == ["ACL SETUSER cache on >PASSWORD resetchannels " + " ".join(acl_rule())]


def test_every_test_the_security_page_names_exists() -> None:
    """Each defence on the page points to the test that proves it: a renamed or deleted
    test would leave a defence with no proof behind it."""
    named = set(re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", SECURITY_PAGE.read_text()))
    assert len(named) > 20
    missing = [(path, test) for path, test in named if not (SECURITY_PAGE.parent.parent / path).is_file()
               or (test and not re.search(rf"^(async )?def {test}\(", (SECURITY_PAGE.parent.parent / path).read_text(), re.M))]
    assert missing == []
