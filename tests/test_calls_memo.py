"""The memo of recent calls (core/calls.py): its shortcut for a call with one argument (the
common `f(id)`) finds a remembered call again and no equal value of another type finds it;
when full, the oldest go and the newest stay."""

from __future__ import annotations

import uuid
from enum import IntEnum
from typing import Any

import pytest

from refresher import Refresher
from refresher.core.calls import Calls
from tests.support.reading import Reading


class Level(IntEnum):
    ONE = 1


class Name(str):
    """A str subclass: equal to its str, and not remembered as one."""


def one(a: Level) -> None:
    """One argument, of any type: annotated with the enum only so that it may be passed."""


@pytest.mark.parametrize("first, alias", [(1, True), (1, 1.0), (1, Level.ONE), (0, False), ("x", Name("x"))])
def test_one_remembered_argument_is_found_again_and_never_by_an_equal_alias(first: object, alias: object) -> None:
    calls = Calls(one, "ns", "t.one")
    remembered = calls((first,), {})
    assert calls((first,), {}) is remembered
    assert calls([first], {}).keys == remembered.keys  # a task's list of arguments: the same key
    aliased = calls((alias,), {})
    assert aliased is not remembered and aliased.args == [alias] and type(aliased.args[0]) is type(alias)
    if type(alias) is not Name:  # a str subclass is canonically the same string: the same key, rebuilt
        assert aliased.keys != remembered.keys


def test_a_full_memo_forgets_its_oldest_and_keeps_its_newest() -> None:
    calls = Calls(one, "ns", "t.one", remember=8)
    made = [calls((n,), {}) for n in range(8)]
    newest = calls((8,), {})  # past the bound: the oldest quarter and one more go
    assert calls((8,), {}) is newest
    assert all(calls((n,), {}) is made[n] for n in range(7, 2, -1))  # hits: the memo unchanged
    assert calls((2,), {}) is not made[2]  # forgotten: built again


@pytest.mark.parametrize("near_cache", [0, 100])
@pytest.mark.parametrize("first, alias", [(1, True), (1, 1.0), (0, False)])
def test_a_read_finds_its_remembered_call_and_an_equal_alias_its_own(
        redis_url: str, reading: Reading, near_cache: int, first: object, alias: object) -> None:
    """`get` looks the memo up itself (api/areads.py, without calling Calls): a value of
    another type equal to a remembered argument (True == 1) still reads a key of its own."""
    unique = uuid.uuid4().hex[:8]
    cache = Refresher(redis_url, near_cache=near_cache, namespace=f"memo-{unique}")
    try:
        @cache.loader(ttl=60, name=f"memo.typed.{unique}")
        def load(a: Any) -> str:
            return f"{type(a).__name__}:{a}"

        for _ in range(3):  # loaded, then served (from memory, with a near cache)
            assert reading.get(load, first) == f"{type(first).__name__}:{first}"
            assert reading.get(load, alias) == f"{type(alias).__name__}:{alias}"
    finally:
        cache.close()
