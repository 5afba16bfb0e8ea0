"""Turning a loader call's arguments into canonical JSON and keys.

f(1) and f(user_id=1) are one call (one key); 1 and "1" are two. Canonical arguments
are also what a refresh task carries (`Call.wire`, tagged JSON), so a worker calls the
loader with values equal to the reader's (`Calls.from_wire`).
"""

from __future__ import annotations

import inspect
import itertools
import typing
from enum import Enum
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from refresher.core.keys import Keys, canonical_json, enum_name, int_str_json, tagged, untagged

CACHE_SIZE = 4096
MAX_REPR = 1024  # as Celery's own argsrepr
_PLAIN = frozenset((int, str, float, bool, type(None)))


class Call(NamedTuple):
    """One call's arguments in canonical form, and the keys they map to."""

    args: list[Any]
    kwargs: dict[str, Any]
    keys: Keys
    wire: list[Any]
    """[args, kwargs] as tagged JSON: what a refresh task carries."""


class Calls:
    """Builds the Call for a loader's arguments; remembers recent ones by value."""

    def __init__(self, fn: Callable[..., Any], namespace: str, name: str, version: int | None = None,
                 remember: int = CACHE_SIZE) -> None:
        self.namespace = namespace
        self._remember = remember  # calls kept by value, at most
        self.name = name
        # A versioned loader's keys name its version: versions never read each other's values.
        self._key_name = name if version is None else f"{name}:v{version}"
        self._fn = fn
        self._enums: dict[str, type[Enum]] | None = None
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self._positional_arity = len(params) if simple else -1
        self._keyword_form = any(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params)
        self.recent: dict[tuple[Any, ...], Call] = {}  # by memo: an f(id)'s under (id,), for an int or str id

    def __call__(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> Call:
        # Remembered only for int and str arguments: tuples of those are equal exactly
        # when their JSON is (True == 1 and 0.0 == -0.0 would alias otherwise).
        if len(args) == 1 and not kwargs and type(args) is tuple:  # f(id), remembered: no loop (~0.03 us a hit)
            only = args[0]
            if (type(only) is str or type(only) is int) and (recent := self.recent.get(args)) is not None:
                return recent
        for a in args:  # _rememberable(args), inline: this runs on every hit
            if type(a) is not int and type(a) is not str:
                return self._bound(args, kwargs)
        if not kwargs:
            memo: tuple[Any, ...] = args if type(args) is tuple else tuple(args)
        elif _rememberable(kwargs.values()):
            memo = (tuple(args), tuple(kwargs.items()))
        else:
            return self._bound(args, kwargs)
        recent = self.recent.get(memo)
        if recent is None:
            if len(self.recent) >= self._remember:
                self._forget_oldest()
            recent = self.recent[memo] = self._bound(args, kwargs)
        return recent

    def _forget_oldest(self) -> None:
        """The oldest quarter goes: with more keys in use than fit, 43% of calls still hit
        at twice as many (28% if all went at once), and a miss pays ~0.14 us more, not the
        ~1.5 us that dropping one at a time costs (a dict scans its deleted slots)."""
        for memo in list(itertools.islice(self.recent, self._remember // 4 + 1)):  # one C call: no thread between
            self.recent.pop(memo, None)  # None: another thread took that one

    def from_wire(self, wire: Any) -> Call:
        """The Call a refresh task carried, with its typed arguments rebuilt. Enums come
        only from this loader's parameter annotations, never from a name in the message."""
        try:
            args, kwargs = wire
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ValueError("expected [args, kwargs]")
            args, kwargs = untagged(args, self._enum_classes), untagged(kwargs, self._enum_classes)
        except (TypeError, ValueError, ArithmeticError) as exc:  # decimal.InvalidOperation is an ArithmeticError
            raise TypeError(f"loader {self.name!r}: cannot rebuild the arguments of a refresh task: {exc}") from None
        return self(args, kwargs)

    def _bound(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> Call:
        if not kwargs and len(args) == self._positional_arity:
            # With only plain parameters, a call that passes all of them positionally is
            # already canonical: no need for inspect's binding.
            return self._build(list(args), {})
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"loader {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return self._build(list(bound.args), dict(bound.kwargs))

    def _build(self, args: list[Any], kwargs: dict[str, Any]) -> Call:
        try:
            listed = None if kwargs else int_str_json(args)
            if listed is not None:
                wire = [args, kwargs]
                args_json = f"[{listed},{{}}]" if self._keyword_form else listed
            else:
                wire = [args, kwargs] if not kwargs and _plain(args) else tagged([args, kwargs], self._enum_classes)
                args_json = canonical_json(wire if self._keyword_form else wire[0])
            keys = Keys.build(self.namespace, self._key_name, args_json)  # a lone surrogate: UnicodeEncodeError
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a datetime out of range in UTC
            raise TypeError(f"loader {self.name!r}: arguments cannot be used as a cache key: {exc}") from None
        return Call(args, kwargs, keys, wire)

    def _enum_classes(self) -> dict[str, type[Enum]]:
        """The enums named in the parameter annotations, read on first need (annotations
        may name classes defined after the loader)."""
        if self._enums is None:
            try:
                hints = typing.get_type_hints(self._fn, include_extras=True)
            except (NameError, TypeError, AttributeError, SyntaxError) as exc:
                raise TypeError(f"cannot resolve the parameter annotations: {exc}") from None
            hints.pop("return", None)
            self._enums = {enum_name(cls): cls for hint in hints.values() for cls in _enums_in(hint)}
        return self._enums


def call_repr(name: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """A call as a person reads it, such as `user_profile(2)` or
    `report(datetime.date(2024, 5, 1), region='eu')`: what Flower shows as a refresh
    task's arguments. Built from the wire form (`Call.wire`), so it needs no loader: typed
    arguments are shown rebuilt, an enum as its tag (its class is the loader's to know)."""
    shown = [_shown(a) for a in args] + [f"{key}={_shown(value)}" for key, value in kwargs.items()]
    text = f"{name}({', '.join(shown)})"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR - 3] + "..."


def _shown(value: Any) -> str:
    try:
        return repr(untagged(value, _no_enums))
    except (TypeError, ValueError):  # an enum, or a malformed tag: shown as it came
        return repr(value)


def _no_enums() -> dict[str, type[Enum]]:
    return {}


def _rememberable(args: Iterable[Any]) -> bool:
    for a in args:  # a loop, not all(...): this runs on every hit
        if type(a) is not int and type(a) is not str:
            return False
    return True


def _plain(args: list[Any]) -> bool:
    """Arguments canonical_json takes as they are (no tags, no dict keys to check)."""
    for a in args:
        if type(a) not in _PLAIN:
            return False
    return True


def _enums_in(annotation: Any) -> Iterator[type[Enum]]:
    """Enum classes anywhere in an annotation: Color, Color | None, list[Color], Literal[Color.RED]."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        yield annotation
    elif isinstance(annotation, Enum):
        yield type(annotation)
    for arg in typing.get_args(annotation):
        yield from _enums_in(arg)
