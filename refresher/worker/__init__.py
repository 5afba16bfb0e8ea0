"""refresher's worker side: the ready-made Celery app and what a user's own app needs.

    REFRESHER_LOADERS=myapp.loaders celery -A refresher.worker worker -Q refresher

or, in the user's own app (docs/celery.md):

    app = Celery("proj", include=["refresher.tasks"])
    refresher.worker.configure(app)

`app` is built on first access, not on import: `configure` and the probes must not build
an app (or import REFRESHER_LOADERS) that the user never asked for.
"""

from __future__ import annotations

from typing import Any

from refresher.worker.settings import configure, import_loaders

__all__ = ["app", "configure", "import_loaders"]


def __getattr__(name: str) -> Any:
    if name == "app":  # `celery -A refresher.worker` and `from refresher.worker import app`
        from refresher.worker.standalone import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
