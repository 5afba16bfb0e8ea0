"""Flower's settings for `celery flower --conf=flowerconfig.py` (Flower's default file name)
run from this directory: refresher's, which refuse to start an open Flower (refresher/ops/flower.py)."""

from refresher.ops.flower import settings

globals().update(settings())
