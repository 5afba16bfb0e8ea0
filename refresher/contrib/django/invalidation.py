"""Dropping cached values when a model is saved or deleted, once the transaction commits.

On commit, not on the signal: a reader between the save and the commit would load the
old row and cache it, and an invalidation sent then would be followed by that stale fill
(refresher's fence refuses fills that began before an invalidation, not reads of an
uncommitted database). After a rollback nothing happened, so nothing is dropped.

`QuerySet.update()`, `bulk_update()`, `bulk_create()` and raw SQL send no signal: see
docs/django.md for the pattern (invalidate_after_commit).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from refresher.api.loader import Loader

KeysOf = Callable[[Any], Iterable[tuple[Any, ...]]]
TagsOf = Callable[[Any], Iterable[str]]


def invalidate_on(model: type[Model], loader: Loader[..., Any] | None = None, *, keys: KeysOf | None = None,
                  tags: TagsOf | None = None) -> None:
    """After a committed save or delete of a `model` instance, invalidate `loader` for each
    argument tuple `keys(instance)` returns, and every tag in `tags(instance)`."""
    if keys is not None and loader is None:
        raise TypeError("keys= needs loader=: the argument tuples are that loader's")
    if keys is None and tags is None:
        raise TypeError("invalidate_on needs keys= (with loader=), tags=, or both")

    def changed(sender: type[Model], instance: Model, using: str = "default", **_: Any) -> None:
        calls = [tuple(args) for args in keys(instance)] if keys is not None else []
        names = list(tags(instance)) if tags is not None else []
        # robust: a cache that cannot be reached is logged, not raised into the code that committed
        transaction.on_commit(lambda: invalidate(calls, names), using=using, robust=True)

    def invalidate(calls: list[tuple[Any, ...]], names: list[str]) -> None:
        if loader is not None:
            for args in calls:
                loader.invalidate(*args)
        if names:
            from refresher.contrib.django import cache  # the project's, unless the loader has its own

            for tag in names:
                (loader.cache if loader is not None else cache).invalidate_tag(tag)

    post_save.connect(changed, sender=model, weak=False)
    post_delete.connect(changed, sender=model, weak=False)


def invalidate_after_commit(action: Callable[[], object], using: str = "default") -> None:
    """Run `action` (an invalidation) once the current transaction commits, at once outside
    one: for the writes that send no signal, e.g. after `Product.objects.filter(...).update(...)`."""
    transaction.on_commit(action, using=using, robust=True)
