"""`python -m tests.support.healthprobe URL`: GET URL again and again on one kept-alive
connection, about every 5 ms, until its stdin closes; then print the samples, one
"<started, time.monotonic()> <seconds taken>" line each.

A process of its own, so that the test's own HTTP load (a stampede from an asyncio
client in the test process) cannot delay the probe and be blamed on the server.
"""

from __future__ import annotations

import sys
import threading
import time

import httpx

PACE = 0.005
LIMIT = 60.0  # seconds: the probe stops by itself even if nobody closes its stdin


def main(url: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    samples: list[tuple[float, float]] = []
    with httpx.Client(timeout=10) as client:
        client.get(url).raise_for_status()
        print("ready", flush=True)
        deadline = time.monotonic() + LIMIT
        while not stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            client.get(url).raise_for_status()
            samples.append((started, time.monotonic() - started))
            stop.wait(PACE)
    print("\n".join(f"{at:.6f} {took:.6f}" for at, took in samples), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
