"""The ready-made app under its old name (refresher.worker.standalone builds it)."""

from refresher.worker import app, import_loaders
from refresher.worker.consumer import Consumer

__all__ = ["Consumer", "app", "import_loaders"]
