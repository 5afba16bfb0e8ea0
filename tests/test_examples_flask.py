"""examples/flask_app under gunicorn with three forked workers, driven over HTTP, next to
a real refresh worker: a cold stampede costs one origin call across the three processes,
and each of them publishes the refreshes its reads ask for, although the app, its
Refresher and a running publishing thread were made in gunicorn's master before the fork
(`--preload`, tests/support/preforked.py). The app's /metrics (multiprocess mode, across
the three) and the worker's (REFRESHER_METRICS_PORT) count what the traffic did."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
import redis

from examples.flask_app.loaders import ORIGIN_CALLS, load_user
from examples.userdb import USERS
from refresher.core.envelope import Envelope
from tests.support.ageing import into_window
from tests.support.metrics import Scrape, grew
from tests.support.servers import ROOT, RedisServer, WorkerProcess, free_port
from tests.support.webapps import WRITTEN, AppServer, Deployment, example_env, gunicorn, stampede

PROCESSES = 3
COLD_USER = 42
READERS = 60
MAX_KEYS = 40  # in-window reads of fresh keys until every process has served one


class Site(Deployment):
    def __init__(self, server: AppServer, worker: WorkerProcess, r: redis.Redis, worker_metrics: str) -> None:
        super().__init__(worker, r, ORIGIN_CALLS)
        self.server = server
        self.worker_metrics = worker_metrics


@pytest.fixture(scope="module")
def site(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    env = example_env(redis_server.url, tmp_path_factory.mktemp("flask") / "users.sqlite3",
                      EXAMPLES_QUERY_SECONDS="0.2")
    r = redis.Redis.from_url(redis_server.url)
    metrics_dir = tmp_path_factory.mktemp("prometheus")  # the app's gunicorn workers' metric files
    server = gunicorn("tests.support.preforked:app", {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                      PROCESSES, "-c", str(ROOT / "examples/flask_app/gunicorn.conf.py"))
    try:  # gunicorn starts while the worker does
        port = free_port()
        worker = WorkerProcess(redis_server.url, loaders="examples.flask_app.loaders", extra_env={
            **env, "REFRESHER_METRICS_PORT": str(port), "REFRESHER_METRICS_ADDR": "127.0.0.1"}).start()
        try:
            yield Site(server.wait_ready(), worker, r, f"http://127.0.0.1:{port}/metrics")
        finally:
            worker.discard()
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


def test_metrics_count_the_reads_loads_and_refreshes_of_every_process(site: Site) -> None:
    """One miss, then a stampede of hits over the three gunicorn processes, then one read in
    the refresh window: the app's /metrics adds up the three processes' counts exactly, and
    the worker's counts its one refresh."""
    user, hits, loader = 43, 30, load_user.name
    app, worker = f"{site.server.url}/metrics", site.worker_metrics
    app_before, worker_before, written = Scrape(app), Scrape(worker), site.written()
    with httpx.Client(base_url=site.server.url, timeout=30) as client:
        assert client.get(f"/users/{user}").json() == USERS[user - 1]  # the miss
        answers, _ = stampede(site.server.url, f"/users/{user}", hits)
        assert [(a.status, a.body) for a in answers] == [(200, USERS[user - 1])] * hits
        assert len({a.served_by for a in answers}) >= 2  # counted in several processes
        into_window(site.r, load_user.keys(user))
        assert client.get(f"/users/{user}").json() == USERS[user - 1]  # asks for the refresh
    assert site.worker.log is not None
    site.worker.log.wait_for(WRITTEN, count=written + 1)
    app_after, worker_after = Scrape(app), Scrape(worker)

    def reads(outcome: str) -> float:
        return grew(app_before, app_after, "refresher_reads_total", loader=loader, outcome=outcome)

    assert {o: reads(o) for o in ("miss", "hit", "refresh_asked", "coalesced", "error")} == {
        "miss": 1, "hit": hits, "refresh_asked": 1, "coalesced": 0, "error": 0}
    assert grew(app_before, app_after, "refresher_loads_total", loader=loader, result="ok") == 1
    assert grew(app_before, app_after, "refresher_lock_waits_total", loader=loader) == 0  # one read loaded, alone
    assert grew(app_before, app_after, "refresher_load_duration_seconds_count", loader=loader) == 1
    assert grew(app_before, app_after, "refresher_load_duration_seconds_sum", loader=loader) >= 0.2  # the query
    assert grew(app_before, app_after, "refresher_load_duration_seconds_bucket", loader=loader, le="0.1") == 0
    assert app_after.value("refresher_publish_breaker_open") == 0
    assert grew(worker_before, worker_after, "refresher_refresh_tasks_total", loader=loader, outcome="written") == 1
    assert grew(worker_before, worker_after, "refresher_loads_total", loader=loader, result="ok") == 1
    assert grew(worker_before, worker_after, "refresher_load_duration_seconds_count", loader=loader) == 1
    assert grew(worker_before, worker_after, "refresher_reads_total", loader=loader, outcome="hit") == 0
