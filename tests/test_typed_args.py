"""Typed arguments (datetime, date, UUID, Decimal, Enum): one canonical key per value, no
collisions between types, and a wire form a worker turns back into the same values."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, Flag, IntEnum
from typing import Any, Literal, Optional
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refresher.core.calls import Call, Calls


class Colour(Enum):
    RED = "red"
    CRIMSON = "red"  # an alias: the same member as RED
    BLUE = "blue"


class Shade(Enum):
    RED = "red"  # same member name and value as Colour.RED, another enum


class Level(IntEnum):
    ONE = 1
    TWO = 2


class Perm(Flag):
    READ = 1
    WRITE = 2


class Unlisted(Enum):
    X = 1


def typed(
    when: datetime | None = None,
    day: date | None = None,
    id: UUID | None = None,
    amount: Decimal | None = None,
    colour: Colour | None = None,
    *,
    shades: list[Shade] | None = None,
    level: Optional[Level] = None,
    perm: Perm | None = None,
    fixed: Literal[Colour.BLUE] | None = None,
    extra: Any = None,
) -> None:
    """Every typed argument kind, positional and keyword-only; enums found at any depth."""


def anything(a: Any = None, b: Any = None) -> None:
    """No annotation names an enum: enums cannot be arguments here."""


def forward(colour: Later) -> None:
    """Annotates a class defined after it (and after its Calls)."""


TYPED = Calls(typed, "ns", "typed")
ANY = Calls(anything, "ns", "anything")
FORWARD = Calls(forward, "ns", "forward")


class Later(Enum):
    A = "a"


def key(calls: Calls, *args: Any, **kwargs: Any) -> str:
    return calls(args, kwargs).keys.value


def key_of(value: Any) -> str:
    """The key for `value` passed to `typed`: an enum member in the parameter for its class."""
    parameter = {Colour: "colour", Level: "level", Perm: "perm"}.get(type(value), "extra")
    return key(TYPED, **{parameter: value})


def over_json(call: Call) -> Any:
    """What a Celery task with the JSON serializer delivers."""
    return json.loads(json.dumps(call.wire))


offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
naive = st.datetimes()
decimals = st.decimals(allow_nan=False, places=None) | st.decimals(allow_nan=False, allow_infinity=False, places=3)
members = st.sampled_from(Colour)

STRATEGIES = {"datetime": aware | naive, "date": st.dates(), "uuid": st.uuids(), "decimal": decimals, "enum": members}


@pytest.mark.parametrize("kind", STRATEGIES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_keys_are_equal_exactly_when_values_are(kind: str, data: st.DataObject) -> None:
    a = data.draw(STRATEGIES[kind])
    b = data.draw(STRATEGIES[kind])
    assert (key_of(a) == key_of(b)) == (a == b)


def with_trailing_zeros(d: Decimal, zeros: int) -> Decimal:
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)
    return Decimal((sign, (*digits, *(0,) * zeros), exponent - zeros))


@settings(max_examples=150, deadline=None)
@given(aware, offsets, st.decimals(allow_nan=False, allow_infinity=False), st.integers(0, 5), st.uuids())
def test_equal_values_in_other_forms_make_one_key(
    when: datetime, zone: timezone, amount: Decimal, zeros: int, id: UUID
) -> None:
    pairs = [(when, when.astimezone(zone)), (amount, with_trailing_zeros(amount, zeros)), (id, UUID(str(id).upper()))]
    for original, other in pairs:
        assert original == other
        assert key_of(original) == key_of(other)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Decimal("1.0"), Decimal("1.00")),
        (Decimal("100"), Decimal("1E+2")),
        (Decimal("0"), Decimal("-0.000")),
        (datetime(2024, 1, 1, 12, tzinfo=timezone.utc), datetime(2024, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))),
        (Colour.RED, Colour.CRIMSON),
    ],
)
def test_known_equal_pairs_share_a_key(a: Any, b: Any) -> None:
    assert key_of(a) == key_of(b)


def test_types_never_collide_with_each_other_or_with_strings() -> None:
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc)
    uuid = UUID(int=1)
    values: list[Any] = [
        moment, moment.isoformat(), moment.replace(tzinfo=None), moment.replace(tzinfo=None).isoformat(),
        date(2024, 1, 1), "2024-01-01",
        uuid, str(uuid),
        Decimal("1"), 1, "1", 1.0, True, Decimal("Infinity"), "Infinity",
        Level.ONE, Colour.RED, "red", "RED",
        Perm.READ | Perm.WRITE, 3,
    ]
    assert len({key_of(v) for v in values}) == len(values)


def test_same_member_name_in_two_enums_makes_two_keys() -> None:
    keys = {key(TYPED, shades=[Colour.RED]), key(TYPED, shades=[Shade.RED]), key(TYPED, shades=["RED"]), key(TYPED, shades=["red"])}
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((datetime(2024, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=-5))),), {}),
        ((datetime(2024, 3, 1, 8, 30, 0, 1),), {}),
        ((None, date(1999, 12, 31)), {}),
        ((None, None, UUID("00000000-0000-0000-0000-00000000abcd")), {}),
        ((None, None, None, Decimal("-12.3400")), {}),
        ((None, None, None, Decimal("-Infinity")), {}),
        ((None, None, None, None, Colour.CRIMSON), {}),
        ((), {"shades": [Shade.RED], "level": Level.TWO, "perm": Perm.READ | Perm.WRITE, "fixed": Colour.BLUE}),
        ((), {"extra": {"nested": [[1, 2], {"when": date(2020, 1, 1)}], "$uuid": "not a tag", "$gt": 2}}),
        ((), {"extra": [Decimal("1.5"), UUID(int=7), "plain"]}),
    ],
)
def test_the_wire_form_rebuilds_the_same_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    call = TYPED(args, kwargs)
    assert over_json(call) == call.wire  # JSON carries it unchanged
    rebuilt = TYPED.from_wire(over_json(call))
    assert rebuilt.keys == call.keys
    assert rebuilt.args == call.args and rebuilt.kwargs == call.kwargs
    assert [type(a) for a in rebuilt.args] == [type(a) for a in call.args]
    assert {k: type(v) for k, v in rebuilt.kwargs.items()} == {k: type(v) for k, v in call.kwargs.items()}


@settings(max_examples=200, deadline=None)
@given(st.one_of(*STRATEGIES.values()))
def test_any_typed_value_survives_the_wire(value: Any) -> None:
    enum = isinstance(value, Enum)
    call = TYPED((None, None, None, None, value), {}) if enum else TYPED((), {"extra": [value]})
    rebuilt = TYPED.from_wire(over_json(call))
    assert rebuilt.keys == call.keys
    assert rebuilt.args == call.args and rebuilt.kwargs == call.kwargs
    assert type(rebuilt.args[4] if enum else rebuilt.kwargs["extra"][0]) is type(value)


def test_plain_arguments_keep_the_remembered_fast_path() -> None:
    first = ANY([1, "a"], {})
    assert ANY((1, "a"), {}) is first
    assert first.wire == [[1, "a"], {}]
    assert ANY.from_wire(over_json(first)) is first
    assert key_of(Level.ONE) != key(TYPED, extra=1)  # an IntEnum is not taken for the int it equals


def test_enums_may_be_annotated_with_a_class_defined_later() -> None:
    call = FORWARD([Later.A], {})
    assert FORWARD.from_wire(over_json(call)).args == [Later.A]


LOOKALIKES: list[tuple[Any, Any]] = [
    ({"$uuid": "00000000-0000-0000-0000-000000000001"}, UUID(int=1)),
    ({"$decimal": "1"}, Decimal(1)),
    ({"$date": "2024-01-01"}, date(2024, 1, 1)),
    ({"$enum": [f"{__name__}.Colour", "RED"]}, Colour.RED),
    ({"$dict": {"$uuid": "00000000-0000-0000-0000-000000000001"}}, {"$uuid": "00000000-0000-0000-0000-000000000001"}),
    ({"$future": 1}, {"$future": 2}),
]


@pytest.mark.parametrize(("lookalike", "other"), LOOKALIKES)
def test_dicts_that_look_like_tags_stay_dicts(lookalike: Any, other: Any) -> None:
    """Escaped, not refused: any JSON argument still works, and never as the value it mimics."""
    call = TYPED((), {"extra": lookalike})
    rebuilt = TYPED.from_wire(over_json(call))
    assert rebuilt.kwargs["extra"] == lookalike and rebuilt.keys == call.keys
    assert call.keys.value != key_of(other)


tag_like_keys = st.sampled_from(["$uuid", "$date", "$datetime", "$decimal", "$enum", "$dict", "$x", "$", "uuid"])
json_with_lookalikes = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tag_like_keys | st.text(max_size=3), inner, max_size=2),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(json_with_lookalikes, json_with_lookalikes)
def test_plain_json_arguments_survive_the_wire_and_keep_apart(a: Any, b: Any) -> None:
    call = ANY((a, b), {})
    rebuilt = ANY.from_wire(over_json(call))
    assert rebuilt.args == [a, b] and rebuilt.keys == call.keys
    assert (call.keys == ANY((b, a), {}).keys) == (json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True))


@pytest.mark.parametrize("value", [{1: "a"}, {"a": {Colour.RED: 1}}, {None: 1}])
def test_dict_keys_must_be_strings(value: Any) -> None:
    with pytest.raises(TypeError, match="'typed'.*dict keys must be strings"):
        TYPED((), {"extra": value})


@pytest.mark.parametrize(
    ("calls", "args", "message"),
    [
        (ANY, (Colour.RED,), "not in the loader's parameter annotations"),
        (TYPED, (None, None, None, None, Unlisted.X), "Unlisted is not in the loader's parameter annotations"),
        (TYPED, (Decimal("NaN"),), "NaN"),
        (TYPED, (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),), "cache key"),
    ],
)
def test_arguments_a_worker_could_not_rebuild_are_refused(calls: Calls, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message) as info:
        calls(args, {})
    assert repr(calls.name) in str(info.value)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ([[{"$time": "12:00"}], {}], "unknown tag '\\$time'"),
        ([[], {"colour": {"$enum": ["os.Colour", "RED"]}}], "unknown enum 'os.Colour'"),
        ([[], {"colour": {"$enum": [f"{__name__}.Colour", "GREEN"]}}], "no member 'GREEN'"),
        ([[], {"colour": {"$enum": "RED"}}], "malformed enum tag"),
        ([[{"$dict": [1]}], {}], "malformed \\$dict tag"),
        ([[{"$decimal": "one"}], {}], "cannot rebuild"),
        ([[{"$uuid": 5}], {}], "malformed \\$uuid tag"),
        ([[{"$date": "2024-13-01"}], {}], "month"),
        ({"args": [], "kwargs": {}}, "expected \\[args, kwargs\\]"),
        ([[1, 2, 3]], "cannot rebuild"),
        ([[1, 2, 3, 4, 5, 6], {}], "too many positional arguments"),
    ],
)
def test_a_bad_wire_is_a_type_error_naming_the_loader(wire: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message) as info:
        TYPED.from_wire(wire)
    assert "'typed'" in str(info.value)
