"""Fixtures for the fault scenarios: subprocess workers a test may kill, and keyspace
events to wait on instead of sleeping through TTLs."""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import pytest
import redis

from tests.support.keyevents import KeyEvents
from tests.support.servers import WorkerProcess

FAULT_LOADERS = "tests.support.fault_loaders"


@pytest.fixture
def key() -> str:
    """A fresh cache key argument, so no two tests share a value or its control lists."""
    return "k" + uuid.uuid4().hex[:10]


@pytest.fixture
def spawn_worker(redis_url: str) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `celery -A workers worker` subprocesses with the fault loaders registered;
    every one still running is discarded after the test."""
    started: list[WorkerProcess] = []

    def spawn(url: str | None = None, **options: Any) -> WorkerProcess:
        options.setdefault("loaders", FAULT_LOADERS)
        worker = WorkerProcess(url or redis_url, **options).start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.discard()


@pytest.fixture
def key_events(r: redis.Redis) -> Iterator[Callable[..., KeyEvents]]:
    opened: list[KeyEvents] = []

    def watch(*keys: str) -> KeyEvents:
        events = KeyEvents(r, *keys)
        opened.append(events)
        return events

    yield watch
    for events in opened:
        events.close()
