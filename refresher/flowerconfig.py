"""Flower's configuration file (FLOWER_CONF, set by the `workers` app): executed by Flower at
start, never imported. It refuses to start an open Flower: see refresher/flower.py."""

from refresher.flower import settings

globals().update(settings())
