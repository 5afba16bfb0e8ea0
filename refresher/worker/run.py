"""Refreshing keys on a worker: the whole job of the Celery tasks, kept apart from Celery."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from refresher.api import registry
from refresher.api.registry import Refreshable
from refresher.core import wire
from refresher.core.calls import Call, call_repr
from refresher.core.protocol.outcomes import Outcome
from refresher.core.renew import refresh
from refresher.core.failures import CacheFailure
from refresher.core.together import together
from refresher.io.failures import escaped
from refresher.errors import RefreshFailed, TaskRejected, UnknownLoader
from refresher.core.logs import about

REJECTED = (UnknownLoader, TypeError)  # an unregistered loader, or arguments it cannot take
UNKNOWN = "<unknown>"  # the loader a rejected task is counted under when it names none registered here


def refresh_task(*fields: Any) -> Outcome:
    """The whole job of the `refresher.refresh` task, whose arguments are `fields`
    (`name, args, kwargs, enqueued_at, seen, version`): checked against the wire schema
    (refresher.core.wire) before anything else, then refreshed as refresh_key does, if this
    worker's loader has the task's version. What Celery records must tell the truth: a
    failed load raises RefreshFailed, and a task that does not fit, names no loader here
    or another version raises TaskRejected (logged once, counted, nothing locked), so
    both end FAILURE in Celery and Flower; every other outcome is the task's result."""
    try:
        task = wire.task(list(fields))
    except wire.Rejected as exc:
        raise TaskRejected(f"{rejected(exc, exc.name)}: {exc}") from None
    try:
        entry = registry.refreshable(task.name)
        mismatch = version_mismatch(entry, task.version)
        if mismatch:
            raise TaskRejected(mismatch)
        return refresh_or_raise(entry, task.args, task.kwargs, task.enqueued_at, task.seen)
    except REJECTED as exc:
        raise TaskRejected(f"{rejected(exc, task.name)}: {exc}") from None


def refresh_key(name: str, args: list[Any], kwargs: dict[str, Any], enqueued_at: float, seen: int | None = None) -> Outcome:
    """refresh_or_raise for a caller that reports outcomes rather than task states
    (`refresher warm --now`): a failed load is the outcome `failed`."""
    try:
        return refresh_or_raise(registry.refreshable(name), args, kwargs, enqueued_at, seen)
    except RefreshFailed:
        return Outcome.FAILED


def refresh_or_raise(entry: Refreshable, args: list[Any], kwargs: dict[str, Any], enqueued_at: float,
                     seen: int | None = None) -> Outcome:
    """Refresh the value of the entry's loader for these arguments, at most once however often
    the task is delivered (see refresher.core.renew). Returns what happened, which
    Flower shows as the task's result, or raises RefreshFailed once the key backs off.
    `args` and `kwargs` are the call's wire form (typed arguments tagged in JSON), rebuilt
    here from the loader's own annotations. Logs one line with the outcome at INFO (a
    failed load's exception is logged at ERROR where it is caught), or one at ERROR with
    what the refresh raised."""
    call = entry.state.calls.from_wire([args, kwargs])
    started = time.monotonic()
    try:
        outcome = entry.run(refresh(entry.state, call, enqueued_at, seen))
    except Exception as exc:  # a failed load, or Redis unreachable: Celery records the task as failed
        _report(entry, call, exc, started)
        raise
    return _report(entry, call, outcome, started)


