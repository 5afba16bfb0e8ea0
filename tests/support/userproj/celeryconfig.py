"""Celery settings as a module, for the ready-made app (REFRESHER_CELERY_CONFIG): the
project's broker, Sentinel-managed or not, from the environment the test sets."""

from __future__ import annotations

import os

broker_url = os.environ["USERPROJ_BROKER"]
if os.environ.get("USERPROJ_MASTER"):
    broker_transport_options = {"master_name": os.environ["USERPROJ_MASTER"]}
