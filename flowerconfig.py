"""Flower's settings for `celery flower --conf=flowerconfig.py` (Flower's default file name)
run from this directory: refresher's, which refuse to start an open Flower (refresher/flower.py)."""

from refresher.flower import settings

globals().update(settings())