def refresh_keys(items: list[Any]) -> str:
    """Refresh several keys, each item a one-key task's arguments `[name, args, kwargs,
    enqueued_at, seen]` (and a versioned loader's version). Each key is refreshed as
    refresh_key would (its own lock, freshness check and commit, logged and counted
    alike), but the Redis work of the keys of one cache goes out together: one round
    trip claims them all, one commits them all (refresher.core.together). One key's
    failure is not the others': every key is processed, then the batch's outcome is
    `loader(args): outcome; ...` for each key, returned if every key went well, else
    raised (a failed load's outcome naming its error) so Celery records a FAILURE:
    RefreshFailed if a key's refresh failed or raised, else TaskRejected if an item was
    `rejected` or a `version_mismatch`."""
    try:
        checked = wire.items(items)
    except wire.Rejected as exc:
        raise TaskRejected(f"{rejected(exc, None)}: {exc}") from None
    shown: list[str] = []
    outcomes: list[str] = []
    failed = False
    groups: defaultdict[tuple[int, bool], list[tuple[int, Refreshable, Call, float, int | None]]] = defaultdict(list)
    for i, item in enumerate(checked):
        shown.append(f"item {i}")
        outcomes.append(Outcome.REJECTED)
        try:
            task = wire.task(item)
        except wire.Rejected as exc:
            rejected(exc, exc.name)
            continue
        try:
            entry = registry.refreshable(task.name)
            call = entry.state.calls.from_wire([task.args, task.kwargs])
        except REJECTED as exc:
            rejected(exc, task.name)
            continue
        shown[i] = call_repr(task.name, task.args, task.kwargs)
        if version_mismatch(entry, task.version):
            outcomes[i] = Outcome.VERSION_MISMATCH
            continue
        groups[id(entry.sync), entry.state.is_async].append((i, entry, call, task.enqueued_at, task.seen))
    for group in groups.values():
        started = time.monotonic()
        results = group[0][1].run(together([
            refresh(entry.state, call, enqueued_at, seen) for _, entry, call, enqueued_at, seen in group
        ]))
        for (i, entry, call, _, _), result in zip(group, results):
            result = escaped(result) if isinstance(result, CacheFailure) else result  # named as a lone refresh's
            outcomes[i] = _report(entry, call, result, started)
            if isinstance(result, Exception):  # the error beside its key, as the task's exception shows it
                failed = True
                outcomes[i] += f" ({result})" if isinstance(result, RefreshFailed) else f" ({type(result).__name__}: {result})"
    summary = "; ".join(f"{key}: {outcome}" for key, outcome in zip(shown, outcomes))
    if failed:
        raise RefreshFailed(summary)
    if any(outcome in (Outcome.REJECTED, Outcome.VERSION_MISMATCH) for outcome in outcomes):
        raise TaskRejected(summary)
    return summary


def rejected(exc: Exception, name: str | None) -> Outcome:
    """A task, or an item of one, that no registered loader can run: one line at ERROR and
    one `task_rejected` count, under its loader if `name` (well formed, so safe to log)
    is registered here, else under UNKNOWN."""
    about(name or UNKNOWN, None).error("rejected a refresh task: %s", exc,
                                       extra={"outcome": Outcome.REJECTED, "error_type": type(exc).__name__})
    try:
        registry.refreshable(name or "").state.stats.incr("task_rejected")
    except UnknownLoader:
        every = {id(stats): stats for stats in (registry.refreshable(known).stats for known in registry.names())}
        for stats in every.values():
            stats.loader(UNKNOWN).incr("task_rejected")
    return Outcome.REJECTED


def _report(entry: Refreshable, call: Call, outcome: Outcome | Exception, started: float) -> Outcome:
    """One log line and one count per refreshed key: its outcome, or what its refresh raised."""
    keylog = about(entry.state.name, call.keys.value)
    if isinstance(outcome, RefreshFailed):  # logged at ERROR where it was caught, with its back-off
        outcome = Outcome.FAILED
    elif isinstance(outcome, Exception):
        keylog.error("refresh raised %s: %s", type(outcome).__name__, outcome,
                     extra={"outcome": Outcome.ERROR, "error_type": type(outcome).__name__})
        entry.state.stats.incr("task_error")
        return Outcome.ERROR
    entry.state.stats.incr(f"task_{outcome}")  # one per key: refresher_refresh_tasks_total{outcome=...}
    keylog.info("refresh %s in %.3fs", outcome, time.monotonic() - started, extra={"outcome": outcome})
    return outcome


def version_mismatch(entry: Refreshable, version: int | None) -> str | None:
    """Why this worker's loader cannot serve the asking reader's `version`, or None if it
    writes values of that version. A mismatched task is dropped, logged and counted: its
    values would not be served there."""
    state = entry.state
    if state.settings.version == version:
        return None
    why = f"version_mismatch: the task is for version {version}, this worker's loader is version {state.settings.version}"
    about(state.name, None).warning("%s", why, extra={"outcome": Outcome.VERSION_MISMATCH})
    state.stats.incr("task_version_mismatch")
    return why
