"""Key naming: stable, collision-free, and one Redis Cluster slot per cached value.

The layout (a value, its lock, pending marker and signal channel) is the protocol's:
refresher/core/protocol/layout.py. A loader with `version=N` uses `<loader>:vN` in place of
`<loader>` (names hold no ':', and the arguments part starts with '[' or '#', so neither can
be mistaken for the other).

Loader names and namespaces may not hold ':' or braces, and the arguments are canonical
JSON (always an array, so it starts with '['). Arguments that are long or hold braces are
replaced by '#' and a 128-bit BLAKE2b digest, which can never look like an array. The part
in braces is therefore unique per call and is the hash tag that keeps the four together.

The lock and the marker sit outside `<namespace>:{`, the prefix a near cache tracks
(client.py), so a committed value costs every tracking process one invalidation push, not
three (issue 23). Their names cannot meet another namespace's: a key's only '{' follows
':' in a value key, 'lock' or 'pending' in the others. In 0.1.0 they were `<value>:lock`
and `<value>:pending` (CHANGELOG.md: a rolling deploy); the value key and channel are as then.

Arguments JSON has no type for (datetime, date, UUID, Decimal, Enum) are written as one-key
tags such as {"$uuid": "..."}, each in one canonical form, so equal values make one key and
no two types (nor a plain string) ever share one. A user's dict that looks like a tag (one
key, '$' and lowercase letters) is escaped as {"$dict": {...}}, so it stays a dict too. The
tagged form is also what a refresh task carries, so a worker can rebuild the typed values.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum, Flag
from typing import Any, Callable, Mapping
from uuid import UUID

from refresher.core.protocol.layout import LOCK, PENDING, SIGNAL

MAX_READABLE_ARGS = 64
NAME_PATTERN = r"\A[^:{}\s]+\Z"  # whole string: `$` would let a trailing newline through
_NAME = re.compile(NAME_PATTERN)
_NAMESPACE = re.compile(r"\A[^{}\s]+\Z")
_CANONICAL = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
)
_ENCODE_STR = json.encoder.encode_basestring  # the one _CANONICAL uses (ensure_ascii=False)
_TAG = re.compile(r"\$[a-z]+")
_PARSERS: dict[str, Callable[[str], Any]] = {
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$uuid": UUID,
    "$decimal": Decimal,
}

EnumLookup = Callable[[], Mapping[str, type[Enum]]]
"""The enums a loader may take, by `enum_name`: called only when an enum is met."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"loader name {name!r} must be non-empty with no ':', braces or spaces")
    return name


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace):
        raise ValueError(f"namespace {namespace!r} must be non-empty with no braces or spaces")
    return namespace


def canonical_json(value: Any) -> str:
    """Raises TypeError/ValueError for values JSON cannot carry faithfully."""
    return _CANONICAL.encode(value)


def int_str_json(values: list[Any] | tuple[Any, ...]) -> str | None:
    """canonical_json of a list whose items are all exactly int or str (bool and IntEnum
    are not), the very same string, with no encoder built; None for any other list. The
    hit path builds keys through this when its memo of recent calls does not have them."""
    parts = []
    for value in values:  # a loop, not a generator: this is the hit path
        kind = type(value)
        if kind is str:
            parts.append(_ENCODE_STR(value))
        elif kind is int:
            parts.append(int.__repr__(value))  # as json's encoder writes an int
        else:
            return None
    return "[" + ",".join(parts) + "]"


