"""The read-path decision, pure: no Redis, a frozen clock, a fixed random draw."""

from __future__ import annotations

import math

import pytest
from freezegun import freeze_time

from refresher.core.envelope import Envelope
from refresher.io.clock import now_ms
from refresher.core.policy import Verdict, Window, XFetch, decide

WRITTEN = 1_700_000_000_000
TTL = 300_000  # 300 s; the default window is the last 30 s


def envelope(stale_ms: int = 0, delta_ms: int = 0, tombstone: bool = False) -> Envelope:
    return Envelope(1, WRITTEN, TTL, stale_ms, delta_ms, b"{}", tombstone)


def at(iso_offset_ms: int) -> int:
    """The client's clock, frozen at WRITTEN + offset."""
    with freeze_time(_iso(WRITTEN + iso_offset_ms)):
        return now_ms()


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat()


@pytest.mark.parametrize(
    ("offset_ms", "verdict"),
    [
        (0, Verdict.FRESH),
        (269_999, Verdict.FRESH),  # one ms before the window opens
        (270_000, Verdict.REFRESH),  # the window opens at 90% of the TTL
        (299_999, Verdict.REFRESH),
        (300_000, Verdict.MISS),  # hard expiry, no stale grace
    ],
)
def test_window_boundaries_on_a_frozen_clock(offset_ms: int, verdict: Verdict) -> None:
    assert at(offset_ms) == WRITTEN + offset_ms
    assert decide(envelope(), at(offset_ms), Window(0.1)) is verdict


def test_stale_grace_serves_until_its_own_end() -> None:
    e = envelope(stale_ms=60_000)
    assert decide(e, at(300_000), Window()) is Verdict.STALE
    assert decide(e, at(359_999), Window()) is Verdict.STALE
    assert decide(e, at(360_000), Window()) is Verdict.MISS


def test_nothing_or_a_tombstone_is_a_miss() -> None:
    assert decide(None, at(0), Window()) is Verdict.MISS
    assert decide(envelope(tombstone=True), at(0), Window()) is Verdict.MISS


def test_a_wider_window_opens_earlier() -> None:
    assert decide(envelope(), at(150_000), Window(0.5)) is Verdict.REFRESH
    assert decide(envelope(), at(149_999), Window(0.5)) is Verdict.FRESH


def test_xfetch_follows_the_formula() -> None:
    e = envelope(delta_ms=2_000)
    # now - delta*beta*ln(r) >= expiry  <=>  expiry - now <= -delta*beta*ln(r)
    r = 0.5
    lead = -2_000 * 1.0 * math.log(r)  # about 1386 ms before expiry
    assert decide(e, WRITTEN + TTL - int(lead) + 1, XFetch(1.0), lambda: r) is Verdict.REFRESH
    assert decide(e, WRITTEN + TTL - int(lead) - 2, XFetch(1.0), lambda: r) is Verdict.FRESH
    # a larger beta refreshes earlier for the same draw
    assert decide(e, WRITTEN + TTL - int(lead) - 2, XFetch(2.0), lambda: r) is Verdict.REFRESH


def test_xfetch_with_no_measured_cost_waits_for_expiry() -> None:
    assert decide(envelope(delta_ms=0), at(299_999), XFetch(), lambda: 0.01) is Verdict.FRESH


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_window_outside_the_unit_interval_is_rejected(fraction: float) -> None:
    with pytest.raises(ValueError, match="refresh window"):
        Window(fraction)


def test_xfetch_needs_a_positive_beta() -> None:
    with pytest.raises(ValueError, match="beta"):
        XFetch(0)
