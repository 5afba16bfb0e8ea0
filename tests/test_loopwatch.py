"""tests/support/loopwatch.py, which the event-loop checks of the async and stampede tests rely on."""

from __future__ import annotations

import asyncio
import time

from tests.support.loopwatch import blocked_callbacks


def test_the_loop_watch_reports_a_blocking_call_and_not_an_awaited_one() -> None:
    """A callback that sleeps in the loop's thread is reported; one that awaits the same
    time is not."""

    async def main() -> list[str]:
        with blocked_callbacks() as blocked:
            await asyncio.sleep(0.15)
            await asyncio.sleep(0)  # the blocking sleep below runs in a callback of its own
            time.sleep(0.15)
            await asyncio.sleep(0)
        return blocked

    blocked = asyncio.run(main())
    assert len(blocked) == 1 and "held it" in blocked[0], blocked
