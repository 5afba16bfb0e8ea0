"""Copies of a near cache entry's value, so that no caller can change what the next gets.

Decoding the payload again gives each hit a value of its own, but costs a parse of every
byte. Most values are JSON-shaped (dicts and lists whose leaves are immutable: strings,
numbers, None, and the frozen values of values.frozen), and a copy of only their
containers is as private, equal to the decode, and a few times cheaper. The plan of that
copy (which containers hold containers) is made once, when the entry is kept; a value of
any other shape (a mutable dataclass or Struct, a set) is decoded per hit as before.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any, Callable

from refresher.core.values import frozen

Copy = Callable[[Any], Any]
MAX_DEPTH = 32  # deeper values are decoded per hit: no recursion limit is ever near
MAX_CONTAINERS = 10_000  # a plan is at most this big; a larger value is decoded per hit


def copier(value: Any) -> Copy | None:
    """A function that copies `value` (and any equal value of the same shape) so that no
    container is shared; None if `value` is not JSON-shaped with immutable leaves."""
    budget = [MAX_CONTAINERS]
    return _copier(value, 0, budget)


def handout(value: Any) -> Copy:
    """How each further caller of a load several joined gets `value`: itself if frozen,
    else a copy no other caller holds (the leader's dict handed to every follower would
    let one caller's change in place show in all the others'). Decided once per load: the
    fifty threads of a cold stampede that joined one miss would each plan the same copy,
    and they run one after another, on the interpreter's lock, as the load lands."""
    if frozen(value):
        return _itself
    copy = copier(value)
    return copy if copy is not None else deepcopy


def _itself(value: Any) -> Any:
    return value


def _copier(value: Any, depth: int, budget: list[int]) -> Copy | None:
    kind = type(value)
    if (kind is not dict and kind is not list) or depth > MAX_DEPTH or budget[0] <= 0:
        return None
    budget[0] -= 1
    nested: list[tuple[Any, Copy]] = []
    rows = kind is list and bool(value)  # a list of flat dicts (rows) has a copy of its own
    for where, item in (value.items() if kind is dict else enumerate(value)):
        if not frozen(where):  # a dict key the copy would share
            return None
        if type(item) is dict or type(item) is list:
            inner = _copier(item, depth + 1, budget)
            if inner is None:
                return None
            rows = rows and inner is _dict_copy
            nested.append((where, inner))
        elif frozen(item):
            rows = False
        else:
            return None
    if rows:
        return _copy_rows
    if not nested:
        return _dict_copy if kind is dict else _list_copy
    return _nested_copy(_dict_copy if kind is dict else _list_copy, tuple(nested))


_dict_copy: Copy = dict.copy
_list_copy: Copy = list.copy


def _copy_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row.copy() for row in rows]


def _nested_copy(shallow: Copy, nested: tuple[tuple[Any, Copy], ...]) -> Copy:
    def copy(value: Any) -> Any:
        out = shallow(value)
        for where, inner in nested:
            out[where] = inner(out[where])
        return out

    return copy
