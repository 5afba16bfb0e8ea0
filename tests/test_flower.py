"""Flower, as an operator sees it: a real `celery -A workers flower` with basic auth next to
a real worker started with -E. Refresh tasks show as the loader call they refresh, such as
`tests.windowed(3)`, with their state and result: SUCCESS with the outcome (`written`,
`fresh`, `deduplicated`), or FAILURE with the exception of a failed load, a rejected task or
a version mismatch; the API refuses anyone without
the password.
Started without good credentials it refuses to start (refresher/ops/flower.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

import refresher
from refresher import TaskRejected
from refresher.io.broker import REFRESH_TASK
from refresher.core.calls import call_repr
from refresher.ops.cli.warm import enqueue
from refresher.core.keys import tagged
from tests.support import loaders
from tests.support.ageing import expire_in, into_window
from refresher.ops.flower import INSECURE_LOCAL
from tests.support.servers import ROOT, WorkerProcess, free_port
from tests.support.sockets import listening_addresses
from tests.support.webapps import AppServer
from tests.support.webapps import flower as start_flower

AUTH = "ops:correct-horse"


@pytest.fixture
def flower(redis_url: str) -> Iterator[AppServer]:
    running = start_flower(redis_url, AUTH).wait_ready(30)
    yield running
    running.stop()


def get(flower: AppServer, path: str, auth: str | None = AUTH, header: str | None = None) -> tuple[int, bytes]:
    """(HTTP status, body), sending `auth` (user:password) or a raw Authorization `header`."""
    request = urllib.request.Request(flower.url + path)
    if auth is not None:
        header = "Basic " + base64.b64encode(auth.encode()).decode()
    if header is not None:
        request.add_header("Authorization", header)
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
        failing_calls = loaders.calls("failing")
        assert loaders.failing.get(5) == 10  # served, and its refresh will fail at the origin
        assert loaders.cache.publisher.flush()
        enqueue(loaders.windowed, loaders.windowed.call((4,), {}))  # `refresher warm`

        def send(name: str, n: int, *fields: Any) -> None:  # a refresh task sent by hand, shown as its call
            loaders.cache.publisher.app.send_task(REFRESH_TASK, args=[name, [n], {}, *fields],
                                                  queue=loaders.cache.queue, argsrepr=f"{name}({n})")

        send("nobody.here", 1, time.time())
        send("tests.windowed", 6, time.time(), None, 9)  # from a reader of the loader's version 9
        asked = time.time()
        loaders.windowed.invalidate(8)
        loaders.windowed.get(8)  # written after the task below was asked for: the task finds it fresh
        send("tests.windowed", 8, asked, None)
        lock = loaders.windowed.keys(7).lock
        r.set(lock, "another-load", px=30_000)  # a load of the key under way: the task finds its lock held
        send("tests.windowed", 7, time.time(), None)
        tasks = poll(lambda: api(flower, "/api/tasks")[1],
                     lambda found: sorted(t["state"] for t in found.values()) == ["FAILURE"] * 3 + ["SUCCESS"] * 4,
                     "seven finished refresh tasks, three of them failed")
        by_state = {state: api(flower, f"/api/tasks?state={state}")[1] for state in ("SUCCESS", "FAILURE")}
        r.delete(lock)
    finally:
        worker.stop()
    assert worker.log is not None  # each failure logged briefly: refresher's line, Celery's one line, no traceback
    assert worker.log.count(r"refresh failed: RuntimeError: origin down for 5; serving the old value") == 1
    assert worker.log.count(r"raised expected: (RefreshFailed|TaskRejected)\(") == 3
    assert worker.log.count("Traceback") == 0
    shown = {task["args"]: task for task in tasks.values()}
    assert set(shown) == {"tests.failing(5)", "nobody.here(1)", *(f"tests.windowed({n})" for n in (3, 4, 6, 7, 8))}
    assert {task["name"] for task in tasks.values()} == {"refresher.refresh"}
    assert {task["kwargs"] for task in tasks.values()} == {"{}"}
    for n, outcome in ((3, "written"), (4, "written"), (8, "fresh"), (7, "deduplicated")):
        done = shown[f"tests.windowed({n})"]
        assert (done["state"], done["result"], done["exception"]) == ("SUCCESS", repr(outcome), None), n
    # A failing loader fails its task, naming the loader's exception, once: no Celery retry
    # (the key backs off instead, its old value still served).
    failed = shown["tests.failing(5)"]
    assert failed["state"] == "FAILURE" and failed["result"] is None
    assert failed["exception"] == "RefreshFailed('RuntimeError: origin down for 5')"
    assert failed["retries"] == 0 and loaders.calls("failing") == failing_calls + 1
    expire_in(r, loaders.failing.keys(5), 30_000)  # out of its window again, however long the steps above took
    assert loaders.failing.get(5) == 10  # the failed refresh left the old value to serve
    # A task no loader here can run is a failure too, saying why.
    refused = shown["nobody.here(1)"]
    assert refused["state"] == "FAILURE" and refused["exception"] == \
        'TaskRejected("rejected: no loader named \'nobody.here\' is registered in this process (check REFRESHER_LOADERS)")'
    # So is one for another version of the loader (a reader of a newer deploy): nothing written.
    mismatched = shown["tests.windowed(6)"]
    assert mismatched["state"] == "FAILURE" and mismatched["exception"] == \
        repr(TaskRejected("version_mismatch: the task is for version 9, this worker's loader is version None"))
    assert r.exists(loaders.windowed.keys(6).value) == 0
    # Flower's state filter (its Failed button and `state:FAILURE` search) finds exactly those.
    assert {task["args"] for task in by_state["FAILURE"].values()} == {"tests.failing(5)", "nobody.here(1)",
                                                                       "tests.windowed(6)"}
    assert {task["args"] for task in by_state["SUCCESS"].values()} == {f"tests.windowed({n})" for n in (3, 4, 7, 8)}


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


def flower_command(port: int, *options: str) -> list[str]:
    """`celery -A workers flower` as `make flower` runs it: no address, no --conf."""
    return [sys.executable, "-m", "celery", "-A", "workers", "flower", f"--port={port}", *options]


@pytest.mark.parametrize("env, options", [
    ({}, ()),
    ({"FLOWER_BASIC_AUTH": ""}, ()),  # what compose passed for an unset variable
    ({"FLOWER_BASIC_AUTH": "ops:eleven-char"}, ()),
    ({"FLOWER_BASIC_AUTH": AUTH + ","}, ()),  # an empty entry: `Basic =` would match it
    ({"FLOWER_BASIC_AUTH": ":twelve-chars"}, ()),
    ({INSECURE_LOCAL: "1"}, ("--address=0.0.0.0",)),
    ({"FLOWER_BASIC_AUTH": ""}, (f"--conf={ROOT / 'flowerconfig.py'}",)),  # the repository's config file
], ids=["unset", "empty", "short", "empty-entry", "no-user", "insecure-not-local", "repo-conf"])
def test_flower_refuses_to_start_without_good_credentials(
    redis_url: str, tmp_path: Path, env: dict[str, str], options: tuple[str, ...]
) -> None:
    """From any directory (here an empty one: the `workers` app names refresher's config file)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH" and k != INSECURE_LOCAL}
    done = subprocess.run(flower_command(port, *options), cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**clean, "REFRESHER_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), **env})
    assert done.returncode != 0
    assert "refresher: Flower refused to start" in done.stderr and "FLOWER_BASIC_AUTH=user:password" in done.stderr
    assert "correct-horse" not in done.stderr + done.stdout  # a password is never shown
    assert listening_addresses(port) == set()


def start_flower_here(redis_url: str, env: dict[str, str]) -> AppServer:
    """Flower with no --address: it must pick the loopback address itself."""
    port = free_port()
    flower = AppServer(flower_command(port), {"REFRESHER_REDIS_URL": redis_url, **env}, port,
                       rf"Visit me at http://127\.0\.0\.1:{port}")
    return flower.launch().wait_ready(30)


def test_with_good_credentials_flower_listens_on_loopback_and_refuses_empty_ones(redis_url: str) -> None:
    flower = start_flower_here(redis_url, {"FLOWER_BASIC_AUTH": AUTH})
    try:
        assert listening_addresses(flower.port) == {"127.0.0.1"}
        for path in ("/", "/api/workers", "/tasks"):
            for header in (None, "Basic =", "Basic Og==", "Basic " + base64.b64encode(b"ops:").decode()):
                assert get(flower, path, auth=None, header=header)[0] == 401, (path, header)
            assert get(flower, path, auth="ops:correct-horsE")[0] == 401
            assert get(flower, path)[0] == 200, path
    finally:
        flower.stop()


def test_the_insecure_local_opt_out_serves_loopback_only(redis_url: str) -> None:
    flower = start_flower_here(redis_url, {INSECURE_LOCAL: "1", "FLOWER_BASIC_AUTH": ""})
    try:
        assert listening_addresses(flower.port) == {"127.0.0.1"}
        assert get(flower, "/", auth=None)[0] == 200  # no password, as asked: local only
    finally:
        flower.stop()


def test_a_users_own_app_gets_the_readable_columns_from_the_documented_conf(redis_url: str, tmp_path: Path) -> None:
    """Flower for a user's own Celery app (tests/support/userproj, which never loads the
    `workers` app), started from an empty directory: with the documented
    `--conf="$(python -m refresher.ops.flower)"` its tasks page has the args, result and
    exception columns; with no config file (FLOWER_CONF at Flower's default name), only Flower's own."""
    conf = subprocess.run([sys.executable, "-m", "refresher.ops.flower"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()
    assert Path(conf).is_file() and Path(conf).is_relative_to(Path(refresher.__file__).parent)
    pages = {}
    for options in ((), (f"--conf={conf}",)):
        port = free_port()
        command = [sys.executable, "-m", "celery", "-A", "tests.support.userproj", "flower", f"--port={port}",
                   "--address=127.0.0.1", *options]
        env = {"USERPROJ_BROKER": redis_url, "FLOWER_BASIC_AUTH": AUTH, "FLOWER_CONF": "flowerconfig.py"}
        flower = AppServer(command, env, port, rf"Visit me at http://127\.0\.0\.1:{port}", cwd=tmp_path)
        try:
            pages[options != ()] = get(flower.launch().wait_ready(30), "/tasks")
        finally:
            flower.stop()
    assert pages[False][0] == pages[True][0] == 200
    assert b">args<" not in pages[False][1] and b">Result<" not in pages[False][1]  # Flower's defaults
    assert b">args<" in pages[True][1] and b">Result<" in pages[True][1] and b">Exception<" in pages[True][1]
