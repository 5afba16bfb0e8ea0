"""`python -m bench.epochs [--quick] [--out DIR]`: what invalidate_all and tags cost a hit (issue 13).

Three loaders on one redis-server (a free loopback port) read a fresh key with `get` in
alternating rounds (the first rotating):

  no epoch check: today's read path with the epoch check taken out (its Epochs answers
      "not dropped" at once, without looking at the tracker or its memory): the baseline;
  epochs: the read path as shipped, the loader's epoch known in memory;
  epochs + 2 tags: a loader whose values carry two tags, one of them invalidated once (so
      its envelope names tag epochs, and the check looks each up).

The ratio is the throughput over the baseline's, the median of the per-round ratios, by
wall time (the target: at least 0.95) and by this process's CPU time. Results go into
docs/benchmarks.md between `<!-- epochs:start -->` and `<!-- epochs:end -->`.
"""

from __future__ import annotations

import os
import sys

import refresher
from bench.codec import alternate, machine, own_section, versus
from bench.hits import TARGET, VALUE, arguments, profile, reads
from bench.docs import write_epochs
from refresher.core.envelope import Marks
from refresher.core.epochs import Epochs
from refresher.core.policy import Dropped
from tests.support.servers import RedisServer

class NoCheck(Epochs):
    """The baseline: every value judged current at once."""

    def judge(self, loader_key: str, marks: Marks | None, fetched: dict[str, tuple[int, int]] | None = None,
              synced: bool = False) -> Dropped:
        return Dropped.NO


def main(argv: list[str] | None = None) -> int:
    args, scale, command = arguments("python -m bench.epochs", __doc__, argv)
    server = RedisServer()
    server.start()
    cache = refresher.Refresher(server.url, namespace="benchepochs")
    loads: list[float] = [os.getloadavg()[0]]
    try:
        redis_version = str(cache.redis.info("server")["redis_version"])
        plain = cache.loader(ttl=3600, name="bench.epochs.plain")(profile)
        checked = cache.loader(ttl=3600, name="bench.epochs.checked")(profile)
        tagged = cache.loader(ttl=3600, name="bench.epochs.tagged", tags=lambda user_id: [f"user:{user_id}", "all"])(profile)
        plain.state.epochs = NoCheck(cache.namespace)
        cache.invalidate_tag("user:1")
        assert cache.tracker.wait_live(10)
        contenders = {"no epoch check": plain, "epochs": checked, "epochs + 2 tags": tagged}
        for loader in contenders.values():
            assert loader.get(1) == VALUE and loader.get(1) == VALUE  # loaded, then its epochs known
        assert tagged.get(1) == VALUE and tagged.state.epochs.judge(
            tagged.state.epoch_key, Marks(0, (("user:1", 1), ("all", 0)))) is Dropped.NO
        hits_before = cache.stats["hit"]
        timing = alternate([reads(loader, scale.reads) for loader in contenders.values()], scale.rounds, scale.reads)
        assert cache.stats["hit"] - hits_before == 3 * scale.rounds * scale.reads  # every timed read a hit
        loads.append(os.getloadavg()[0])
    finally:
        cache.close()
        server.stop()

    table = versus(f"Hit path with the epoch check (invalidate_all, tags) and without: {scale.rounds} alternating "
                   f"rounds of {scale.reads:,} `get` hits per contender", "contender", list(contenders), timing, TARGET)
    print(table.text())
    body = own_section(
        "## Invalidation: what the epoch check costs a hit (issue 13)",
        "Written by `python -m bench.epochs` (the code is in `bench/epochs.py`), apart from the full run, with "
        "its own machine, date and commit. Three loaders of one Refresher on one redis-server read a fresh key "
        "with `get`, taking turns round by round (the first rotating): the baseline has the epoch check taken "
        "out (its judge returns \"not dropped\" at once); `epochs` is the shipped read path (the tracker syncs "
        "and the loader's epoch is looked up in memory); `epochs + 2 tags` reads values whose envelope also "
        "names two tag epochs, one of them invalidated once. A full `python -m bench` keeps this section.",
        machine(command, redis_version, loads), table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_epochs(args.out, body)
    print(f"\nwrote the epochs section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
