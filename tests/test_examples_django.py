"""examples/django_app through Django's test client, in this process, on a real SQLite
file and the session's Redis: a cold view read loads once, the next one is a hit; a
committed save invalidates the cached product and a rolled-back one does not; and the
project's own worker (`celery -A examples.django_app.proj worker -Q celery,<queue>`, no
REFRESHER_LOADERS, Django set up by Celery) runs both refresher's tasks and the catalog's.

Django's settings are the one configuration: every process here (this one, the worker,
Flower, the CLI) has REFRESHER_REDIS_URL, REFRESHER_BROKER_URL and REFRESHER_QUEUE set
to a Redis nobody listens on and a queue nobody reads, so a part that read them instead
of the settings would fail."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx

import pytest
import redis

from tests.support.ageing import into_window
from tests.support.metrics import Scrape
from tests.support.servers import ROOT, RedisServer, WorkerProcess, free_port
from tests.support.webapps import WRITTEN, gunicorn, stampede
from tests.support.webapps import flower as start_flower
from tests.test_flower import AUTH, api, poll

SETTINGS = "examples.django_app.proj.settings"
SUCCEEDED = r"catalog\.reprice\[\S+\] succeeded"
LOADER = "examples.django_app.catalog.loaders.product"


class Site:
    def __init__(self, env: dict[str, str], r: redis.Redis) -> None:
        from django.test import Client

        from examples.django_app.catalog import loaders

        self.env, self.r, self.loaders, self.client = env, r, loaders, Client()

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.get(path)
        return response.status_code, response.json() if response.status_code == 200 else None

    def origin_calls(self) -> int:
        return int(self.r.get(self.loaders.ORIGIN_CALLS) or 0)


@pytest.fixture(scope="module")
def site(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Django set up once for this process, from the example's settings module with a
    database file of its own; `migrate` creates and seeds the catalog."""
    import django
    from django.core.management import call_command

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = {"CATALOG_REDIS_URL": redis_server.url, "CATALOG_QUEUE": f"catalog-{secrets.token_hex(4)}",
           "EXAMPLES_DB": str(tmp_path_factory.mktemp("django") / "catalog.sqlite3"), "DJANGO_SETTINGS_MODULE": SETTINGS,
           "REFRESHER_REDIS_URL": nowhere, "REFRESHER_BROKER_URL": nowhere, "REFRESHER_QUEUE": "nobody-reads-this"}
    r = redis.Redis.from_url(redis_server.url)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        django.setup()
        call_command("migrate", verbosity=0)
        yield Site(env, r)
    r.close()


def test_a_cold_view_read_loads_once_and_the_next_is_a_hit(site: Site) -> None:
    origin, stats = site.origin_calls(), site.loaders.cache.stats.snapshot()
    assert site.get("/products/3") == (200, {"id": 3, "name": "product 3", "price_cents": 300})
    assert site.get("/products/3") == (200, {"id": 3, "name": "product 3", "price_cents": 300})
    after = site.loaders.cache.stats.snapshot()
    assert site.origin_calls() - origin == 1
    assert (after.get("load", 0) - stats.get("load", 0), after["hit"] - stats.get("hit", 0)) == (1, 1)
    assert site.get("/products/999") == (404, None)  # no such product: cached as None, answered 404
    scraped = Scrape(text=site.client.get("/metrics").content.decode())
    assert scraped.value("refresher_reads_total", loader=site.loaders.product.name, outcome="hit") >= 1


class Rollback(Exception):
    pass


def test_a_save_invalidates_once_committed_and_a_rollback_does_not(site: Site) -> None:
    from django.db import transaction

    from examples.django_app.catalog.models import Product

    assert site.get("/products/8")[1]["price_cents"] == 800
    origin = site.origin_calls()
    with transaction.atomic():
        changed = Product.objects.get(pk=8)
        changed.price_cents = 810
        changed.save()
        assert site.get("/products/8")[1]["price_cents"] == 800  # not committed: still the cached value
    assert site.get("/products/8")[1]["price_cents"] == 810  # committed: invalidated, loaded again
    assert site.origin_calls() - origin == 1
    with pytest.raises(Rollback), transaction.atomic():
        changed.price_cents = 1
        changed.save()
        raise Rollback
    assert site.get("/products/8")[1]["price_cents"] == 810  # rolled back: nothing invalidated
    assert site.origin_calls() - origin == 1


