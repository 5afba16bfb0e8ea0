"""Reader processes of one loader version (tests/support/versioned_loaders.py): the version
is set in the environment before the loader module is imported, as a deploy would."""

from __future__ import annotations

import importlib
import os
import time
from typing import Any


def read(version: int, seconds: float, ready: Any, go: Any, out: Any) -> None:
    os.environ["TEST_LOADER_VERSION"] = str(version)
    loaders = importlib.import_module("tests.support.versioned_loaders")
    shapes: dict[int, int] = {}
    errors: list[str] = []
    loaders.person.get(0)
    ready.set()
    go.wait()
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        try:
            got = loaders.shape(loaders.person.get(n % loaders.KEYS))
            shapes[got] = shapes.get(got, 0) + 1
        except Exception as exc:  # noqa: BLE001  reported to the test
            errors.append(repr(exc))
        n += 1
    loaders.cache.flush()
    out.put((version, shapes, errors))
