"""The circuit breaker shared by the publisher and the cache Redis (refresher/io/breaker.py)."""

from __future__ import annotations

import math
import os
import signal
import threading

import pytest

from refresher.io.breaker import Breaker, Masters


def test_an_open_breaker_lets_one_call_through_per_cool_down_and_its_success_closes_it() -> None:
    breaker = Breaker(0.2)
    assert breaker.probe() and not breaker.open  # closed: every call goes ahead
    breaker.trip()
    assert breaker.open and not breaker.available() and not breaker.probe()
    assert not threading.Event().wait(0.25)  # the cool-down: nothing to wait on but time
    assert breaker.available()
    probes = [breaker.probe() for _ in range(5)]
    assert probes == [True, False, False, False, False]  # one probe; the others answer at once
    breaker.succeeded()
    assert not breaker.open and breaker.probe() and breaker.age() == 0


def test_a_held_breaker_lets_no_call_through_until_its_holder_resets_it() -> None:
    breaker = Breaker(0.05)
    breaker.trip(held=True)
    breaker.trip()  # a read failing meanwhile does not shorten the hold
    assert not threading.Event().wait(0.1)
    assert not breaker.probe() and not breaker.available()
    breaker.succeeded()  # a read that got through does not decide for the holder
    assert breaker.open and breaker.age() > 0.09
    breaker.reset()
    assert not breaker.open and breaker.probe()


def test_a_cluster_master_s_breaker_opens_for_its_own_keys_only() -> None:
    """Masters (a Cluster's): the key's master is asked of `where` (redis-py's slot map,
    in use); tripping one master's leaves the others' keys closed."""
    masters = Masters(5, lambda key: key.partition("/")[0])
    masters.of("a:1/k").trip()
    assert masters.open and masters.of("a:1/other").open and masters.node("a:1") is masters.of("a:1/k")
    assert not masters.of("b:2/k").open and masters.of("b:2/k").probe()
    assert masters.node("") is None  # a failure whose master is not known opens nothing
    assert masters.of("b:2/k", "a:1/epoch") is masters.node("a:1")  # the epoch key's master is down
    assert masters.of("b:2/k", "b:2/epoch") is masters.node("b:2") and not masters.of("b:2/k", "c:3/e").open
    frozen = masters.node("b:2")
    assert frozen is not None
    frozen.trip(held=True)
    assert masters.held and not masters.of("a:1/k").held
    masters.reset()  # tracking is on again on every master
    assert not masters.open and not masters.held


@pytest.mark.parametrize("cooldown", [-1, math.nan, math.inf])
def test_the_cool_down_is_a_finite_number_of_seconds(cooldown: float) -> None:
    with pytest.raises(ValueError, match="breaker_cooldown"):
        Breaker(cooldown)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_makes_the_masters_lock_anew() -> None:
    """A prefork worker forked while a thread was adding a master's breaker."""
    masters = Masters(5, lambda key: key)
    with masters._lock:  # held, as by a thread the child will not have
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a deadlock ends the child, failed
            os._exit(0 if masters.node("a:1") is not None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
