"""refresher inside a user's own Celery project (tests/support/userproj): one worker,
`celery -A proj worker -Q celery,refresher`, runs the project's task and refresher's, each
on the project's broker, and a Refresher(celery_app=app) publishes through that app. The
broker is a plain Redis (the project includes refresher.tasks, nothing more) or a
Sentinel-managed one (configured through the app's own settings, with
refresher.worker.configure)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Iterator, NamedTuple

import pytest
import redis
from celery import Celery

from refresher import Loader, Refresher
from refresher.core.options import Options
from tests.support.ageing import into_window
from tests.support.sentinel import SERVICE, SentinelServers
from tests.support.servers import ROOT, RedisServer, WorkerProcess
from tests.support.webapps import WRITTEN

pytestmark = pytest.mark.standalone_only  # the project's loader counts its calls on the plain Redis


class Project(NamedTuple):
    env: dict[str, str]
    app: Celery  # the project's app as its web processes build it
    backend: redis.Redis  # where its task results land


@pytest.fixture(params=["redis", "sentinel"])
def project(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Project]:
    """The project's settings for one broker layout, and its app built from them."""
    env = {"USERPROJ_NAMESPACE": f"userproj-{uuid.uuid4().hex[:8]}"}
    if request.param == "redis":
        servers: RedisServer | SentinelServers = RedisServer()
        servers.start()
        env.update(USERPROJ_BROKER=servers.url, USERPROJ_BACKEND=servers.url[:-1] + "1")
        backend_port = servers.port
    else:
        servers = SentinelServers()
        servers.start()
        env.update(USERPROJ_BROKER=";".join(f"sentinel://127.0.0.1:{port}" for port in servers.ports),
                   USERPROJ_MASTER=SERVICE, USERPROJ_CONFIGURE="1",
                   USERPROJ_BACKEND=f"redis://127.0.0.1:{servers.master.port}/1")
        backend_port = servers.master.port
    app = Celery("userproj-web", broker=env["USERPROJ_BROKER"], backend=env["USERPROJ_BACKEND"], set_as_current=False)
    if "USERPROJ_MASTER" in env:
        app.conf.broker_transport_options = {"master_name": SERVICE}
    backend = redis.Redis(port=backend_port, db=1)
    yield Project(env, app, backend)
    backend.close()
    app.close()
    servers.stop()


@pytest.fixture
def project_worker(project: Project, redis_server: RedisServer) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(redis_server.url, loaders="", extra_env=project.env, app="tests.support.userproj",
                           queues="celery,refresher").start()
    yield worker
    worker.discard()


def reading_side(project: Project, control: redis.Redis) -> tuple[Refresher, Loader[..., dict[str, int]]]:
    """The project's loader as its web processes hold it (tests/support/userproj/loaders.py),
    published through the project's app. Not registered here: the worker has its own."""
    namespace = project.env["USERPROJ_NAMESPACE"]
    cache = Refresher(celery_app=project.app, namespace=namespace)

    def version(n: int) -> dict[str, int]:
        return {"n": n, "version": int(control.incr(f"{namespace}:test:loads"))}

    return cache, Loader(cache, version, "userproj.version", Options(ttl=60).resolved())


@pytest.fixture
def control(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The session's Redis: the cache, and the tests' counters."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_one_worker_runs_the_projects_task_and_refreshes_its_loader(
    project: Project, project_worker: WorkerProcess, control: redis.Redis
) -> None:
    result = project.app.send_task("userproj.add", args=[2, 3])
    assert result.get(timeout=20) == 5
    assert project.backend.exists(f"celery-task-meta-{result.id}")  # the project's result backend

    refreshed_ahead_by(project_worker, project, control)
    assert project_worker.log is not None
    project_worker.log.wait_for(r"refresher: worker serving queues=celery,refresher namespaces=userproj-\S+ "
                                r"loaders=userproj\.version")
    assert project_worker.log.count(NOT_CONSUMED) == 0


NOT_CONSUMED = "which it does not consume"


@pytest.mark.parametrize("project", ["redis"], indirect=True)
def test_a_worker_that_does_not_consume_its_loaders_queue_says_so_at_start(project: Project,
                                                                          redis_server: RedisServer) -> None:
    """`-Q celery` alone: the refreshes would pile up unread, so the worker warns at start."""
    worker = WorkerProcess(redis_server.url, loaders="", extra_env=project.env, app="tests.support.userproj",
                           queues="celery").start()
    try:
        assert worker.log is not None
        worker.log.wait_for(r"refresher: this worker's loaders publish to refresher, " + NOT_CONSUMED
                            + r" \(add -Q celery,refresher\)")
    finally:
        worker.discard()


def test_the_ready_made_worker_reads_the_same_celery_settings_module(project: Project, control: redis.Redis,
                                                                    redis_server: RedisServer) -> None:
    """`celery -A refresher.worker worker` with REFRESHER_CELERY_CONFIG: the project's
    broker settings (a Sentinel's master_name, say) in one module, for every process."""
    env = {**project.env, "REFRESHER_CELERY_CONFIG": "tests.support.userproj.celeryconfig"}
    worker = WorkerProcess(redis_server.url, loaders="tests.support.userproj.loaders", extra_env=env,
                           app="refresher.worker").start()
    try:
        refreshed_ahead_by(worker, project, control)
    finally:
        worker.discard()


def refreshed_ahead_by(worker: WorkerProcess, project: Project, control: redis.Redis) -> None:
    """A value read in its window is refreshed by `worker` before it expires, the task
    published through the project's app."""
    cache, loader = reading_side(project, control)
    try:
        assert loader.get(1) == {"n": 1, "version": 1}  # a miss, loaded here
        into_window(control, loader.keys(1))
        assert loader.get(1) == {"n": 1, "version": 1}  # served at once; a refresh asked for
        assert worker.log is not None
        worker.log.wait_for(WRITTEN)
        assert loader.get(1) == {"n": 1, "version": 2}  # refreshed by the worker
        # a worker with no near cache that reads a few keys tracks nothing: no tracking
        # connection, no PINGs (it would start at 10 epoch fetches a second)
        assert worker.log.count("tracking writes under") == 0
        assert worker.log.count("near cache on") == 0
        assert control.pttl(loader.keys(1).value) > 0  # ahead of expiry
        assert cache.stats["refresh_enqueued"] == 1
    finally:
        cache.close()


IMPORT_ALL = """
import importlib, pkgutil
from celery import Celery, current_app
mine = Celery("mine")  # made current, as Celery apps are by default
import refresher
for module in pkgutil.walk_packages(refresher.__path__, "refresher."):
    if module.name != "refresher.ops.flowerconfig":  # Flower's config file: Flower executes it, nobody imports it
        importlib.import_module(module.name)
import refresher.worker, workers
refresher.worker.app  # the ready-made app, built
from refresher import Refresher
client = Refresher("redis://127.0.0.1:9/0")  # never connects here
client.publisher.app  # the client's own publishing app (no celery_app=), built
client.close()
assert current_app._get_current_object() is mine, current_app
print("kept", current_app.main)
"""


def test_importing_refresher_leaves_the_current_app_as_the_user_set_it() -> None:
    """Every module imported, the ready-made app and a client's own publishing app built:
    the app the user made stays current (its shared_tasks keep its broker)."""
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "kept mine"
