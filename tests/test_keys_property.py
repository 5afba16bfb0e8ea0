"""Key naming under arbitrary arguments (hypothesis): stable, collision-free, one slot."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from refresher import Refresher

cache = Refresher("redis://127.0.0.1:1/0")  # keys are computed locally; nothing connects


@cache.loader(ttl=60, name="prop.loader")
def loader(a: Any, b: Any = None, *, c: Any = None) -> None:
    """Positional, defaulted and keyword-only arguments all feed the key."""


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
tricky = st.sampled_from(["", " ", ":", "{", "}", "{}", "}{", "a:b{c}d", "#", "é", "[1]", "\x00", "x" * 300])
arguments = json_values | tricky


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(arguments, arguments, arguments)
def test_keys_are_stable_and_share_one_slot(a: Any, b: Any, c: Any) -> None:
    keys = loader.keys(a, b, c=c)
    assert keys == loader.keys(a, b=b, c=c) == loader.keys(a=a, b=b, c=c)
    slots = {key_slot(k.encode()) for k in (keys.value, keys.lock, keys.pending, keys.signal)}
    assert len(slots) == 1
    assert keys.value.startswith("refresher:{prop.loader:")
    assert len(keys.value.encode()) <= len("refresher:{prop.loader:}") + 64


@settings(max_examples=300, deadline=None)
@given(arguments, arguments, arguments, arguments)
def test_different_arguments_never_share_a_key(a1: Any, c1: Any, a2: Any, c2: Any) -> None:
    same = canonical([a1, c1]) == canonical([a2, c2])
    assert (loader.keys(a1, c=c1) == loader.keys(a2, c=c2)) == same


def test_scalars_that_look_alike_stay_apart() -> None:
    values = [1, "1", 1.5, "1.5", True, "true", None, "null", [1], "[1]", {"a": 1}, '{"a":1}', "", " "]
    assert len({loader.keys(v).value for v in values}) == len(values)
