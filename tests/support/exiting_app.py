"""An app that reads through a near cache and then loses its Redis, for test_quiet_exit.py.

`python tests/support/exiting_app.py URL at-exit`: reads, then ends normally; its Redis is
stopped while it is exiting (an atexit handler, registered before refresher is imported so
that it runs after refresher's own, holds the exit until the test has stopped the server,
then gives any tracker thread still running the time to see the loss).
`... URL running`: reads, the test stops the server, and the app goes on until its tracker
has tried to turn tracking on again once, then ends.
Each step is a line on stdout; the test answers on stdin. Log records at WARNING and above
go to stderr, which the test reads.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading


def say(step: str) -> None:
    print(step, flush=True)


def server_stopped() -> None:
    say("stop the server")
    assert sys.stdin.readline().strip() == "stopped"


def wait_for_trackers_to_end() -> None:
    for thread in threading.enumerate():
        if thread.name == "refresher-tracking":
            thread.join(5)  # ends at once when closed; a running one would see the loss meanwhile


class Retried(logging.Handler):
    """Set once the tracker has failed to turn tracking on again (said at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "until tracking is on" in record.getMessage():
            self.seen.set()


def main(url: str, mode: str) -> None:
    if mode == "at-exit":
        atexit.register(lambda: (server_stopped(), wait_for_trackers_to_end()))
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(stderr)
    retried = Retried()
    logging.getLogger("refresher").addHandler(retried)
    logging.getLogger("refresher").setLevel(logging.DEBUG)

    from refresher import Refresher

    cache = Refresher(url, broker_url=url, near_cache=100, namespace="exiting")

    @cache.loader(ttl=60, name="tests.exiting.doubled")
    def doubled(n: int) -> int:
        return n * 2

    assert cache.near is not None and cache.near.tracker.wait_live(5)
    assert [doubled.get(1) for _ in range(3)] == [2, 2, 2]
    say("read")
    if mode == "running":
        server_stopped()
        assert retried.seen.wait(10), "the tracker did not try to turn tracking on again"


if __name__ == "__main__":
    main(*sys.argv[1:])
