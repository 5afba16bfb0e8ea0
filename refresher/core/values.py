"""How a loader's values become bytes and back, typed by the loader's return annotation.

A hit must return exactly what the load that filled the cache returned. Plain JSON cannot
promise that ({1: "a"} comes back as {"1": "a"}, a tuple as a list, a datetime not at all),
so the return annotation says what the bytes decode into (msgspec, or pydantic for
annotations that hold a pydantic model), and `round_trip` refuses at load any value that
would still come back different, instead of letting a hit reshape it later.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import sys
import types
import typing
import uuid
from typing import Any, Callable, Iterator

import msgspec
import msgspec.inspect

_SCALARS = frozenset((str, int, float, bool, type(None)))
Encode = Callable[[Any], bytes]
Decode = Callable[[bytes], Any]


class UndecodableValue(ValueError):
    """Cached bytes that no longer decode into the annotated type, say written before a
    deploy changed its fields: the caller treats them as a miss and reloads."""


class ValueCodec:
    """One loader's values as compact JSON, decoded into its return annotation.

    Built once per loader: decode runs on every hit, so it only calls a prebuilt decoder.
    """

    def __init__(self, annotation: Any = Any) -> None:
        self.annotation = annotation
        self._encode: Encode
        self._decode: Decode
        self._decode_errors: tuple[type[Exception], ...]
        if _needs_pydantic(annotation):
            import pydantic

            adapter = pydantic.TypeAdapter(annotation)
            self._encode = functools.partial(adapter.dump_json, warnings=False)
            self._decode = adapter.validate_json
            self._decode_errors = (ValueError,)
        else:
            self._encode = msgspec.json.Encoder().encode
            self._decode = msgspec.json.Decoder(annotation).decode
            self._decode_errors = (msgspec.DecodeError,)

    def encode(self, value: Any) -> bytes:
        try:
            return self._encode(value)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            raise TypeError(f"cannot encode a {type(value).__name__}: {exc}") from None

    def decode(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except self._decode_errors as exc:
            raise UndecodableValue(f"cached bytes do not decode as {_describe(self.annotation)}: {exc}") from None

    def round_trip(self, value: Any) -> tuple[bytes, Any]:
        """The bytes to store and the value a later hit will return, which is the one to
        hand out now. Raises TypeError naming the part that would come back different."""
        payload = self.encode(value)
        try:
            decoded = self._decode(payload)
        except self._decode_errors as exc:
            raise TypeError(_decode_failure(exc)) from None
        difference = _difference(value, decoded, "value")
        if difference is not None:
            raise TypeError(f"{difference} ({_hint(self.annotation, difference)})")
        return payload, decoded


def _hint(annotation: Any, difference: str) -> str:
    """What to change. A part deep inside a value that does fit the annotation (a Decimal
    in a `dict`) is not the value's fault but the annotation's, which does not say it."""
    if annotation is Any:
        return "annotate the loader's return type"
    if difference.startswith("value: "):
        return f"the value is not a {_describe(annotation)}"
    return (f"{_describe(annotation)} does not say what type this part is: annotate it, "
            "e.g. dict[str, Decimal], a TypedDict or a dataclass")


_IMMUTABLE_SCALARS = (str, int, float, bool, type(None), bytes, datetime.date, datetime.time, uuid.UUID, decimal.Decimal, enum.Enum)


def frozen(value: Any) -> bool:
    """Whether no caller can change `value` in place (so one object can serve every hit):
    scalars, tuples and frozensets of frozen values, frozen dataclasses and msgspec
    Structs whose fields are frozen."""
    if isinstance(value, _IMMUTABLE_SCALARS):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(frozen(item) for item in value)
    if isinstance(value, msgspec.Struct):
        return bool(value.__struct_config__.frozen) and all(frozen(item) for item in msgspec.structs.astuple(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        params = getattr(value, "__dataclass_params__", None)
        return bool(params is not None and params.frozen) and all(
            frozen(getattr(value, field.name)) for field in dataclasses.fields(value)
        )
    return False


def codec_for(fn: Callable[..., Any]) -> ValueCodec:
    """The codec for a loader's values. An `async def` loader's annotation already names
    the awaited type; no annotation means plain JSON."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except (NameError, TypeError, AttributeError, SyntaxError) as exc:
        raise TypeError(f"{_describe(fn)}: cannot resolve the return annotation: {exc}") from None
    annotation = hints.get("return", Any)
    try:
        return ValueCodec(annotation)
    except TypeError as exc:
        raise TypeError(f"{_describe(fn)}: cannot cache values of type {_describe(annotation)}: {exc}") from None


