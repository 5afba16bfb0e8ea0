"""The stored value with its metadata, and the codecs that turn values into bytes.

An envelope is a short ASCII header followed by the codec's bytes; its layout, which
other processes and the Lua scripts read, is described with its constants in
refresher/core/protocol/layout.py.

The header carries everything the read path needs (so a hit is one GET, no TTL call),
and its version sits where a Lua script can read it with one pattern match (or a
GETRANGE of the first bytes), whatever codec the payload uses.

The version names one write: every write draws a fresh random 63-bit number, so a
version never comes back for a key, not after the value expires, is evicted or flushed.
A writer is fenced by comparing the exact version it read with the one stored now.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, NamedTuple, Protocol

from refresher.core.protocol.layout import MAGIC, TOMBSTONE, VALUE


class Codec(Protocol):
    """Turns values into bytes and back. Never plug in pickle for data others can write:
    whoever can write to the cache could then run code in every reader."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class JsonCodec:
    """The default codec: compact, UTF-8 JSON."""

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        self._decoder = json.JSONDecoder()

    def encode(self, value: Any) -> bytes:
        return self._encoder.encode(value).encode()

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data.decode())


def new_version() -> int:
    """A version no earlier write of any key has had (with odds of 2**-63 per pair)."""
    return secrets.randbits(63) or 1


class CorruptEnvelope(ValueError):
    """Bytes at a cache key that this library did not write, or cannot read back."""


class Envelope(NamedTuple):
    """One stored value. `payload` stays encoded until somebody needs the value.
    A NamedTuple because the hit path builds one per read."""

    version: int
    written_ms: int
    ttl_ms: int
    stale_ms: int
    delta_ms: int
    payload: bytes
    tombstone: bool = False
    marks: Marks | None = None
    """The loader's epoch and its tags' epochs when the value was loaded (epochs.py);
    None for a value loaded before any was bumped (every epoch 0)."""

    @property
    def expires_ms(self) -> int:
        return self.written_ms + self.ttl_ms

    def to_bytes(self) -> bytes:
        kind = TOMBSTONE if self.tombstone else VALUE if self.marks is None else VALUE + self.marks.to_bytes()
        return b"|".join(
            (
                MAGIC,
                b"%d" % self.version,
                kind,
                b"%d" % self.written_ms,
                b"%d" % self.ttl_ms,
                b"%d" % self.stale_ms,
                b"%d" % self.delta_ms,
                self.payload,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            magic, version, kind, written, ttl, stale, delta, payload = data.split(b"|", 7)
            # tuple.__new__ skips NamedTuple's keyword handling: this runs once per read.
            marks = None if kind == VALUE or kind == TOMBSTONE else _MARKS.get(kind) or Marks.from_bytes(kind)
            envelope = _new(cls, (int(version), int(written), int(ttl), int(stale), int(delta), payload,
                                  kind == TOMBSTONE, marks))
        except ValueError as exc:  # the wrong number of fields, or one that is not a number
            raise CorruptEnvelope(f"not a refresher envelope: {exc}") from None
        if magic != MAGIC:
            raise CorruptEnvelope("not a refresher envelope")
        return envelope


class Marks(NamedTuple):
    """Epochs a value was loaded under, stored in the header's kind field after the
    `v`: `v~<loader epoch>` and `~<tag>=<epoch>,...` for its tags (tag names hold no
    `|`, `~`, `,`, `=` or whitespace; see epochs.check_tag)."""

    epoch: int
    tags: tuple[tuple[str, int], ...] = ()

    def to_bytes(self) -> bytes:
        head = b"~%d" % self.epoch
        if not self.tags:
            return head
        return head + b"~" + b",".join(b"%s=%d" % (tag.encode(), n) for tag, n in self.tags)

    @classmethod
    def from_bytes(cls, kind: bytes) -> Marks:
        value, _, rest = kind.partition(b"~")
        if value != VALUE or not rest:
            raise ValueError(f"unknown kind {kind[:16]!r}")
        epoch, _, tags = rest.partition(b"~")
        pairs = (part.rpartition(b"=") for part in tags.split(b",")) if tags else ()
        marks = cls(int(epoch), tuple((tag.decode(), int(n)) for tag, _, n in pairs))
        if len(_MARKS) >= MARKS_KEPT:
            _MARKS.clear()
        _MARKS[kind] = marks  # many values share their marks: parsed once, not per hit
        return marks


_new = tuple.__new__
MARKS_KEPT = 4096
_MARKS: dict[bytes, Marks] = {}