def tagged(value: Any, enums: EnumLookup) -> Any:
    """The JSON-ready form of an argument. Raises TypeError for an enum that `enums` lacks
    and for dict keys that are not strings; canonical_json refuses the rest."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, Enum):
        name = enum_name(kind)
        if enums().get(name) is not kind:
            raise TypeError(f"enum {name} is not in the loader's parameter annotations, so a worker could not rebuild it")
        return {"$enum": [name, value.value if isinstance(value, Flag) else value.name]}
    if isinstance(value, (list, tuple)):
        return [tagged(item, enums) for item in value]
    if isinstance(value, dict):
        return _tagged_dict(value, enums)
    if isinstance(value, datetime):  # before date, its base class
        aware = value.utcoffset() is not None
        return {"$datetime": (value.astimezone(timezone.utc) if aware else value).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Decimal):
        return {"$decimal": _decimal_text(value)}
    return value


def untagged(value: Any, enums: EnumLookup) -> Any:
    """The typed arguments back from their tagged form (as a task carried them). Raises
    TypeError for an unknown tag or enum, ValueError for a malformed one."""
    if isinstance(value, list):
        return [untagged(item, enums) for item in value]
    if isinstance(value, dict):
        tag = _tag_of(value)
        if tag is not None:
            return _untag(tag, value[tag], enums)
        return {key: untagged(item, enums) for key, item in value.items()}
    return value


def enum_name(cls: type[Enum]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _tagged_dict(value: dict[Any, Any], enums: EnumLookup) -> dict[str, Any]:
    """Only string keys: JSON would turn {1: x} into {"1": x}, both would share a key, and
    a worker would call the loader with the second. A dict that looks like a tag is escaped."""
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or isinstance(key, Enum):
            raise TypeError("dict keys must be strings")
        out[key] = tagged(item, enums)
    return {"$dict": out} if _tag_of(out) is not None else out


def _tag_of(value: dict[Any, Any]) -> str | None:
    """The tag of a dict that is one: a single key, '$' and lowercase letters."""
    if len(value) == 1 and isinstance(key := next(iter(value)), str) and _TAG.fullmatch(key):
        return key
    return None


def _untag(tag: str, body: Any, enums: EnumLookup) -> Any:
    if tag == "$dict":
        if not isinstance(body, dict):
            raise ValueError(f"malformed $dict tag {body!r}")
        return {key: untagged(item, enums) for key, item in body.items()}
    if tag == "$enum":
        if not (isinstance(body, list) and len(body) == 2 and isinstance(body[0], str)):
            raise ValueError(f"malformed enum tag {body!r}")
        name, member = body
        cls = enums().get(name)
        if cls is None:
            raise TypeError(f"unknown enum {name!r}: not in the loader's parameter annotations")
        try:
            return cls[member] if isinstance(member, str) else cls(member)
        except KeyError:
            raise ValueError(f"{name} has no member {member!r}") from None
    parse = _PARSERS.get(tag)
    if parse is None:
        raise TypeError(f"unknown tag {tag!r}")
    if not isinstance(body, str):
        raise ValueError(f"malformed {tag} tag {body!r}")
    return parse(body)


def _decimal_text(value: Decimal) -> str:
    """Decimal('1.0') == Decimal('1.00'), so both are written '1': trailing zeros go.
    Done by hand because Decimal.normalize() rounds to the context's precision."""
    if value.is_nan():
        raise ValueError("a NaN Decimal is not equal to itself, so cannot be a cache key")
    if value.is_infinite():
        return str(value)
    if not value:
        return "0"  # 0, -0 and 0E+5 are one value
    sign, digits, exponent = value.as_tuple()
    kept = len(digits)
    while digits[kept - 1] == 0:
        kept -= 1
    return str(Decimal((sign, digits[:kept], int(exponent) + len(digits) - kept)))


@dataclass(frozen=True, slots=True)
class Keys:
    value: str
    lock: str
    pending: str
    signal: str

    @classmethod
    def build(cls, namespace: str, name: str, args_json: str) -> Keys:
        if len(args_json.encode()) > MAX_READABLE_ARGS or "{" in args_json or "}" in args_json:
            args_json = "#" + hashlib.blake2b(args_json.encode(), digest_size=16).hexdigest()
        tag = f"{{{name}:{args_json}}}"
        value = f"{namespace}:{tag}"
        return cls(value, f"{namespace}:{LOCK}{tag}", f"{namespace}:{PENDING}{tag}", value + SIGNAL)
