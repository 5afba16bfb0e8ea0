"""Where a refresh's time goes: refresh_key (the whole job of the Celery task) run
in-process under cProfile, its time split into the steps it takes.

cProfile sees only the calling thread, so the lock watchdog's own extensions are not in
these figures; its start and join are (they run in the caller).
"""

from __future__ import annotations

import cProfile
import pstats
import time
from dataclasses import dataclass
from typing import Sequence

from refresher.refresh import refresh_key

from bench.report import Table

# Each step: its label and the functions (file suffix, name) whose cumulative time it is.
# A step whose functions refresh_key no longer calls is left out; "everything else" keeps
# the table adding up to refresh_key's total whatever the code looks like today.
STEPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("take the lock (SET NX PX)", (("refresher/lock.py", "acquire"),)),
    ("read the current value", (("refresher/store.py", "read"), ("redis/commands/core.py", "get"))),
    ("re-arm lock + pending marker (EXTEND script)", (("refresher/lock.py", "extend"),)),
    ("start and join the lock watchdog thread", (("refresher/lock.py", "kept_alive"),)),
    ("the loader (instant origin: one INCR)", (("bench/origin.py", "fetch"),)),
    ("commit script (EVALSHA)", (("refresher/store.py", "commit"),)),
    ("new Lock: token and script objects", (("refresher/lock.py", "__init__"),)),
    ("canonical arguments and key names", (("refresher/loader.py", "call"),)),
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


def profile_refreshes(loader_name: str, warm_keys: Sequence[str], profiled_keys: Sequence[str]) -> Profile:
    """Time refresh_key over `warm_keys` without the profiler, then profile it over
    `profiled_keys` (values that exist, so each call really reloads and commits)."""
    t0 = time.perf_counter()
    for key in warm_keys:
        refresh_key(loader_name, [key], {}, time.time())
    refresh_ms = (time.perf_counter() - t0) / len(warm_keys) * 1000

    profiler = cProfile.Profile()
    profiler.enable()
    for key in profiled_keys:
        refresh_key(loader_name, [key], {}, time.time())
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    n = len(profiled_keys)

    def cumulative(functions: tuple[tuple[str, str], ...]) -> tuple[int, float]:
        """(calls, cumulative seconds) of the first of `functions` that was called."""
        for path, function in functions:
            hits = [v for (file, _, name), v in stats.items() if file.endswith(path) and name == function]
            if hits:
                return sum(v[1] for v in hits), float(sum(v[3] for v in hits))
        return 0, 0.0

    _, total = cumulative((("refresher/refresh.py", "refresh_key"),))
    sends = sum(v[1] for (_, _, name), v in stats.items() if name == SOCKET_CALLS[0])
    socket_s = sum(v[2] for (_, _, name), v in stats.items() if name in SOCKET_CALLS)
    table = Table(
        f"4c. Refresh path profile: refresher.refresh.refresh_key in-process under cProfile, {n:,} refreshes",
        ["step", "ms per refresh", "share of refresh_key"],
        notes=[f"Unprofiled: {refresh_ms:.3f} ms per refresh_key ({1000 / refresh_ms:,.0f}/s on one thread). "
               f"Profiled total {total / n * 1000:.3f} ms, of which {socket_s / total:.0%} is waiting on "
               f"Redis sockets over {sends / n:.1f} round trips per refresh."],
    )
    steps = [(label, seconds) for label, functions in STEPS for calls, seconds in [cumulative(functions)] if calls]
    steps.sort(key=lambda step: -step[1])
    for label, seconds in [*steps, ("everything else in refresh_key", total - sum(s for _, s in steps))]:
        table.add(label, seconds / n * 1000, f"{seconds / total:.0%}")
    return Profile(table, refresh_ms, sends / n, socket_s / total, steps[0][0], steps[0][1] / total)
