"""Flower, as an operator sees it: a real `celery -A workers flower` with basic auth next to
a real worker started with -E. Refresh tasks show as the loader call they refresh, such as
`tests.windowed(3)`, with their state and result; the API refuses anyone without the password."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import pytest
import redis

from refresher.calls import call_repr
from refresher.cli.warm import enqueue
from refresher.keys import tagged
from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.servers import WorkerProcess
from tests.support.webapps import AppServer
from tests.support.webapps import flower as start_flower

AUTH = "ops:correct-horse"


@pytest.fixture
def flower(redis_url: str) -> Iterator[AppServer]:
    running = start_flower(redis_url, AUTH).wait_ready(30)
    yield running
    running.stop()


def get(flower: AppServer, path: str, auth: str | None = AUTH) -> tuple[int, bytes]:
    """(HTTP status, body)."""
    request = urllib.request.Request(flower.url + path)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def api(flower: AppServer, path: str, auth: str | None = AUTH) -> tuple[int, Any]:
    """(HTTP status, the decoded JSON body, or None if refused)."""
    status, body = get(flower, path, auth)
    return status, json.loads(body) if status == 200 else None


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], what: str, seconds: float = 30.0) -> Any:
    """Ask Flower again every 0.1 s until `done`; fail with the last answer at the deadline."""
    deadline = time.monotonic() + seconds
    while not done(answer := fetch()):
        assert time.monotonic() < deadline, f"Flower never showed {what}; it last said {answer}"
        time.sleep(0.1)  # an HTTP API has nothing to wait on: this paces the polling
    return answer


def test_flower_shows_each_refresh_as_its_loader_call_state_and_result(
    flower: AppServer, r: redis.Redis, redis_url: str
) -> None:
    assert api(flower, "/api/tasks", auth=None)[0] == 401  # the API, and the pages, need the password
    assert get(flower, "/tasks", auth=None)[0] == 401
    status, page = get(flower, "/tasks")  # flowerconfig.py's columns: the call and its result
    assert status == 200 and b">args<" in page and b">Result<" in page, page
    assert api(flower, "/api/tasks", auth="ops:guess")[0] == 401
    assert api(flower, "/api/tasks") == (200, {})
    worker = WorkerProcess(redis_url, flags=())  # -E, heartbeat on, as the README says
    worker.start()
    try:
        # Flower sees a worker once it receives the worker's events: then no task event is lost.
        poll(lambda: api(flower, "/api/workers?status=true"), lambda a: a[0] == 200 and True in a[1].values(),
             "the worker online")
        loaders.windowed.get(3)
        into_window(r, loaders.windowed.keys(3))
        loaders.windowed.get(3)  # in the window: a reader publishes a refresh
        loaders.failing.set(5, 10)
        into_window(r, loaders.failing.keys(5))
        assert loaders.failing.get(5) == 10  # served, and its refresh will fail at the origin
        assert loaders.cache.publisher.flush()
        enqueue(loaders.windowed, loaders.windowed.call((4,), {}))  # `refresher warm`
        tasks = poll(lambda: api(flower, "/api/tasks")[1],
                     lambda found: [t["state"] for t in found.values()].count("SUCCESS") == 3,
                     "three finished refresh tasks")
    finally:
        worker.stop()
    shown = {task["args"]: task for task in tasks.values()}
    assert set(shown) == {"tests.windowed(3)", "tests.failing(5)", "tests.windowed(4)"}
    assert {task["name"] for task in tasks.values()} == {"refresher.refresh"}
    assert {task["kwargs"] for task in tasks.values()} == {"{}"}
    assert shown["tests.windowed(3)"]["result"] == "'written'"
    assert shown["tests.windowed(4)"]["result"] == "'written'"
    # A failing loader is not a failed task: the old value stays served and the key backs
    # off (no Celery retry), and the result says so; the exception type is in the worker's log.
    assert shown["tests.failing(5)"]["result"] == "'failed'" and shown["tests.failing(5)"]["exception"] is None


def test_a_call_reads_as_python_whatever_its_arguments() -> None:
    from datetime import date
    from decimal import Decimal
    from uuid import UUID

    wire = tagged([[date(2024, 5, 1), UUID(int=5)], {"region": "eu", "at": Decimal("1.50")}], dict)
    assert call_repr("report", *wire) == \
        "report(datetime.date(2024, 5, 1), UUID('00000000-0000-0000-0000-000000000005'), region='eu', at=Decimal('1.5'))"
    assert call_repr("user_profile", [2], {}) == "user_profile(2)"
    assert call_repr("by_tier", [{"$enum": ["shop.Tier", "GOLD"]}], {}) == "by_tier({'$enum': ['shop.Tier', 'GOLD']})"
    assert len(call_repr("big", ["x" * 5000], {})) == 1024  # as long as Celery's own argsrepr at most
