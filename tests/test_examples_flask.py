"""examples/flask_app under gunicorn with three forked workers, driven over HTTP, next to
a real refresh worker: a cold stampede costs one origin call across the three processes,
and each of them publishes the refreshes its reads ask for, although the app, its
Refresher and a running publishing thread were made in gunicorn's master before the fork
(`--preload`, tests/support/preforked.py)."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
import redis

from examples.flask_app.loaders import ORIGIN_CALLS, load_user
from examples.userdb import USERS
from refresher.envelope import Envelope
from tests.support.ageing import into_window
from tests.support.servers import RedisServer, WorkerProcess
from tests.support.webapps import WRITTEN, AppServer, Deployment, example_env, gunicorn, stampede

PROCESSES = 3
COLD_USER = 42
READERS = 60
MAX_KEYS = 40  # in-window reads of fresh keys until every process has served one


class Site(Deployment):
    def __init__(self, server: AppServer, worker: WorkerProcess, r: redis.Redis) -> None:
        super().__init__(worker, r, ORIGIN_CALLS)
        self.server = server


@pytest.fixture(scope="module")
def site(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = example_env(redis_server.url, tmp_path_factory.mktemp("flask") / "users.sqlite3",
                      EXAMPLES_QUERY_SECONDS="0.2")
    r = redis.Redis.from_url(redis_server.url)
    server = gunicorn("tests.support.preforked:app", env, workers=PROCESSES)
    try:  # gunicorn starts while the worker does
        worker = WorkerProcess(redis_server.url, loaders="examples.flask_app.loaders", extra_env=env).start()
        try:
            yield Site(server.wait_ready(), worker, r)
        finally:
            worker.stop()
    finally:
        server.stop()
        r.close()


def test_a_cold_stampede_over_three_forked_processes_makes_one_origin_call(site: Site) -> None:
    before = site.origin_calls()
    answers, _ = stampede(site.server.url, f"/users/{COLD_USER}", READERS)
    assert [(a.status, a.body) for a in answers] == [(200, USERS[COLD_USER - 1])] * READERS
    assert site.origin_calls() - before == 1
    # Sync workers serve one request at a time: while one loads, the others wait on the
    # lock's signal channel (across processes), so more than one process answered.
    served_by = {a.served_by for a in answers}
    assert len(served_by) >= 2 and None not in served_by, served_by
    print(f"\n{READERS} reads, 1 origin call, answered by {len(served_by)} processes")


def test_every_forked_process_publishes_the_refreshes_it_asks_for(site: Site) -> None:
    """Reads of fresh keys, each put into its refresh window and read once more, until
    every gunicorn process has made such a read: each must reach the worker as a task."""
    origin, written = site.origin_calls(), site.written()
    aged: dict[int, Envelope] = {}  # user -> the value its in-window read saw
    served: dict[str, list[int]] = {}  # process -> users it read in their window
    with httpx.Client(base_url=site.server.url, timeout=30) as client:
        for user in range(1, MAX_KEYS + 1):
            assert client.get(f"/users/{user}").json() == USERS[user - 1]  # fresh (user 1: loaded by the master)
            aged[user] = into_window(site.r, load_user.keys(user))
            answer = client.get(f"/users/{user}")  # served at once; asks for a refresh
            assert answer.json() == USERS[user - 1]
            served.setdefault(answer.headers["X-Served-By"], []).append(user)
            if len(served) == PROCESSES:
                break
    assert len(served) == PROCESSES, f"in-window reads by {len(served)} processes only: {served}"
    assert site.worker.log is not None
    site.worker.log.wait_for(WRITTEN, count=written + len(aged))
    for user, seen in aged.items():  # each was rewritten by its refresh
        assert Envelope.from_bytes(site.r.get(load_user.keys(user).value) or b"").version != seen.version
    loads = len(aged) - 1  # user 1 was loaded by gunicorn's master
    assert site.origin_calls() - origin == loads + len(aged)  # a load, then a refresh, per user
    print(f"\nin-window reads per process: { {pid: len(users) for pid, users in served.items()} }; "
          f"{len(aged)} refreshes written by the worker")
