"""Envelope bytes and key naming: pure functions, no Redis."""

from __future__ import annotations

import pytest

from refresher.core.envelope import CorruptEnvelope, Envelope, JsonCodec
from refresher.core.keys import Keys, check_name, check_namespace


def test_envelope_round_trips_with_any_payload_bytes() -> None:
    e = Envelope(7, 1_700_000_000_123, 300_000, 60_000, 250, b'{"a":"x|y|z"}')
    assert Envelope.from_bytes(e.to_bytes()) == e
    t = Envelope(8, 1, 0, 0, 0, b"", tombstone=True)
    assert Envelope.from_bytes(t.to_bytes()).tombstone


@pytest.mark.parametrize("data", [b"", b"hello", b"r1|x|v|1|2|3|4|p", b"r1|1|q|1|2|3|4|p", b"r2|1|v|1|2|3|4|p", b"r1|1|v|1|2"])
def test_foreign_bytes_are_corrupt_not_a_crash(data: bytes) -> None:
    with pytest.raises(CorruptEnvelope):
        Envelope.from_bytes(data)


def test_json_codec_rejects_what_json_cannot_carry() -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode({"é": [1, 2.5, None]})) == {"é": [1, 2.5, None]}
    with pytest.raises(TypeError):
        codec.encode({1, 2})
    with pytest.raises(ValueError):
        codec.encode(float("nan"))


def test_keys_share_one_hash_tag() -> None:
    keys = Keys.build("refresher", "app.load_user", "[1001]")
    assert keys.value == "refresher:{app.load_user:[1001]}"  # as in 0.1.0: existing caches stay readable
    assert (keys.lock, keys.pending, keys.signal) == (
        "refresher:lock{app.load_user:[1001]}", "refresher:pending{app.load_user:[1001]}",
        "refresher:{app.load_user:[1001]}:signal")


@pytest.mark.parametrize("namespace", ["refresher", "a:lock", "a:pending", "a:b:"])
def test_only_the_value_is_under_the_tracked_prefix_and_no_namespace_meets_another(namespace: str) -> None:
    """A near cache tracks `<namespace>:{`: a lock or marker there would cost every tracking
    process two more pushes per commit. And no name of one namespace is another's."""
    ours = Keys.build(namespace, "f", "[1]")
    assert ours.value.startswith(f"{namespace}:{{")
    assert not ours.lock.startswith(f"{namespace}:{{") and not ours.pending.startswith(f"{namespace}:{{")
    others = [Keys.build(other, "f", "[1]") for other in ("a", "a:lock", "a:pending", "a:b", "a:b:", "refresher")
              if other != namespace]
    names = {ours.value, ours.lock, ours.pending}
    assert len(names) == 3 and not names & {n for k in others for n in (k.value, k.lock, k.pending)}


def test_long_or_braced_arguments_are_hashed() -> None:
    long = Keys.build("ns", "f", "[" + "9" * 100 + "]")
    braced = Keys.build("ns", "f", '[{"a":1}]')
    for keys in (long, braced):
        tag = keys.value[keys.value.index("{") + 1 : keys.value.index("}")]
        assert tag.startswith("f:#") and len(tag) == len("f:#") + 32
    assert long.value != braced.value


@pytest.mark.parametrize("name", ["", "a:b", "a{b", "a}b", "a b"])
def test_bad_loader_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="loader name"):
        check_name(name)


@pytest.mark.parametrize("namespace", ["", "a{", "a b"])
def test_bad_namespaces_are_rejected(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        check_namespace(namespace)
