"""The worker's door (refresher.core.wire): whatever JSON a stranger publishes as `refresher.refresh`
or `refresher.refresh_many`, the task ends in a clean rejection (TaskRejected, which Celery
records as a FAILURE saying why) or a normal refresh, never another exception, and leaves no
lock behind. Run in this process against the real test Redis."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from refresher import RefreshFailed, Refresher, TaskRejected
from refresher.core import wire
from refresher.worker.run import UNKNOWN, refresh_keys, refresh_task
from tests.test_worker import cache, make_loader  # noqa: F401  (cache: the fixture)

TEXT = st.characters(blacklist_characters=":;")  # so that a batch's result splits into its items' outcomes
SUCCESSES = {"written", "deduplicated", "fresh", "backing_off"}  # a task's result
REFUSALS = {"rejected", "version_mismatch"}  # what a TaskRejected begins with
FAILED = "failed"  # arguments the loader took but could not load from (RefreshFailed): the key backs off
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(TEXT, max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(TEXT, max_size=10), inner, max_size=5),
    max_leaves=20,
)


def fields(name: str) -> st.SearchStrategy[list[Any]]:
    """A task's arguments: arbitrary JSON, or each field either well formed or arbitrary."""
    def either(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return good | JSON

    shaped = st.tuples(
        either(st.sampled_from([name, "os.system", name + "\n"])),
        either(st.lists(st.integers(0, 5), min_size=1, max_size=1)),
        either(st.just({})),
        either(st.floats(0, 2e9) | st.sampled_from([math.nan, math.inf, 1e300])),
        either(st.none() | st.integers(-1, 3)),
        either(st.none()),
    ).flatmap(lambda full: st.sampled_from([4, 5, 6, 3]).map(lambda n: list(full[:n])))
    return shaped | st.lists(JSON, max_size=7)


def assert_no_lock_left(r: redis.Redis) -> None:
    assert r.keys("*:lock{*") == []


def test_any_json_as_a_refresh_task_is_rejected_or_refreshed(cache: Refresher, r: redis.Redis) -> None:  # noqa: F811
    load, _ = make_loader(cache)
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(fields(load.name))
    @example([load.name, [1], {}, time.time()])  # well formed: the refresh runs
    def one(task: list[Any]) -> None:
        try:
            seen.add(refresh_task(*task))
        except TaskRejected as exc:
            seen.add(str(exc).split(":", 1)[0])
        except RefreshFailed:
            seen.add(FAILED)
        assert seen <= SUCCESSES | REFUSALS | {FAILED}
        assert_no_lock_left(r)

    one()
    assert {"written", "rejected"} <= seen  # both ends were reached


def test_any_json_as_a_refresh_many_task_is_rejected_or_refreshed(cache: Refresher, r: redis.Redis) -> None:  # noqa: F811
    load, _ = make_loader(cache)
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(fields(load.name), max_size=4) | JSON)
    @example([[load.name, [2], {}, time.time(), None], ["os.system", ["true"], {}, time.time()]])
    def one(items: Any) -> None:
        refused = None
        try:
            result = refresh_keys(items)
        except TaskRejected as exc:
            refused, result = exc, str(exc)
        except RefreshFailed as exc:  # a loader raised on some item: the message names it
            assert f": {FAILED} (" in str(exc) or ": error (" in str(exc), exc
            seen.add(FAILED)
            assert_no_lock_left(r)
            return
        if refused is not None and result.startswith("rejected: "):  # the whole batch refused
            seen.add("rejected")
        else:  # one outcome per item, refused if any item was
            outcomes = [item.rsplit(": ", 1)[-1] for item in result.split("; ")] if result else []
            seen.update(outcomes)
            assert len(outcomes) == len(items), result
            assert (refused is not None) == bool(REFUSALS & set(outcomes)), result
        assert seen <= SUCCESSES | REFUSALS | {FAILED}, result  # `seen` gathers every example's
        assert_no_lock_left(r)

    one()
    assert {"written", "rejected"} <= seen


@pytest.mark.parametrize("task, reason", [
    (["n", [], {}, [0.0] * 20_000], "float"),
    (["n", [], {}, 1.0, "x" * 100_000], "int"),
    (["n", [], {}, 1.0, None, "2"], "int"),
    (["n", [], {}, math.nan], ">= 0"),
    (["n", [], {}, math.inf], "<="),
    (["n", [], {}, True], "float"),
    (["n\n", [], {}, 1.0], "regex"),
    (["n" * (wire.MAX_NAME + 1), [], {}, 1.0], "length"),
    (["n", [0] * (wire.MAX_ARGS + 1), {}, 1.0], "length"),
    (["n", ["x" * wire.MAX_CALL_BYTES], {}, 1.0], "bytes"),
    (["n", [math.nan], {}, 1.0], "finite"),
    (["n", [], {}, 1.0, None, None, "extra"], "length"),
])
def test_what_the_schema_refuses(task: list[Any], reason: str) -> None:
    with pytest.raises(wire.Rejected, match=reason):
        wire.task(task)


def test_a_refresh_many_of_more_than_the_limit_is_refused_before_any_item_is_read() -> None:
    wire.items([None] * wire.MAX_ITEMS)
    with pytest.raises(wire.Rejected, match=f"<= {wire.MAX_ITEMS}"):
        wire.items([None] * 100_000)


def test_what_a_publisher_sends_fits() -> None:
    assert wire.task(["app.load_user", [1], {"region": "eu"}, 1.7e9, 3, 2]) == \
        wire.Task("app.load_user", [1], {"region": "eu"}, 1.7e9, 3, 2)
    assert wire.task(["app.load_user", [1], {}, 1700000000]).enqueued_at == 1.7e9  # an int time is a time


def test_a_rejection_is_logged_once_and_counted_under_its_loader(
    cache: Refresher, r: redis.Redis, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    load, calls = make_loader(cache)
    with caplog.at_level(logging.ERROR, logger="refresher"):
        for task in ([load.name, [1], {}, [time.time()] * 20_000], ["nobody.here", [1], {}, time.time()],
                     ["forged\nrefresher: loader=x", [1], {}, time.time()]):
            with pytest.raises(TaskRejected, match="^rejected: "):
                refresh_task(*task)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3 and all("\n" not in line for line in lines), lines
    assert f"loader={load.name} " in lines[0] and "Expected `float`, got `array`" in lines[0]
    assert f"loader={UNKNOWN} " in lines[2]  # a name that does not fit is not repeated
    by_loader = cache.stats.by_loader()
    assert by_loader[load.name]["task_rejected"] == 1
    assert by_loader[UNKNOWN]["task_rejected"] == 2
    assert calls == [] and r.keys("*") == []  # nothing locked, nothing loaded
