"""What every scenario runs against: the bench's own Redis, its reader processes, and the
refresher worker that serves the single-key scenarios."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from bench.readers import ReaderPool
from bench.scale import Scale
from bench.strategies import Spec
from tests.support.servers import WorkerProcess

SUCCEEDED = r"refresher\.refresh\[\S+\] succeeded"
WRITTEN = SUCCEEDED + r" in \S+ 'written'"


@dataclass
class Context:
    scale: Scale
    redis_url: str
    control: redis.Redis
    pool: ReaderPool
    worker: WorkerProcess  # `celery -A workers worker -P solo` with REFRESHER_LOADERS=bench.loaders

    def spec(self, strategy: str, workload: str) -> Spec:
        return Spec(strategy, workload, self.redis_url)

    def redis_commands(self) -> int:
        """Commands the bench's Redis has run so far, from every client (INFO commandstats)."""
        stats = cast(dict[str, dict[str, Any]], self.control.info("commandstats"))
        return sum(int(v["calls"]) for v in stats.values())

    def worker_count(self, pattern: str) -> int:
        assert self.worker.log is not None
        return self.worker.log.count(pattern)

    def await_worker(self, finished: int, timeout: float = 10.0) -> bool:
        """Wait until the worker has finished `finished` refresh tasks in all."""
        deadline = time.monotonic() + timeout
        while self.worker_count(SUCCEEDED) < finished:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
