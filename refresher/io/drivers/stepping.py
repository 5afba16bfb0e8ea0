"""Feeding a step the outcome of each op: the one piece of driving both drivers share,
and the edge where the core's inputs are made the core's own. Before a step is resumed
the tracker's invalidations received so far are applied (the core decides on current
epochs and copies), redis-py's errors become the core's failures (io/failures.py), and
the core's Now is answered with the clock.

Not before a step is resumed with a Coalesce's (or a Follow's) value: the flight's leader judged it,
draining before each of its own decisions, and the step that joined decides nothing
more with it. A cold stampede wakes every coalesced caller at once, and a drain's poll
lets go of the interpreter's lock: each would wait for it again, in turn."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from refresher.core.failures import CacheFailure
from refresher.core.ops import Coalesce, Follow, Load, Now, Op, Pipeline, Steps
from refresher.io.clock import clock
from refresher.io.failures import as_failure, escaped
from refresher.io.tracking import Tracker

T = TypeVar("T")


class Stepper(Generic[T]):
    """Iterate to get the step's next op; set `reply` (or `error`) before the next one.
    When the step returns, iteration stops and `value` holds what it returned; when it
    raises, the exception comes out of the iteration (a cache failure as redis-py's error,
    but as the core's own from a flight's step: `in_flight`).

    A Coalesce's error is the flight's step's final word, handed on as it is: a cache
    failure stays the core's, a loader's error (its origin may be a Redis) its own. Made
    the core's again, a loader's redis-py error read as the cache refusing, and the cache's
    refusals with no fix to name escaped as redis-py's."""

    __slots__ = ("_steps", "_tracker", "_in_flight", "_pipeline", "_coalesced", "_loaded", "reply", "error", "value",
                 "opened", "kept")

    def __init__(self, steps: Steps[T], tracker: Tracker | None = None, *, in_flight: bool = False) -> None:
        self._steps = steps
        self._tracker = tracker  # drained before each resume
        self._in_flight = in_flight  # a Coalesce's step: its cache failure goes to the step that coalesced
        self._pipeline = False  # the op performed was a Pipeline: its replies may be errors
        self._coalesced = False  # the op performed was a Coalesce: its value was judged by its flight's leader
        self._loaded = False  # it was a Load: an error is the loader's own (its origin may be a Redis), not the cache's
        self.reply: Any = None
        self.error: BaseException | None = None
        self.value: T
        self.opened: dict[str, Any] = {}  # channel -> subscription, closed when the step is over
        self.kept: dict[Any, Any] = {}  # Held -> the driver's keep-alive, stopped when the step is over

    def __iter__(self) -> Stepper[T]:
        return self

    def __next__(self) -> Op:
        error, self.error = self.error, None
        reply, self.reply = self.reply, None
        if self._tracker is not None and (error is not None or not self._coalesced):
            self._tracker.drain()
        try:
            if error is not None:
                op = self._steps.throw(error if self._loaded or self._coalesced else as_failure(error))
            else:
                op = self._steps.send([as_failure(one) for one in reply] if self._pipeline else reply)
            while type(op) is Now:  # no round trip: the clock is read here
                op = self._steps.send(clock())
        except StopIteration as done:
            self.value = done.value
            raise StopIteration from None
        except CacheFailure as failure:
            unhandled = failure if self._in_flight else escaped(failure)
        else:
            self._pipeline = type(op) is Pipeline
            self._coalesced, self._loaded = type(op) is Coalesce or type(op) is Follow, type(op) is Load
            return op
        raise unhandled  # outside the handler: redis-py's error, not chained to the core's
