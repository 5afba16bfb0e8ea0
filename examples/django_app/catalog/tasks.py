"""The catalog's own task, run by the same worker as refresher's."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from examples.django_app.catalog.models import Product


@shared_task(name="catalog.reprice")  # type: ignore[untyped-decorator]
def reprice(product_id: int, price_cents: int) -> int:
    """A model save in a worker: the cached product is invalidated when it commits."""
    with transaction.atomic():
        found = Product.objects.select_for_update().get(pk=product_id)
        found.price_cents = price_cents
        found.save(update_fields=["price_cents"])
    return price_cents
