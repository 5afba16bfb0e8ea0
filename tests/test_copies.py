"""The near cache's per-hit copies (refresher/core/copies.py): equal to the value, of the same
types, sharing no container with it or with each other; anything else is left to a decode."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any, Iterator

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refresher.core.copies import MAX_DEPTH, copier

leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
          | st.datetimes(timezones=st.just(timezone.utc)) | st.tuples(st.integers(), st.text(max_size=5)))
json_shaped = st.recursive(leaves, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.text(max_size=8) | st.integers(), inner, max_size=5), max_leaves=40)


def containers(value: Any) -> Iterator[int]:
    """The ids of every dict and list in `value`."""
    if type(value) in (dict, list):
        yield id(value)
        for item in value.values() if type(value) is dict else value:
            yield from containers(item)


def same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same_types(a[k], b[k]) for k in a)
    if type(a) is list:
        return all(same_types(x, y) for x, y in zip(a, b))
    return True


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_shaped, max_size=6) | st.lists(json_shaped, max_size=6))
def test_a_copy_is_equal_typed_alike_and_shares_no_container(value: Any) -> None:
    copy = copier(value)
    assert copy is not None
    first, second = copy(value), copy(value)
    assert first == value and same_types(first, value)
    mine = set(containers(value))
    assert not mine & set(containers(first)) and not set(containers(first)) & set(containers(second))


@pytest.mark.parametrize("value", [
    [{"id": 1, "tags": ("a",)}, {"id": 2, "tags": ("b",)}],  # rows: a list of flat dicts
    [{"id": 1}, [1, 2], {"nested": {"deep": [1]}}],
    {"a": [], "b": {}, "c": [[[]]]},
])
def test_a_changed_copy_leaves_the_next_copy_as_it_was(value: Any) -> None:
    copy = copier(value)
    assert copy is not None
    expected = copy(value)
    changed = copy(value)
    for item in changed if type(changed) is list else changed.values():
        if type(item) is dict:
            item["added"] = True
        elif type(item) is list:
            item.append("added")
    if type(changed) is list:
        changed.append("added")
    else:
        changed["added"] = True
    assert copy(value) == expected


@dataclasses.dataclass
class Mutable:
    n: int


class MutableStruct(msgspec.Struct):
    n: int


@pytest.mark.parametrize("value", [
    {"a": {1, 2}},  # a set: mutable, not JSON-shaped
    [Mutable(1)],
    {"s": MutableStruct(1)},
    {"t": ([1],)},  # a tuple holding a list
    {"k": bytearray(b"x")},
    "a str",  # not a container: frozen values are shared, never copied
    (1, 2),
    Mutable(1),
    datetime(2024, 1, 1),
])
def test_other_values_are_left_to_a_decode(value: Any) -> None:
    assert copier(value) is None


def test_very_deep_values_are_left_to_a_decode() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    assert copier(deep) is None
    shallow: Any = 1
    for _ in range(MAX_DEPTH):
        shallow = [shallow]
    assert copier(shallow) is not None
