"""refresher: stampede-proof Redis caching with refresh-ahead by Celery workers."""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it, so does the wheel

from refresher.api.client import Refresher
from refresher.core.envelope import Codec, JsonCodec
from refresher.errors import (
    CacheForbidden, CacheFull, CacheRefused, CacheTooOld, CacheUnavailable, LoadFailed, RefresherError, RefreshFailed,
    TaskRejected, UnknownLoader,
)
from refresher.api.loader import Loader
from refresher.core.policy import Window, XFetch
from refresher.api.served import Served
from refresher.core.values import UndecodableValue, ValueCodec

__all__ = [
    "__version__",
    "CacheForbidden",
    "CacheFull",
    "CacheRefused",
    "CacheTooOld",
    "CacheUnavailable",
    "Codec",
    "JsonCodec",
    "LoadFailed",
    "Loader",
    "Refresher",
    "RefresherError",
    "RefreshFailed",
    "Served",
    "TaskRejected",
    "UndecodableValue",
    "UnknownLoader",
    "ValueCodec",
    "Window",
    "XFetch",
]
