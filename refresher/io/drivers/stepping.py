"""Feeding a step the outcome of each op: the one piece of driving both drivers share."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from refresher.core.ops import Op, Steps

T = TypeVar("T")


class Stepper(Generic[T]):
    """Iterate to get the step's next op; set `reply` (or `error`) before the next one.
    When the step returns, iteration stops and `value` holds what it returned; when it
    raises, the exception comes out of the iteration."""

    __slots__ = ("_steps", "reply", "error", "value", "opened", "kept")

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
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
        try:
            return self._steps.throw(error) if error is not None else self._steps.send(reply)
        except StopIteration as done:
            self.value = done.value
            raise StopIteration from None
