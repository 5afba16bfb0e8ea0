from __future__ import annotations

from django.db import models


class Product(models.Model):
    # Annotated because mypy runs without django-stubs' plugin, which would infer these.
    name: models.CharField[str, str] = models.CharField(max_length=100)
    price_cents: models.PositiveIntegerField[int, int] = models.PositiveIntegerField()
