"""What refresher takes from a user's Celery app and what it adds to one: configure() adds
refresher's worker settings and tasks and leaves the app's own; autodiscovery finds the
tasks; a client built with celery_app= publishes with the app's TLS settings (a client
certificate the broker demands)."""

from __future__ import annotations

import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import redis
from celery import Celery

import refresher.worker
from refresher import Refresher
from refresher.worker.settings import WORKER_SETTINGS
from tests.support.ageing import into_window
from tests.support.servers import ROOT
from tests.support.tls import tls_redis


def test_configure_adds_what_refresher_needs_and_keeps_the_apps_own_settings() -> None:
    app = Celery("proj", include=["proj.tasks"], set_as_current=False)
    app.conf.update(accept_content=["pickle"], task_serializer="pickle", result_backend="redis://127.0.0.1:9/1",
                    task_routes={"proj.*": {"queue": "proj"}}, task_default_queue="proj", task_acks_late=True)
    for _ in range(2):  # twice: nothing added twice
        assert refresher.worker.configure(app) is app
    assert {name: app.conf[name] for name in WORKER_SETTINGS} == WORKER_SETTINGS
    assert WORKER_SETTINGS["worker_consumer"] == "refresher.worker.consumer:Consumer"
    assert app.conf.include == ["proj.tasks", "refresher.tasks"]
    assert app.conf.accept_content == ["pickle", "json"]  # widened, never narrowed
    assert (app.conf.task_serializer, app.conf.result_backend, app.conf.task_routes, app.conf.task_default_queue,
            app.conf.task_acks_late) == ("pickle", "redis://127.0.0.1:9/1", {"proj.*": {"queue": "proj"}}, "proj", True)
    app.close()


FIND = """
from celery import Celery
app = Celery("proj", set_as_current=False)
print(sorted(name for name in app.tasks if name.startswith("refresher.")))
app.autodiscover_tasks(["refresher"], force=True)
print(sorted(name for name in app.tasks if name.startswith("refresher.")))
"""


def test_autodiscover_tasks_finds_the_refresh_tasks_under_their_names() -> None:
    done = subprocess.run([sys.executable, "-c", FIND], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['refresher.refresh', 'refresher.refresh_many']"]


def test_a_client_publishes_with_its_apps_tls_settings(tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    """The broker demands a client certificate, which only the app's broker_use_ssl names:
    a publish that ignored the app's settings would be refused at the handshake."""
    tls = tls_redis(tmp_path, client_auth=True)
    app = Celery("tls", broker=tls.url, set_as_current=False)
    app.conf.broker_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(tls.cert),
                               "ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
    cache = Refresher(redis_url, celery_app=app, namespace="tls-" + uuid.uuid4().hex[:8], queue="tls-refresh")

    @cache.loader(ttl=60, name=f"{cache.namespace}.double")
    def double(n: int) -> int:
        return 2 * n

    queue = redis.Redis.from_url(tls.url, ssl_cert_reqs="required", ssl_ca_certs=str(tls.cert),
                                 ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key))
    try:
        assert double.get(4) == 8
        into_window(r, double.keys(4))
        assert double.get(4) == 8  # asks for a refresh
        assert cache.flush()
        assert queue.llen("tls-refresh") == 1
        assert cache.stats["refresh_enqueued"] == 1
    finally:
        queue.close()
        cache.close()
        app.close()
        tls.server.stop()
