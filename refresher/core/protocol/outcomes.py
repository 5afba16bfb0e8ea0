"""What a refresh did: the result of a `refresher.refresh` task, as Flower shows it, as the
worker logs it (`refresh written in 0.012s`, the `outcome` field of a JSON line) and as
metrics count it (refresher_refresh_tasks_total{outcome=...}). Dashboards, alerts and
`refresher warm` read these strings: a value here is a format, never renamed lightly.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    # The refresh ran (refresher/core/renew.py, refresher/core/commit.py):
    WRITTEN = "written"  # loaded and committed
    DEDUPLICATED = "deduplicated"  # somebody held the key's lock: already being refreshed
    BACKING_OFF = "backing_off"  # the key backs off after a failed load: no attempt now
    FRESH = "fresh"  # the value was rewritten since the task was asked for: nothing to do
    LOST_LOCK = "lost_lock"  # loaded, but the lock expired meanwhile: not written
    SUPERSEDED = "superseded"  # loaded, but a set, invalidate or newer load won: not written
    TOO_LARGE = "too_large"  # loaded, over max_value_bytes: not cached
    NOT_STORED = "not_stored"  # loaded, but the cache refused the write
    FAILED = "failed"  # the loader raised (the task ends FAILURE; the key backs off)
    # The task did not reach a refresh (refresher/worker/run.py):
    REJECTED = "rejected"  # a malformed task, or a loader or arguments unknown here
    VERSION_MISMATCH = "version_mismatch"  # the reader's loader version is not this worker's
    ERROR = "error"  # the refresh raised something else (the cache unreachable, say)
