"""What the origin behind each scenario looks like: how long a load takes, how long a value lives.

The reader processes, the bench and the Celery workers must agree on these, so the one
setting that varies between a full and a quick run (the hot key's TTL) travels by
environment variable, which spawned readers and worker subprocesses inherit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

HOT_TTL_ENV = "BENCH_HOT_TTL"


@dataclass(frozen=True)
class Workload:
    name: str
    ttl: float  # seconds a value lives
    delay: float  # seconds one origin call takes
    per_key: bool  # count origin calls per key (one key per run) or for the whole workload

    def series(self, key: str) -> str:
        """The name origin calls are counted under."""
        return key if self.per_key else self.name


COLD = Workload("cold", ttl=30.0, delay=0.2, per_key=True)
FRESH = Workload("fresh", ttl=3600.0, delay=0.0, per_key=False)
MANY = Workload("many", ttl=300.0, delay=0.0, per_key=False)


def hot() -> Workload:
    """The hot key: a short TTL so a run covers several expiries."""
    return Workload("hot", ttl=float(os.environ.get(HOT_TTL_ENV, "2")), delay=0.1, per_key=True)


def by_name(name: str) -> Workload:
    return {w.name: w for w in (COLD, FRESH, MANY, hot())}[name]
