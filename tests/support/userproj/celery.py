"""The project's Celery app, configured from its own settings (here the environment the
test sets): its broker and result backend, and refresher's tasks by `include`.
USERPROJ_CONFIGURE=1 also applies refresher.worker.configure; USERPROJ_MASTER names a
Sentinel service for a `sentinel://` broker."""

from __future__ import annotations

import os

from celery import Celery

import refresher.worker

app = Celery("userproj", broker=os.environ["USERPROJ_BROKER"], backend=os.environ.get("USERPROJ_BACKEND"),
             include=["tests.support.userproj.tasks", "tests.support.userproj.loaders", "refresher.tasks"])
if os.environ.get("USERPROJ_MASTER"):
    app.conf.broker_transport_options = {"master_name": os.environ["USERPROJ_MASTER"]}
if os.environ.get("USERPROJ_CONFIGURE") == "1":
    refresher.worker.configure(app)