def _needs_pydantic(annotation: Any) -> bool:
    """msgspec handles everything but pydantic models, and the types it does not know,
    which it reports as custom types. pydantic is imported only if a model is mentioned
    (and then it already is)."""
    pydantic = sys.modules.get("pydantic")
    custom = list(_custom_types(msgspec.inspect.type_info(annotation), set()))
    for cls in custom:
        if pydantic is None or not issubclass(cls, pydantic.BaseModel):
            raise TypeError(f"{cls.__qualname__} is not a type msgspec or pydantic can decode")
    return bool(custom)


def _custom_types(node: Any, seen: set[int]) -> Iterator[type]:
    """Walk msgspec's description of a type (it may be recursive) for custom types."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, msgspec.inspect.CustomType):
        yield node.cls
    parts: tuple[Any, ...] = msgspec.structs.astuple(node) if isinstance(node, msgspec.Struct) else ()
    for part in parts:
        for child in part if isinstance(part, tuple) else (part,):
            child = child.type if isinstance(child, msgspec.inspect.Field) else child
            if isinstance(child, msgspec.inspect.Type):
                yield from _custom_types(child, seen)


def _difference(sent: Any, back: Any, path: str) -> str | None:
    """Where `back` differs from `sent`, types included, or None."""
    if type(sent) is not type(back):
        return f"{path}: {type(sent).__name__} came back as {type(back).__name__}"
    if type(sent) in _SCALARS:  # most of the walk: leave the checks below for the rest
        return None if sent == back else f"{path}: {sent!r} came back as {back!r}"
    if isinstance(sent, (dict, list, tuple)) and len(sent) != len(back):
        return f"{path}: {len(sent)} items came back as {len(back)}"
    if isinstance(sent, dict):
        for (key, item), (key_back, item_back) in zip(sent.items(), back.items()):
            if type(key) is not type(key_back) or key != key_back:
                return f"{path}: key {key!r} came back as {key_back!r}"
            found = _difference(item, item_back, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(sent, (list, tuple)):
        names = getattr(sent, "_fields", None)  # a NamedTuple: name its fields
        for i, (item, item_back) in enumerate(zip(sent, back)):
            found = _difference(item, item_back, f"{path}.{names[i]}" if names else f"{path}[{i}]")
            if found:
                return found
        return None
    fields = _field_names(sent)
    if fields is not None:
        for name in fields:
            found = _difference(getattr(sent, name), getattr(back, name), f"{path}.{name}")
            if found:
                return found
        return None
    if sent != back:
        return f"{path}: {sent!r} came back as {back!r}"
    return None


def _field_names(value: Any) -> list[str] | None:
    if dataclasses.is_dataclass(value):
        return [f.name for f in dataclasses.fields(value)]
    if isinstance(value, msgspec.Struct):
        return list(value.__struct_fields__)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return list(type(value).model_fields)
    return None


def _decode_failure(exc: Exception) -> str:
    """msgspec says where with "- at `$.a[0]`"; name that part the way _difference does."""
    message, _, where = str(exc).partition(" - at `")
    return f"value{where.rstrip('`')[1:]}: {message}" if where else f"value: {message}"


def _describe(thing: Any) -> str:
    """A class or function by its qualified name, anything else (list[int]) by repr."""
    return thing.__qualname__ if isinstance(thing, (type, types.FunctionType)) else repr(thing)