def test_a_delete_invalidates_once_committed(site: Site) -> None:
    from django.db import transaction

    from examples.django_app.catalog.models import Product

    assert site.get("/products/6")[0] == 200
    with transaction.atomic():
        Product.objects.get(pk=6).delete()
        assert site.get("/products/6")[0] == 200  # not committed: still the cached product
    assert site.get("/products/6") == (404, None)  # post_delete, after the commit


def test_the_projects_worker_runs_its_own_task_and_refreshes_what_a_view_read(site: Site) -> None:
    from examples.django_app.catalog.models import Product
    from examples.django_app.proj import celery_app

    flower = start_flower(site.env["REFRESHER_REDIS_URL"], AUTH, app="examples.django_app.proj", **site.env)
    worker = WorkerProcess(site.env["REFRESHER_REDIS_URL"], loaders="", extra_env=site.env,
                           app="examples.django_app.proj", queues="celery," + site.env["CATALOG_QUEUE"],
                           flags=())  # heartbeats on: Flower lists it
    del worker.env["DJANGO_SETTINGS_MODULE"]  # proj/celery.py names the settings, as Celery's Django layout does
    worker.start()
    assert worker.log is not None
    try:
        flower.wait_ready(30)
        poll(lambda: api(flower, "/api/workers?status=true"), lambda a: a[0] == 200 and True in a[1].values(),
             "the project's worker, on the broker Django's settings name")
        assert site.get("/products/7")[1]["price_cents"] == 700
        celery_app.send_task("catalog.reprice", args=[7, 777])  # a model save, in the worker
        worker.log.wait_for(SUCCEEDED)
        poll(lambda: api(flower, "/api/tasks")[1], lambda found: [(t["name"], t["state"]) for t in found.values()]
             == [("catalog.reprice", "SUCCESS")], "the project's task, as Flower saw it")
        assert site.get("/products/7")[1]["price_cents"] == 777  # invalidated when the worker committed

        origin = site.origin_calls()
        assert site.get("/products/5") == (200, {"id": 5, "name": "product 5", "price_cents": 500})
        Product.objects.filter(pk=5).update(price_cents=450)  # the cached value is now stale
        into_window(site.r, site.loaders.product.keys(5))
        assert site.get("/products/5")[1]["price_cents"] == 500  # served at once; a refresh is asked for
        worker.log.wait_for(WRITTEN)
        assert site.get("/products/5")[1]["price_cents"] == 450  # what the worker loaded
        assert site.origin_calls() - origin == 2
    finally:
        worker.discard()
        flower.stop()


