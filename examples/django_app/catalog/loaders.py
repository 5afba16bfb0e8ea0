"""The catalog's loaders, imported by refresher's AppConfig once every app is ready (in
the web process and in the worker alike), and the model changes that invalidate them."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings

from examples.django_app.catalog.models import Product
from examples.userdb import origin_calls_key
from refresher.contrib.django import cache, invalidate_on

ORIGIN_CALLS = origin_calls_key(cache.namespace, "django")
_counter = redis.Redis.from_url(cache.redis_url)


@cache.loader(ttl=settings.CATALOG_PRODUCT_TTL, refresh_window=0.25)
def product(product_id: int) -> dict[str, Any] | None:
    """A product as the API shows it, or None if there is none (cached too)."""
    _counter.incr(ORIGIN_CALLS)  # in Redis, so the app and its worker add up
    return Product.objects.filter(pk=product_id).values("id", "name", "price_cents").first()


# A saved or deleted product is dropped from the cache once its transaction commits.
invalidate_on(Product, loader=product, keys=lambda saved: [(saved.pk,)])
