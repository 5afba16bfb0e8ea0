"""refresher's Prometheus metrics for any web framework's /metrics view.

Importing this module installs the exporter (refresher.ops.metrics.install), so import it at
start-up, where the app is made: in multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, for
gunicorn or `uvicorn --workers`) only what happens after install() is counted. Then:

    body, content_type = exposition()
    FastAPI:  Response(body, media_type=content_type)
    Flask:    Response(body, content_type=content_type)
    Django:   HttpResponse(body, content_type=content_type)
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import refresher.ops.metrics

refresher.ops.metrics.install()


def exposition() -> tuple[bytes, str]:
    """The scrape's body and its content type: this process's metrics, or in multiprocess
    mode every process's added up."""
    return generate_latest(refresher.ops.metrics.registry()), CONTENT_TYPE_LATEST
