"""A test's handle on one owned lock, through the core's lock steps and a sync driver:
what a process holding the lock would do, step by step."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from refresher.core.calls import Calls
from refresher.core import lock as steps
from refresher.core.ops import Held, Load, Steps
from refresher.io.drivers.sync import SyncDriver


class Lock:
    def __init__(self, driver: SyncDriver, key: str, ttl_ms: int) -> None:
        self.driver = driver
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = steps.new_token()

    def acquire(self) -> bool:
        return self.driver.run(steps.acquire(self.key, self.token, self.ttl_ms))

    def release(self) -> bool:
        return self.driver.run(steps.release(self.key, self.token))

    def extend(self) -> bool:
        return self.driver.run(steps.extend(Held(self.key, self.token, self.ttl_ms, self.ttl_ms)))

    @contextmanager
    def kept_alive(self, max_hold_ms: int) -> Iterator[None]:
        """Hold the lock as a load does, the driver's watchdog extending it, while the
        body runs."""
        body_done = threading.Event()
        held = Held(self.key, self.token, self.ttl_ms, max_hold_ms)

        def body() -> bool:
            return body_done.wait(60)

        call = Calls(body, "test", "lock")((), {})

        def load() -> None:
            self.driver.run(_one(Load(body, call, held)))

        loading = threading.Thread(target=load, daemon=True)
        loading.start()
        try:
            yield
        finally:
            body_done.set()
            loading.join(10)


def _one(op: Load) -> Steps[object]:
    return (yield op)
