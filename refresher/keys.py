"""Key naming: stable, collision-free, and one Redis Cluster slot per cached value.

    <namespace>:{<loader>:<args-json>}            the value
    <namespace>:{<loader>:<args-json>}:lock       the refresh/load lock
    <namespace>:{<loader>:<args-json>}:pending    the "refresh already asked for" marker
    <namespace>:{<loader>:<args-json>}:signal     pub/sub channel that wakes waiters

Loader names and namespaces may not hold ':' or braces, and the arguments are canonical
JSON (always an array, so it starts with '['). Arguments that are long or hold braces are
replaced by '#' and a 128-bit BLAKE2b digest, which can never look like an array. The part
in braces is therefore unique per call and is the hash tag that keeps the four together.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_READABLE_ARGS = 64
_NAME = re.compile(r"^[^:{}\s]+$")
_NAMESPACE = re.compile(r"^[^{}\s]+$")
_CANONICAL = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False
)


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
        value = f"{namespace}:{{{name}:{args_json}}}"
        return cls(value, value + ":lock", value + ":pending", value + ":signal")
