"""Flower's configuration file (FLOWER_CONF, set by the `workers` app): executed by Flower at
start, never imported. It refuses to start an open Flower: see refresher/ops/flower.py."""

from refresher.ops.flower import settings

globals().update(settings())
