"""Running several steps side by side, their Redis round trips shared."""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from refresher.core.ops import Command, Op, Pipeline, Script, Steps

T = TypeVar("T")


def together(steps: Sequence[Steps[T]]) -> Steps[list[T | Exception]]:
    """Each step runs as it would alone, in rounds: the commands and scripts the steps
    are waiting on go out in one Pipeline (one round trip for all of them), then every
    other op (a load, say) is performed in turn, in the steps' order. Returns what each
    step returned, or the exception it raised: one step's failure is not the others'."""
    results: dict[int, T | Exception] = {}
    waiting: dict[int, Op] = {}

    def advance(i: int, reply: Any = None) -> None:
        step = steps[i]
        try:
            waiting[i] = step.throw(reply) if isinstance(reply, Exception) else step.send(reply)
        except StopIteration as done:
            results[i] = done.value
        except Exception as exc:
            results[i] = exc

    for i in range(len(steps)):
        advance(i)
    while waiting:
        current, waiting = waiting, {}
        shared = {i: op for i, op in current.items() if isinstance(op, (Command, Script))}
        if shared:
            try:
                replies: list[Any] = yield Pipeline(tuple(shared.values()))
            except Exception as exc:  # the round trip itself failed: each step hears it
                replies = [exc] * len(shared)
            for i, reply in zip(shared, replies):
                advance(i, reply)
        for i, op in current.items():
            if i not in shared:
                try:
                    reply = yield op
                except Exception as exc:
                    reply = exc
                advance(i, reply)
    return [results[i] for i in range(len(steps))]
