"""Log lines a person can follow and a log shipper can parse, with the standard `logging`.

A line about a key reads `refresher: loader=NAME key=KEY what happened`, and its record
carries `loader` and `key` (and, where they apply, `outcome` and `error_type`) as
attributes, which `JsonFormatter` writes as fields. A worker started with
REFRESHER_LOG_FORMAT=json writes every line, Celery's own too, as one JSON object
(refresher/worker/standalone.py); an app sets `JsonFormatter` on its own handlers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("refresher")
FIELDS = ("loader", "key", "outcome", "error_type")


class KeyLog(logging.LoggerAdapter[logging.Logger]):
    """The "refresher" logger, for lines about one loader's key."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        fields = dict(self.extra or {})
        kwargs["extra"] = {**fields, **kwargs.get("extra", {})}
        # The key holds a call's arguments (a task's, anyone's): a `%` in it must stay text
        # when logging applies the line's own arguments to the whole message.
        where = f"refresher: loader={fields['loader']} key={fields['key']} ".replace("%", "%%")
        return where + str(msg), kwargs


def about(loader: str, key: str | None) -> KeyLog:
    """Where lines about `loader`'s `key` go (None: a task whose key cannot be built)."""
    return KeyLog(log, {"loader": loader, "key": key})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, the fields above when
    the record has them, and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((name, getattr(record, name)) for name in FIELDS if hasattr(record, name))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def json_asked() -> bool:
    return os.environ.get("REFRESHER_LOG_FORMAT", "").strip().lower() == "json"


def use_json(logger: logging.Logger) -> None:
    """Make each of the logger's handlers write JSON."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
