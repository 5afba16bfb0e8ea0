"""Counting stays exact when many threads count at once, without a lock on the hit path."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable


from refresher.core.stats import LoaderStats, Stats

# 8 threads: a read-add-store count (`d[e] = d.get(e, 0) + 1`) loses most of 40,000 counts
# here, in 1.6 s; 32 threads made the locks below convoy at a microsecond's switch (120 s+).
THREADS, EACH = 8, 5_000


class Heard:
    """A listener (the multiprocess exporter's hook) that adds up what it is told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[str, int] = {}

    def counted(self, loader: str, event: str, by: int) -> None:
        with self.lock:
            self.totals[event] = self.totals.get(event, 0) + by

    def timed(self, loader: str, event: str, seconds: float) -> None:
        pass

    def breaker_opened(self, seconds: float) -> None:
        pass


def hammer(count: Callable[[str, int], object], events: list[str]) -> None:
    """Each of THREADS threads counts each event EACH times (a batch of 3 every 100th
    time), all starting together."""
    start = threading.Barrier(THREADS)

    def run() -> None:
        start.wait()
        for i in range(EACH):
            for event in events:
                count(event, 3 if i % 100 == 0 else 1)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


EXPECTED = THREADS * (EACH + 2 * (EACH // 100))  # a batch of 3 counts two more than a single


def test_counts_are_exact_under_8_threads_and_add_up_per_process() -> None:
    """In a process of its own: the test process's other threads (trackers, publishers) would
    each take the GIL at every microsecond's switch."""
    child = multiprocessing.get_context("spawn").Process(target=counted_exactly)
    child.start()
    child.join(60)
    assert child.exitcode == 0, "a count was lost or read going back (the child's traceback is above)"


def counted_exactly() -> None:
    sys.setswitchinterval(1e-6)  # threads switch every microsecond, so a count that is not atomic loses some
    stats = Stats()
    heard = Heard()
    stats.listen(heard)
    load_user, load_page = stats.loader("load_user"), stats.loader("load_page")
    seen: list[int] = []
    done = threading.Event()

    def scrape() -> None:
        """An exporter reading while the threads count: what it reads never goes back."""
        while not done.is_set():
            seen.append(stats["hit"])

    scraper = threading.Thread(target=scrape)
    scraper.start()

    def count(event: str, by: int) -> None:
        load_user.incr(event, by)
        load_page.incr(event, by)
        stats.incr(event, by)

    hammer(count, ["hit", "near_hit"])
    done.set()
    scraper.join()
    assert load_user.snapshot() == load_page.snapshot() == {"hit": EXPECTED, "near_hit": EXPECTED}
    assert stats.snapshot() == {"hit": 3 * EXPECTED, "near_hit": 3 * EXPECTED}
    assert stats.by_loader() == {name: {"hit": EXPECTED, "near_hit": EXPECTED} for name in ("load_user", "load_page")}
    assert heard.totals == {"hit": 2 * EXPECTED, "near_hit": 2 * EXPECTED}  # the loaders' events, as they happen
    assert seen == sorted(seen) and seen[-1] <= 3 * EXPECTED


def test_reading_a_count_leaves_it_as_it_was() -> None:
    stats = LoaderStats("load_user", None)
    assert stats["hit"] == 0 and stats.snapshot() == {}
    stats.incr("hit")
    stats.incr("hit", 0)  # a batch that hit nothing is still a count that was looked at
    stats.incr("stale_served", 2)
    assert [stats["hit"], stats["hit"], stats["stale_served"]] == [1, 1, 2]
    assert stats.snapshot() == {"hit": 1, "stale_served": 2}
