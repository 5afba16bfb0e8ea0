"""Typed values (refresher.core.values): pure, no Redis. A value comes back from its bytes
exactly as it went in, or is refused at load naming the part that would not."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Any, NamedTuple, Optional, TypedDict
from uuid import UUID

import msgspec
import pydantic
import pytest

from refresher.core.values import UndecodableValue, ValueCodec, codec_for


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class SubPoint(Point):
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Profile:
    id: int
    tags: tuple[str, ...]
    born: date
    home: Point | None = None


class Item(msgspec.Struct):
    sku: str
    price: Decimal


class FrozenItem(msgspec.Struct, frozen=True):
    sku: str
    seen: datetime


class Row(TypedDict):
    id: int
    name: str


class Pair(NamedTuple):
    left: int
    right: str


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Account(pydantic.BaseModel):
    id: int
    opened: datetime
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Holder:
    account: Account


UTC = timezone.utc
PLUS_2 = timezone(timedelta(hours=2))

SUPPORTED: list[tuple[Any, Any]] = [
    (Point, Point(1, 2)),
    (Profile, Profile(7, ("a", "b"), date(1990, 5, 17), Point(0, -1))),
    (Item, Item("x-1", Decimal("19.90"))),
    (FrozenItem, FrozenItem("y", datetime(2024, 2, 29, 12, 0, 1, 5, tzinfo=UTC))),
    (Row, Row(id=1, name="é")),
    (Pair, Pair(1, "one")),
    (datetime, datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=PLUS_2)),
    (datetime, datetime(2024, 1, 2, 3, 4, 5)),
    (date, date(2000, 2, 29)),
    (UUID, UUID("12345678-1234-5678-1234-567812345678")),
    (Decimal, Decimal("1.10")),
    (Colour, Colour.BLUE),
    (Level, Level.HIGH),
    (tuple[int, str], (1, "a")),
    (tuple[int, ...], (1, 2, 3)),
    (list[Point], [Point(1, 2), Point(3, 4)]),
    (dict[int, str], {1: "a", -2: "b"}),
    (Optional[Point], None),
    (Optional[Point], Point(5, 6)),
    (dict[int, list[tuple[Pair, datetime]]], {3: [(Pair(1, "x"), datetime(2020, 1, 1, tzinfo=UTC))]}),
    (list[Profile], [Profile(1, (), date(2001, 1, 1))]),
    # naive datetimes for pydantic: it decodes UTC as its own TzInfo(0), equal but with another repr
    (Account, Account(id=1, opened=datetime(2024, 1, 1, 9), tags=("t",))),
    (Optional[list[Account]], [Account(id=2, opened=datetime(2024, 1, 1))]),
    (Holder, Holder(Account(id=3, opened=datetime(2024, 1, 1)))),
    (Any, {"a": [1, 2.5, None, True, "é"], "b": {"c": []}}),
]


@pytest.mark.parametrize(("annotation", "value"), SUPPORTED, ids=lambda p: getattr(p, "__name__", None))
def test_supported_values_come_back_exactly(annotation: Any, value: Any) -> None:
    codec = ValueCodec(annotation)
    payload, decoded = codec.round_trip(value)
    hit = codec.decode(payload)
    # repr tells tuple from list, 1 from 1.0, a subclass from its base, at any depth
    assert repr(decoded) == repr(hit) == repr(value)
    assert decoded == value
    assert payload == json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False).encode()  # compact


async def _async_profile() -> Profile:
    raise AssertionError("never called")


def _dict_of_points() -> dict[int, Point]:
    raise AssertionError("never called")


def _unannotated():
    raise AssertionError("never called")


def _explicit_any() -> Any:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("fn", "annotation"),
    [(_async_profile, Profile), (_dict_of_points, dict[int, Point]), (_unannotated, Any), (_explicit_any, Any)],
)
def test_codec_for_reads_the_return_annotation(fn: Any, annotation: Any) -> None:
    """This module uses `from __future__ import annotations`: the hints are strings."""
    assert codec_for(fn).annotation == annotation


def test_codec_for_an_async_loader_decodes_the_awaited_type() -> None:
    value = Profile(1, ("x",), date(2020, 1, 1))
    _, decoded = codec_for(_async_profile).round_trip(value)
    assert type(decoded) is Profile and decoded == value


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({1: "a"}, "value: key 1 came back as '1'"),
        ((1, 2), "value: tuple came back as list"),
        ([{"tags": (1,)}], "value[0]['tags']: tuple came back as list"),
        ({"a": {1, 2}}, "value['a']: set came back as list"),
        ({"when": datetime(2024, 1, 1)}, "value['when']: datetime came back as str"),
        ([Decimal("1.5")], "value[0]: Decimal came back as str"),
        (Point(1, 2), "value: Point came back as dict"),
        (float("nan"), "value: float came back as NoneType"),
    ],
)
def test_plain_json_refuses_what_json_would_reshape(value: Any, where: str) -> None:
    with pytest.raises(TypeError) as info:
        ValueCodec().round_trip(value)
    assert str(info.value).startswith(where + " ")
    assert "annotate" in str(info.value)


@pytest.mark.parametrize(
    ("annotation", "value", "where"),
    [
        (list[Profile], [Profile(1, ["a"], date(2020, 1, 1))], "value[0].tags: list came back as tuple"),
        (Point, SubPoint(1, 2, "s"), "value: SubPoint came back as Point"),
        (list[int], [1, "x"], "value[1]: Expected `int`, got `str`"),
        (Pair, Pair(1, 2), "value[1]: Expected `str`, got `int`"),
        (float, 1, "value: int came back as float"),
        (dict[str, Pair], {"k": (1, "x")}, "value['k']: tuple came back as Pair"),
        (Account, Account.model_construct(id="7", opened=datetime(2024, 1, 1, tzinfo=UTC)), "value.id: str came back as int"),
    ],
)
def test_typed_round_trip_names_the_part_that_differs(annotation: Any, value: Any, where: str) -> None:
    with pytest.raises(TypeError) as info:
        ValueCodec(annotation).round_trip(value)
    assert str(info.value).startswith(where)


@pytest.mark.parametrize(
    ("annotation", "data"),
    [
        (Profile, b'{"id":1,"born":"2020-01-01"}'),  # written before `tags` was added
        (Item, b'{"sku":"x"}'),
        (list[Point], b'[{"x":1,"y":"2"}]'),
        (Colour, b'"green"'),
        (datetime, b'"yesterday"'),
        (Any, b"not json"),
        (Point, b"\xff\xfe"),
        (Account, b'{"id":1}'),
        (Holder, b'{"account":{"id":"x","opened":"2024-01-01T00:00:00Z"}}'),
    ],
)
def test_bytes_of_an_older_shape_raise_one_exception_type(annotation: Any, data: bytes) -> None:
    with pytest.raises(UndecodableValue):
        ValueCodec(annotation).decode(data)


def test_undecodable_is_a_value_error() -> None:
    assert issubclass(UndecodableValue, ValueError)


@pytest.mark.parametrize("value", [{(1, 2): 3}, object(), {None: 1}])
def test_values_json_cannot_hold_are_a_type_error_at_encode(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot encode"):
        ValueCodec().encode(value)


class Opaque:
    """Neither msgspec nor pydantic knows how to decode this."""


def _returns_opaque() -> list[Opaque]:
    raise AssertionError("never called")


def _returns_undefined() -> Undefined:  # noqa: F821
    raise AssertionError("never called")


@pytest.mark.parametrize(("fn", "message"), [(_returns_opaque, "Opaque"), (_returns_undefined, "Undefined")])
def test_unusable_annotations_fail_when_the_codec_is_built(fn: Any, message: str) -> None:
    with pytest.raises(TypeError, match=f"{fn.__qualname__}: .*{message}"):
        codec_for(fn)


def test_pydantic_is_imported_only_for_annotations_that_need_it() -> None:
    script = (
        "import sys, dataclasses\n"
        "from refresher.core.values import codec_for\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    x: int\n"
        "def f() -> list[P]: ...\n"
        "print(codec_for(f).round_trip([P(1)])[1], 'pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[P(x=1)]", "False"]


def test_round_trip_hands_out_the_decoded_value_not_the_original() -> None:
    """The loader's own object may be mutated later by the caller that gets it; every
    path hands out what a hit would decode instead."""
    value = {"a": [1, 2]}
    payload, decoded = ValueCodec().round_trip(value)
    value["a"].append(3)
    assert decoded == {"a": [1, 2]} == ValueCodec().decode(payload)


@pytest.mark.parametrize(
    ("annotation", "value", "hint"),
    [
        (dict | None, {"price": Decimal("1.5")},
         "value['price']: Decimal came back as str (dict | None does not say what type this part is"),
        (dict[str, Any], {"when": datetime(2024, 1, 1)}, "value['when']: datetime came back as str (dict[str, typing.Any] "),
        (float, 1, "value: int came back as float (the value is not a float)"),
    ],
)
def test_the_hint_blames_the_annotation_for_a_part_it_leaves_untyped(annotation: Any, value: Any, hint: str) -> None:
    """Issue 21: a Decimal in a dict-annotated value was reported as "(the value is not a
    dict | None)", which it was."""
    with pytest.raises(TypeError) as info:
        ValueCodec(annotation).round_trip(value)
    assert str(info.value).startswith(hint)
