"""The hit path's shortcuts to a call's key (int_str_json, the memo of recent calls) give
the very key the general path gives, for every argument (hypothesis)."""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refresher import Refresher
from refresher.core.calls import CACHE_SIZE, Calls
from refresher.core.keys import Keys, canonical_json, int_str_json, tagged

every_char = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)  # lone surrogates too
int_or_str = st.integers() | every_char | st.sampled_from(["", '"', "\\", "\x00", "\u2028", "é", "{", "[1]"])
others = st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.lists(st.integers(), max_size=2)


class Level(IntEnum):
    ONE = 1


def positional(a: Level, b: Any = "b") -> None:
    """A default, so a short call is bound by inspect (and still remembered). `a` is
    annotated with the enum only so that enum may be passed: any value is."""


def keyword(a: Any, *, c: Any = 0) -> None:
    """A keyword-only parameter: its keys are built from [args, kwargs]."""


def slow_key(calls: Calls, args: list[Any], kwargs: dict[str, Any], keyword_form: bool) -> Keys | type[Exception]:
    """The general path: tag, then json's encoder, as for any argument; or the error it
    meets (a lone surrogate cannot be a key)."""
    try:
        wire = tagged([args, kwargs], lambda: {})
        return Keys.build(calls.namespace, calls.name, canonical_json(wire if keyword_form else wire[0]))
    except ValueError:
        return TypeError  # as a loader reports it


def key(calls: Calls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Keys | type[Exception]:
    try:
        return calls(args, kwargs).keys
    except TypeError:
        return TypeError


@settings(max_examples=500, deadline=None)
@given(st.lists(int_or_str | others, max_size=6))
def test_int_str_json_is_canonical_json_or_declines(values: list[Any]) -> None:
    plain = all(type(v) in (int, str) for v in values)
    try:
        slow: str | Exception = canonical_json(values)
    except ValueError as exc:  # an int over sys.get_int_max_str_digits()
        slow = exc
    if not plain:
        assert int_str_json(values) is None
    elif isinstance(slow, str):
        assert int_str_json(values) == slow
    else:
        with pytest.raises(ValueError):
            int_str_json(values)


@settings(max_examples=300, deadline=None)
@given(int_or_str | others, int_or_str | others, st.booleans())
def test_remembered_calls_have_the_general_paths_keys(a: Any, b: Any, by_name: bool) -> None:
    calls = Calls(positional, "ns", "t.positional")
    for args, kwargs in (((a, b), {}), ((a,), {"b": b}) if by_name else ((a,), {})):
        expected = slow_key(calls, [a, b if by_name or len(args) == 2 else "b"], {}, keyword_form=False)
        assert key(calls, args, kwargs) == expected
        assert key(calls, args, kwargs) == expected  # the remembered one, when there is one


@settings(max_examples=300, deadline=None)
@given(int_or_str | others, int_or_str)
def test_keyword_only_loaders_have_the_general_paths_keys(a: Any, c: Any) -> None:
    calls = Calls(keyword, "ns", "t.keyword")
    assert key(calls, (a,), {}) == slow_key(calls, [a], {"c": 0}, keyword_form=True)
    assert key(calls, (a,), {"c": c}) == slow_key(calls, [a], {"c": c}, keyword_form=True)


def test_calls_by_name_are_remembered_and_aliases_are_not() -> None:
    calls = Calls(positional, "ns", "t.positional")
    first = calls((), {"a": 1, "b": "x"})
    assert calls((), {"a": 1, "b": "x"}) is first
    assert calls((1, "x"), {}).keys == first.keys
    assert calls((True, "x"), {}).keys != first.keys  # True == 1, but never its key
    assert calls((Level.ONE, "x"), {}).keys != first.keys
    assert calls((), {"a": True, "b": "x"}).keys != first.keys


def test_a_huge_int_is_refused_as_before() -> None:
    calls = Calls(positional, "ns", "t.positional")
    with pytest.raises(TypeError, match="cannot be used as a cache key"):
        calls((10 ** (sys.get_int_max_str_digits() + 1), "x"), {})


def test_a_near_cached_loader_remembers_as_many_calls_as_the_near_cache_holds() -> None:
    """Past the memo's bound every near hit would build its keys again."""
    cache = Refresher("redis://127.0.0.1:1/0", near_cache=2 * CACHE_SIZE)  # keys are built locally: no connection
    near = cache.loader(ttl=60, name="t.near")(positional)
    plain = cache.loader(ttl=60, name="t.plain", near=False)(positional)
    for loader in (near, plain):
        first = loader.call((0, "x"), {})
        for n in range(1, CACHE_SIZE + 1):
            loader.call((n, "x"), {})
        assert (loader.call((0, "x"), {}) is first) is (loader is near)
