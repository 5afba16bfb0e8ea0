"""The Flask example as gunicorn's `--preload` target, after a read in gunicorn's master.

The read starts the master's publishing thread, its broker connection and a pooled
Redis connection before gunicorn forks its workers: the hard case for the publisher,
whose thread does not survive a fork and must be started again in each child.
"""

from __future__ import annotations

from examples.flask_app.app import app
from examples.flask_app.loaders import cache, load_user

load_user.get(1)
assert cache.publisher.started  # the master's own publishing thread is running

__all__ = ["app"]
