"""Where a refresh's time goes: refresh_key (the whole job of the Celery task) run
in-process under cProfile, its time split into the steps it takes.

The refresh is sans-I/O: the core's steps (refresher/core) only yield ops, and the sync
driver (refresher/io/drivers/sync.py) performs them, every Redis command through one method
and every Lua script through another. So that cProfile can tell the lock's SET NX from
the MGET, or the EXTEND_LOCK script from the commit, the profiled calls go through a router
that hands each op to one small function per kind of op (below) and on to the driver
(an MGET, as a command or as the MGet op, is the read of the value and pending marker).

cProfile sees only the calling thread, so the lock watchdog's own extensions are not in
these figures; its start and join are (they run in the caller).
"""

from __future__ import annotations

import contextlib
import cProfile
import pstats
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from refresher.api import registry
from refresher.core.protocol.scripts import COMMIT_LOAD, EXTEND_LOCK, RELEASE_LOCK, TAKE_REFRESH_LOCK
from refresher.core.ops import Command, MGet, Script
from refresher.io.drivers.sync import SyncDriver
from refresher.worker.run import refresh_key, refresh_keys

from bench.report import Table

Perform = Callable[[Any, Any], Any]  # a driver's method for one type of op: (op, stepper) -> reply
HERE = "bench/refresh_profile.py"

# One function per kind of op, so that each is a row of its own in the profile.


