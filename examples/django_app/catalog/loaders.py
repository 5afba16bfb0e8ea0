"""The catalog's loaders, built from the REFRESHER_* settings.

A refresh worker imports this module by itself
(`REFRESHER_LOADERS=examples.django_app.catalog.loaders celery -A workers worker`, with
DJANGO_SETTINGS_MODULE set), before anything has set Django up: then this module does,
so that the loader can use the ORM. In the app, Django is set up long before.
"""

from __future__ import annotations

from typing import Any

import django
import redis
from django.apps import apps
from django.conf import settings

from examples.userdb import origin_calls_key
from refresher import Refresher

if not apps.ready:
    django.setup()

from examples.django_app.catalog.models import Product  # noqa: E402  (needs Django set up)

cache = Refresher(redis_url=settings.REFRESHER_REDIS_URL, namespace=settings.REFRESHER_NAMESPACE,
                  queue=settings.REFRESHER_QUEUE)
ORIGIN_CALLS = origin_calls_key(cache.namespace, "django")
_counter = redis.Redis.from_url(cache.redis_url)


@cache.loader(ttl=settings.CATALOG_PRODUCT_TTL, refresh_window=0.25)
def product(product_id: int) -> dict[str, Any] | None:
    """A product as the API shows it, or None if there is none (cached too)."""
    _counter.incr(ORIGIN_CALLS)  # in Redis, so the app and its worker add up
    return Product.objects.filter(pk=product_id).values("id", "name", "price_cents").first()
