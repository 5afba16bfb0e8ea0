"""A cold miss's way to its load and back, where every wait is on every reader's path: the
lock holder's round trips, the coalesced callers' resumption, the lock watchdog's thread.
Against a real redis-server, with real threads."""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from typing import Any, Callable, Iterator, cast

import pytest

from refresher import Refresher
from refresher.core.ops import Batch, Coalesce, Command, Held, Listen, Load, MGet, Op, Pipeline, Script, Steps
from refresher.io.drivers.stepping import Stepper
from refresher.io.drivers.watchdog import Watchdog
from refresher.io.tracking import Tracker


@pytest.fixture
def performed(redis_url: str) -> Iterator[tuple[Refresher, list[Op]]]:
    """A Refresher whose sync driver notes every op it performs, and what it noted."""
    cache, noted = Refresher(redis_url, queue="test-" + uuid.uuid4().hex[:8]), []  # a queue no worker reads
    table = cache.sync._perform
    originals = dict(table)

    def noting(perform: Callable[[Any, Stepper[Any]], Any]) -> Callable[[Any, Stepper[Any]], Any]:
        def perform_and_note(op: Any, stepper: Stepper[Any]) -> Any:
            noted.append(op)
            return perform(op, stepper)
        return perform_and_note

    table.update({kind: noting(perform) for kind, perform in originals.items()})
    yield cache, noted
    table.update(originals)
    cache.close()


def test_the_lock_holder_reads_the_key_in_the_round_trip_that_takes_the_lock(
    performed: tuple[Refresher, list[Op]],
) -> None:
    cache, ops = performed

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10])
    def load(n: int) -> int:
        return n

    value_key = load.keys(7).value
    assert load.get(7) == 7
    taking = next(i for i, op in enumerate(ops) if isinstance(op, Batch) and op.commands[0][0] == "SET")
    loading = next(i for i, op in enumerate(ops) if isinstance(op, Load))
    taken = ops[taking]
    assert isinstance(taken, Batch) and taken.commands[1] == ("MGET", value_key, load.keys(7).pending)
    between = ops[taking + 1 : loading]
    assert not [op for op in between if isinstance(op, Command) and value_key in op.args], between


class CountedDrains:
    """The tracker's one method a stepper calls: how many times it was drained."""

    def __init__(self) -> None:
        self.drains = 0

    def drain(self) -> None:
        self.drains += 1


def test_a_coalesced_value_resumes_its_step_without_a_drain_but_its_error_with_one() -> None:
    tracker = CountedDrains()
    seen: list[int] = []

    def steps() -> Steps[None]:
        yield Coalesce("k", lambda: iter(()))
        seen.append(tracker.drains)
        yield Command(("GET", "k"))
        seen.append(tracker.drains)
        try:
            yield Coalesce("k", lambda: iter(()))
        except RuntimeError:
            seen.append(tracker.drains)

    stepper = Stepper(steps(), cast(Tracker, tracker))
    for op in stepper:
        if isinstance(op, Coalesce) and seen:
            stepper.error = RuntimeError("the flight failed")
        else:
            stepper.reply = (1, False) if isinstance(op, Coalesce) else None
    assert seen == [1, 2, 3]


def test_the_watchdog_keeps_the_next_lock_with_the_same_thread() -> None:
    """Its thread outlives the lease: the next load does not wait for a thread to start."""
    local, numbers, threads_seen = threading.local(), itertools.count(), []
    extended = threading.Semaphore(0)

    def perform(op: Op, _: Stepper[Any]) -> Any:
        if not hasattr(local, "number"):
            local.number = next(numbers)
        threads_seen.append(local.number)
        extended.release()
        return 1  # EXTEND_LOCK: still ours

    watchdog = Watchdog(perform)
    for _ in range(2):
        with watchdog.holding(Held("k", "token", 30, 60_000)):
            assert extended.acquire(timeout=5)
        deadline = time.monotonic() + 5
        while watchdog._wake_at != math.inf:  # until its thread found nothing left to keep
            assert time.monotonic() < deadline
            time.sleep(0.005)
    assert len(set(threads_seen)) == 1, threads_seen


def test_the_lock_holder_reads_the_epochs_of_its_marks_in_the_same_round_trip(
    performed: tuple[Refresher, list[Op]],
) -> None:
    """Nothing but the lock's one round trip between a cold miss's GET and its load, and
    the value is marked with the epochs read there: a later invalidation drops it."""
    cache, ops = performed
    loads: list[int] = []

    @cache.loader(ttl=60, name="t." + uuid.uuid4().hex[:10], tags=lambda n: [f"n:{n}"])
    def load(n: int) -> int:
        loads.append(n)
        return n

    cache.invalidate_tag("n:8")  # the tag's epoch is 1 from now on
    assert load.get(8) == 8
    taking = next(i for i, op in enumerate(ops) if isinstance(op, Batch) and op.commands[0][0] == "SET")
    loading = next(i for i, op in enumerate(ops) if isinstance(op, Load))
    taken = ops[taking]
    assert isinstance(taken, Batch)
    assert taken.commands[2:] == (("MGET", load.state.epoch_key), ("MGET", load.state.epochs.tag_key("n:8")))
    assert [op for op in ops[taking + 1 : loading] if isinstance(op, (Command, Batch, MGet, Script, Pipeline))] == []
    assert load.get(8) == 8 and loads == [8]  # served, marked with the tag's epoch 1
    cache.invalidate_tag("n:8")
    assert load.get(8) == 8 and loads == [8, 8]  # dropped by the tag's epoch 2: loaded again


def test_a_waiter_reads_its_epochs_with_the_key_not_after_the_value_lands(
    performed: tuple[Refresher, list[Op]], redis_url: str,
) -> None:
    """A read waiting for another process's load reads the epochs the value will be judged
    by in the round trip that looks at the key after subscribing, so the value that lands
    on the channel is served with no round trip of its own (one per waiting process, on
    every cold stampede's path)."""
    cache, ops = performed
    other = Refresher(redis_url, queue="test-" + uuid.uuid4().hex[:8])
    name, started, release = "t." + uuid.uuid4().hex[:10], threading.Event(), threading.Event()

    def slow(n: int) -> int:
        started.set()
        assert release.wait(10)
        return n * 10

    holding, waiting = (c.loader(ttl=60, name=name, tags=lambda n: [f"n:{n}"])(slow) for c in (other, cache))
    got: list[int] = []
    try:
        holder = threading.Thread(target=lambda: got.append(holding.get(3)))
        holder.start()
        assert started.wait(10)
        waiter = threading.Thread(target=lambda: got.append(waiting.get(3)))
        waiter.start()
        deadline = time.monotonic() + 10  # no event says when the read listens: the ops are polled
        while not any(isinstance(op, Listen) for op in list(ops)):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        release.set()
        holder.join(10)
        waiter.join(10)
    finally:
        other.close()
    assert got == [30, 30] and cache.stats["waited"] == 1
    listening = next(i for i, op in enumerate(ops) if isinstance(op, Listen))
    looked = ops[listening - 1]
    assert isinstance(looked, Batch) and looked.commands[0] == ("MGET", waiting.keys(3).value)
    assert looked.commands[2:] == (("MGET", waiting.state.epoch_key), ("MGET", waiting.state.epochs.tag_key("n:3")))
    assert [op for op in ops[listening + 1:] if isinstance(op, (Command, Batch, MGet, Script, Pipeline))] == []