def _take_lock(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _read_current(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _other_command(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _take_refresh_lock_script(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _extend_script(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _commit_script(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _release_script(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _other_script(perform: Perform, op: Any, stepper: Any) -> Any:
    return perform(op, stepper)


def _command_kind(op: Command) -> Callable[[Perform, Any, Any], Any]:
    name = str(op.args[0]).upper()
    if name == "SET" and "NX" in op.args:
        return _take_lock
    return _read_current if name == "MGET" else _other_command


SCRIPTS: dict[str, Callable[[Perform, Any, Any], Any]] = {
    TAKE_REFRESH_LOCK: _take_refresh_lock_script, EXTEND_LOCK: _extend_script, COMMIT_LOAD: _commit_script,
    RELEASE_LOCK: _release_script,
}

# Each step: its label and the functions (file suffix, name) whose cumulative times add up
# to it. A step none of whose functions refresh_key called is left out; "everything else"
# keeps the table adding up to refresh_key's total whatever the code looks like today.
STEPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("claim: lock, back-off check, read, re-arm the marker (TAKE_REFRESH_LOCK script)", ((HERE, "_take_refresh_lock_script"),)),
    ("take the lock (SET NX PX)", ((HERE, "_take_lock"),)),
    ("read the value and pending marker (MGET)", ((HERE, "_read_current"),)),
    ("re-arm lock + pending marker (EXTEND_LOCK script)", ((HERE, "_extend_script"),)),
    ("commit script (COMMIT_LOAD, EVALSHA)", ((HERE, "_commit_script"),)),
    ("release the lock (RELEASE_LOCK script)", ((HERE, "_release_script"),)),
    ("other Redis commands and scripts", ((HERE, "_other_command"), (HERE, "_other_script"))),
    ("hand the lock to the process's watchdog thread", (("refresher/io/drivers/watchdog.py", "hold"),)),
    ("the loader (instant origin: one INCR)", (("bench/origin.py", "fetch"),)),
    ("the core's steps, no I/O (refresher/core: decide, envelope, encode)", (("refresher/core/renew.py", "refresh"),)),
    ("canonical arguments and key names (refresher/core/calls.py)", (("refresher/core/calls.py", "__call__"),)),
)
SOCKET_CALLS = ("<method 'sendall' of '_socket.socket' objects>", "<method 'recv_into' of '_socket.socket' objects>")


@dataclass
class Profile:
    table: Table
    refresh_ms: float  # per refresh_key call, unprofiled
    round_trips: float  # Redis round trips per refresh
    socket_share: float  # of profiled time, spent in socket send/receive
    top_step: str
    top_share: float
    batched_round_trips: float  # per key, refreshed in batches by refresh_keys


def _sends(stats: dict[Any, Any]) -> int:
    return sum(v[1] for (_, _, name), v in stats.items() if name == SOCKET_CALLS[0])


@contextlib.contextmanager
def _routed(driver: SyncDriver) -> Iterator[None]:
    """While profiling, send the driver's Command and Script ops through the functions above."""
    performers: dict[type, Perform] = driver._perform
    command, mget, script = performers[Command], performers[MGet], performers[Script]

    def route_command(op: Command, stepper: Any) -> Any:
        return _command_kind(op)(command, op, stepper)

    def route_mget(op: MGet, stepper: Any) -> Any:
        return _read_current(mget, op, stepper)

    def route_script(op: Script, stepper: Any) -> Any:
        return SCRIPTS.get(op.source, _other_script)(script, op, stepper)

    performers[Command], performers[MGet], performers[Script] = route_command, route_mget, route_script
    try:
        yield
    finally:
        performers[Command], performers[MGet], performers[Script] = command, mget, script


def profile_refreshes(loader_name: str, warm_keys: Sequence[str], profiled_keys: Sequence[str],
                      batched_keys: Sequence[str], per_task: int) -> Profile:
    """Time refresh_key over `warm_keys` without the profiler, then profile it over
    `profiled_keys` (values that exist, so each call really reloads and commits); count
    the round trips of refresh_keys over `batched_keys`, `per_task` keys at a time."""
    t0 = time.perf_counter()
    for key in warm_keys:
        refresh_key(loader_name, [key], {}, time.time())
    refresh_ms = (time.perf_counter() - t0) / len(warm_keys) * 1000

    profiler = cProfile.Profile()
    with _routed(registry.lookup(loader_name).cache.sync):
        profiler.enable()
        for key in profiled_keys:
            refresh_key(loader_name, [key], {}, time.time())
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    n = len(profiled_keys)

    def cumulative(functions: tuple[tuple[str, str], ...]) -> tuple[int, float]:
        """(calls, cumulative seconds) of `functions`, added up."""
        hits = [v for path, function in functions
                for (file, _, name), v in stats.items() if file.endswith(path) and name == function]
        return sum(v[1] for v in hits), float(sum(v[3] for v in hits))

    _, total = cumulative((("refresher/worker/run.py", "refresh_key"),))
    sends = _sends(stats)
    batched = cProfile.Profile()
    batched.enable()
    for start in range(0, len(batched_keys), per_task):
        refresh_keys([[loader_name, [key], {}, time.time(), None] for key in batched_keys[start : start + per_task]])
    batched.disable()
    batched_round_trips = _sends(pstats.Stats(batched).stats) / len(batched_keys)  # type: ignore[attr-defined]
    socket_s = sum(v[2] for (_, _, name), v in stats.items() if name in SOCKET_CALLS)
    table = Table(
        f"4c. Refresh path profile: refresher.worker.run.refresh_key in-process under cProfile, {n:,} refreshes",
        ["step", "ms per refresh", "share of refresh_key"],
        notes=[f"Unprofiled: {refresh_ms:.3f} ms per refresh_key ({1000 / refresh_ms:,.0f}/s on one thread). "
               f"Profiled total {total / n * 1000:.3f} ms, of which {socket_s / total:.0%} is waiting on "
               f"Redis sockets over {sends / n:.1f} round trips per refresh. Redis steps are the sync "
               "driver performing the op the core yielded (round trip included); the core's steps are "
               "the time spent inside refresher/core's generators themselves. The instant loader's own INCR "
               f"is one of those round trips. Refreshed {per_task} keys to a task (refresh_keys), "
               f"{batched_round_trips:.2f} round trips per key."],
    )
    steps = [(label, seconds) for label, functions in STEPS for calls, seconds in [cumulative(functions)] if calls]
    steps.sort(key=lambda step: -step[1])
    for label, seconds in [*steps, ("everything else in refresh_key (driver stepping, registry)",
                                    total - sum(s for _, s in steps))]:
        table.add(label, seconds / n * 1000, f"{seconds / total:.0%}")
    return Profile(table, refresh_ms, sends / n, socket_s / total, steps[0][0], steps[0][1] / total, batched_round_trips)
