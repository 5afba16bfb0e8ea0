"""The Flask app: `gunicorn -w 3 --preload examples.flask_app.app:app`.

With --preload gunicorn imports this module once, in its master, and forks the workers
from it: every worker inherits a Refresher built before the fork, whose publishing
thread does not survive the fork and is started again in each child on its first read.
Each response names the process that served it (X-Served-By), to show the three at work.
`/metrics` is refresher's Prometheus metrics: with PROMETHEUS_MULTIPROC_DIR set (and
`-c examples/flask_app/gunicorn.conf.py`), the sum over every gunicorn worker.
"""

from __future__ import annotations

import os

from flask import Flask, Response, abort

from examples.flask_app.loaders import load_user
from examples.metrics_view import exposition
from examples.userdb import User, db_path, seed

seed(db_path())
app = Flask(__name__)


@app.get("/users/<int:user_id>")
def user(user_id: int) -> User:
    found = load_user.get(user_id)
    if found is None:
        abort(404, f"no user {user_id}")
    return found


@app.get("/metrics")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.after_request
def served_by(response: Response) -> Response:
    response.headers["X-Served-By"] = str(os.getpid())
    return response
