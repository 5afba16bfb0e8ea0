"""Turning a loader call's arguments into canonical JSON and keys.

f(1) and f(user_id=1) are one call (one key); 1 and "1" are two. Canonical arguments
are also what a refresh task carries, so a worker calls the loader exactly as the reader
would have.
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable, NamedTuple

from refresher.keys import Keys, canonical_json

CACHE_SIZE = 4096


class Call(NamedTuple):
    """One call's arguments in canonical form, and the keys they map to."""

    args: list[Any]
    kwargs: dict[str, Any]
    keys: Keys


class Calls:
    """Builds the Call for a loader's arguments; remembers recent ones by value."""

    def __init__(self, fn: Callable[..., Any], namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())
        simple = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        # With only plain parameters, a call that passes all of them positionally is
        # already canonical; skipping inspect's binding keeps the hit path cheap.
        self._positional_arity = len(params) if simple else -1
        self._keyword_form = any(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params)
        self._recent: dict[tuple[Any, ...], Call] = {}

    def __call__(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> Call:
        if not kwargs and len(args) == self._positional_arity:
            # Remembered only for int and str arguments: tuples of those are equal exactly
            # when their JSON is (True == 1 and 0.0 == -0.0 would alias otherwise).
            if _rememberable(args):
                recent = self._recent.get(args := tuple(args))
                if recent is None:
                    if len(self._recent) >= CACHE_SIZE:
                        self._recent.clear()
                    recent = self._recent[args] = self._build(list(args), {})
                return recent
            return self._build(list(args), {})
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"loader {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return self._build(list(bound.args), dict(bound.kwargs))

    def _build(self, args: list[Any], kwargs: dict[str, Any]) -> Call:
        canonical: Any = [args, kwargs] if self._keyword_form else args
        try:
            args_json = canonical_json(canonical)
            if kwargs or any(not isinstance(a, (int, str, float, type(None))) for a in args):
                _check_round_trip(canonical, args_json)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"loader {self.name!r}: arguments cannot be used as a cache key: {exc}") from None
        return Call(args, kwargs, Keys.build(self.namespace, self.name, args_json))


def _rememberable(args: tuple[Any, ...] | list[Any]) -> bool:
    for a in args:  # a loop, not all(...): this runs on every hit
        if type(a) is not int and type(a) is not str:
            return False
    return True


def _check_round_trip(canonical: Any, args_json: str) -> None:
    """JSON turns tuples into lists and int dict keys into strings; refuse the second, or
    {1: x} and {"1": x} would share a key and a worker would call the loader differently."""
    if _normalise(canonical) != json.loads(args_json):
        raise TypeError("dict keys must be strings")


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value