def test_the_cli_sets_django_up_and_inspects_a_product_the_site_cached(site: Site) -> None:
    """`refresher inspect` in a Django project: DJANGO_SETTINGS_MODULE is enough (no
    REFRESHER_LOADERS) for it to set Django up and find the loaders where the site does,
    with the same settings (not the environment's REFRESHER_REDIS_URL)."""
    site.get("/products/4")
    env = {**os.environ, **site.env, "PYTHONPATH": str(ROOT), "REFRESHER_LOADERS": ""}
    done = subprocess.run([sys.executable, "-m", "refresher", "inspect", "examples.django_app.catalog.loaders.product",
                           "4", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert (state["state"], state["key"]) == ("fresh", site.loaders.product.keys(4).value)


def test_tags_are_invalidated_on_save_and_an_update_needs_invalidate_after_commit(site: Site) -> None:
    """invalidate_on(Model, tags=...) drops every loader's values with the tag; a
    QuerySet.update() sends no signal (the gap docs/django.md names), and
    invalidate_after_commit is the pattern for it."""
    import uuid

    from django.db import transaction

    from examples.django_app.catalog.models import Product
    from refresher.contrib.django import cache, invalidate_after_commit, invalidate_on

    @cache.loader(ttl=60, name=f"t.django.price.{uuid.uuid4().hex[:8]}", tags=lambda pk: [f"product:{pk}"])
    def price(pk: int) -> int:
        return Product.objects.get(pk=pk).price_cents

    invalidate_on(Product, tags=lambda saved: [f"product:{saved.pk}"])
    assert price.get(9) == 900
    with transaction.atomic():
        Product.objects.filter(pk=9).update(price_cents=901)
    assert price.get(9) == 900  # no signal, nothing invalidated
    with transaction.atomic():
        Product.objects.filter(pk=9).update(price_cents=902)
        invalidate_after_commit(lambda: cache.invalidate_tag("product:9"))
        assert price.get(9) == 900
    assert price.get(9) == 902
    saved = Product.objects.get(pk=9)
    saved.price_cents = 903
    saved.save()  # autocommit: invalidated at once
    assert price.get(9) == 903


def test_under_gunicorn_every_scrape_counts_the_reads_of_every_worker(redis_server: RedisServer, tmp_path: Path) -> None:
    """`gunicorn -w 2 examples.django_app.proj.wsgi` with PROMETHEUS_MULTIPROC_DIR: product
    reads answered by both workers (gunicorn's access log names each request's process),
    then scrapes until each worker has answered one; every scrape counts every read."""
    (tmp_path / "prometheus").mkdir()
    env = {"CATALOG_REDIS_URL": redis_server.url, "CATALOG_QUEUE": f"catalog-{secrets.token_hex(4)}",
           "EXAMPLES_DB": str(tmp_path / "catalog.sqlite3"), "DJANGO_SETTINGS_MODULE": SETTINGS,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    subprocess.run([sys.executable, "-m", "examples.django_app.manage", "migrate", "-v", "0"], cwd=ROOT, check=True,
                   timeout=120, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    server = gunicorn("examples.django_app.proj.wsgi", env, 2, "--access-logfile", "-",
                      "--access-logformat", "served %(p)s %(r)s").wait_ready()
    assert server.log is not None
    product = {"id": 2, "name": "product 2", "price_cents": 200}

    def pids(path: str) -> list[str]:
        assert server.log is not None
        return [line.split()[1] for line in server.log.lines if line.startswith("served ") and f" {path} " in line]

    try:
        reads = 0
        while len(set(pids("/products/2"))) < 2:
            assert reads < 400, f"every read went to one process: {set(pids('/products/2'))}"
            answers, _ = stampede(server.url, "/products/2", 40)
            assert [(a.status, a.body) for a in answers] == [(200, product)] * 40
            reads += 40
            server.log.wait_for(r"^served .* /products/2 ", count=reads)
        counts: dict[str, float] = {}
        for scrapes in range(1, 201):
            if len(counts) == 2:
                break
            scrape = Scrape(text=httpx.get(f"{server.url}/metrics", timeout=10).text)
            server.log.wait_for(r"^served .* /metrics ", count=scrapes)
            counts[pids("/metrics")[-1]] = scrape.total("refresher_reads_total", loader=LOADER)
    finally:
        server.stop()
    assert counts == dict.fromkeys(set(pids("/products/2")), reads), counts


REENTERED = """
import django
from refresher.contrib.django.apps import RefresherConfig

ready = RefresherConfig.ready


def ready_building_the_ready_made_app(self):
    import refresher.worker

    refresher.worker.app  # imports REFRESHER_LOADERS, and sets Django up unless it is loading
    ready(self)


RefresherConfig.ready = ready_building_the_ready_made_app
django.setup()
from refresher.api import registry
print(",".join(registry.names()))
"""


def test_loaders_imported_while_django_loads_its_apps_do_not_set_it_up_again(site: Site) -> None:
    """An app whose ready() builds the ready-made worker app (REFRESHER_LOADERS imported
    then, with DJANGO_SETTINGS_MODULE set): refresher must not call django.setup() from
    inside Django's own, which raised "populate() isn't reentrant"."""
    env = {**os.environ, **site.env, "PYTHONPATH": str(ROOT), "REFRESHER_LOADERS": site.loaders.__name__}
    done = subprocess.run([sys.executable, "-c", REENTERED], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == site.loaders.product.name
