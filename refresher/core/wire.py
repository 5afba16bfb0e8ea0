"""The refresh tasks' arguments as they cross the broker: one typed schema, checked at the
worker's door before any Redis command or registry work.

Anyone who can publish to the broker can send `refresher.refresh` or `refresher.refresh_many`,
so a task's fields are data from a stranger. The schema bounds every field's type and size
(lengths are checked before elements are read, so a 100,000-item list costs nothing but
its decoding); a task that does not fit is rejected as a whole, and a `refresh_many` item
that does not fit is rejected alone.

Limits (a message the publisher sends is far inside every one):
- a task message: MAX_MESSAGE_BYTES, checked by the `workers` app before the message is
  decoded (decoding JSON costs several times its size in Python objects);
- a loader name: 1 to MAX_NAME characters, no ':', braces or whitespace (refresher.core.keys);
- `enqueued_at`: a finite Unix time in seconds; `seen` and `version`: ints in [0, 2**63);
- a call's arguments: at most MAX_ARGS positional and MAX_ARGS keyword ones, MAX_CALL_BYTES
  of JSON all told, every number in them finite;
- `refresh_many`: at most MAX_ITEMS items (the publisher sends up to 32).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from refresher.core.keys import NAME_PATTERN

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_NAME = 200
MAX_ARGS = 64
MAX_CALL_BYTES = 16 * 1024
MAX_ITEMS = 256
LATEST_TIME = 1e11  # seconds since 1970: year 5138

Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]
Time = Annotated[float, Meta(ge=0, le=LATEST_TIME)]  # NaN and inf fail a bound: only finite times pass
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]


class Task(Struct, array_like=True, forbid_unknown_fields=True, frozen=True):
    """One key's refresh: `refresher.refresh`'s arguments, and each item of `refresh_many`."""

    name: Name
    args: Annotated[list[Any], Meta(max_length=MAX_ARGS)]
    kwargs: Annotated[dict[str, Any], Meta(max_length=MAX_ARGS)]
    enqueued_at: Time
    seen: Count | None = None  # the version of the value the reader saw (None: sent by hand)
    version: Count | None = None  # a versioned loader's version


Items = Annotated[list[Any], Meta(max_length=MAX_ITEMS)]


class Rejected(ValueError):
    """A task, or an item of one, that does not fit the schema. `name` is its loader name
    if that much was well formed (safe to log), else None."""

    def __init__(self, reason: str, name: str | None) -> None:
        super().__init__(reason)
        self.name = name


def task(fields: Any) -> Task:
    """`fields` (`[name, args, kwargs, enqueued_at, seen, version]`, trailing ones optional)
    as a Task, or Rejected saying what does not fit."""
    try:
        checked = msgspec.convert(fields, Task)
    except msgspec.ValidationError as exc:
        raise Rejected(f"malformed refresh task: {exc}", _well_formed_name(fields)) from None
    size = _call_bytes(checked.args, checked.kwargs)
    if size is None:
        raise Rejected("malformed refresh task: its arguments are not finite JSON", checked.name)
    if size > MAX_CALL_BYTES:
        raise Rejected(f"malformed refresh task: its arguments take over {MAX_CALL_BYTES} bytes", checked.name)
    return checked


def items(batch: Any) -> list[Any]:
    """`refresh_many`'s item list, each still to be checked by `task`; Rejected if it is not
    a list of at most MAX_ITEMS."""
    try:
        return msgspec.convert(batch, Items)
    except msgspec.ValidationError as exc:
        raise Rejected(f"malformed refresh_many task: {exc}", None) from None


def check_size(body: Any) -> None:
    """Rejected if a task message's `body` (bytes or text, not yet decoded) is over
    MAX_MESSAGE_BYTES."""
    if isinstance(body, (bytes, bytearray, memoryview, str)) and len(body) > MAX_MESSAGE_BYTES:
        raise Rejected(f"a task message of {len(body)} bytes, over {MAX_MESSAGE_BYTES}: not decoded", None)


def _call_bytes(args: list[Any], kwargs: dict[str, Any]) -> int | None:
    """The size of the call as JSON, or None if it holds NaN, inf, non-JSON values or is
    nested deeper than the interpreter's recursion limit."""
    try:
        return len(json.dumps([args, kwargs], allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        return None


def _well_formed_name(fields: Any) -> str | None:
    name = fields[0] if isinstance(fields, (list, tuple)) and fields else None
    try:
        return msgspec.convert(name, Name)
    except msgspec.ValidationError:
        return None
