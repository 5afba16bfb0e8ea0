"""`python -m bench.metrics [--quick] [--out DIR]`: what Prometheus metrics cost a hit (issue 11).

Three loaders on three Refreshers, alike but for their metrics, read a fresh key with
`get` in alternating rounds (the first rotating), on one redis-server on a free loopback port:

  off: no metrics;
  collector: `refresher.ops.metrics`' single-process export, a collector that reads the
      counts when scraped (the hit path is the same as off's);
  multiprocess: PROMETHEUS_MULTIPROC_DIR's export, every counted event also written to
      prometheus_client's memory-mapped files as it happens (gunicorn, Celery prefork).

The ratio is the throughput with metrics over the throughput without, the median of the
per-round ratios, by wall time (the target: at least 0.95) and by this process's CPU time
(which leaves out redis-server and waits for a CPU: the client's own cost, on a busy machine). Results go into docs/benchmarks.md between
`<!-- metrics:start -->` and `<!-- metrics:end -->`, leaving the rest of the file alone.
"""

from __future__ import annotations

import os
import sys
import tempfile

import refresher
from bench.codec import alternate, machine, own_section, versus
from bench.hits import TARGET, VALUE, arguments, profile, reads
from bench.docs import write_metrics
from tests.support.servers import RedisServer

def main(argv: list[str] | None = None) -> int:
    args, scale, command = arguments("python -m bench.metrics", __doc__, argv)
    # prometheus_client picks its value class (in memory, or mmap files) when first imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    from prometheus_client import CollectorRegistry, generate_latest, values

    from refresher.ops.metrics.collector import StatsCollector
    from refresher.ops.metrics.multiproc import MmapListener

    assert values.ValueClass.__name__ == "MmapedValue", "prometheus_client was imported before the env was set"
    server = RedisServer()
    server.start()
    caches = {name: refresher.Refresher(server.url, namespace=f"benchmetrics{name}")
              for name in ("off", "collector", "multiprocess")}
    registry = CollectorRegistry()
    registry.register(StatsCollector())
    caches["multiprocess"].stats.listen(MmapListener())
    loads: list[float] = [os.getloadavg()[0]]
    try:
        redis_version = str(caches["off"].redis.info("server")["redis_version"])
        loaders = {name: cache.loader(ttl=3600, name=f"bench.metrics.{name}")(profile) for name, cache in caches.items()}
        for loader in loaders.values():
            assert loader.get(1) == VALUE  # loaded once: every timed read is a hit
        timing = alternate([reads(loaders[name], scale.reads) for name in caches], scale.rounds, scale.reads)
        loads.append(os.getloadavg()[0])
        scraped = generate_latest(registry).decode()
        hits = scale.rounds * scale.reads
        assert f'refresher_reads_total{{loader="bench.metrics.collector",outcome="hit"}} {float(hits)}' in scraped
    finally:
        for cache in caches.values():
            cache.close()
        server.stop()

    table = versus(f"Hit path with and without Prometheus metrics: {scale.rounds} alternating rounds of "
                   f"{scale.reads:,} `get` hits per contender", "metrics", list(caches), timing, TARGET)
    print(table.text())
    body = own_section(
        "## Metrics: what Prometheus export costs a hit (issue 11)",
        "Written by `python -m bench.metrics` (the code is in `bench/metrics.py`), apart from the full run, with "
        "its own machine, date and commit. Three Refreshers on one redis-server, alike but for their metrics: "
        "none (off); the single-process collector, which reads refresher's counts when scraped; and "
        "multiprocess mode (PROMETHEUS_MULTIPROC_DIR), which also writes each counted event to "
        "prometheus_client's memory-mapped files. Each reads one fresh key with `get`; the contenders take "
        "turns, round by round, the first rotating. A full `python -m bench` keeps this section as it is.",
        machine(command, redis_version, loads), table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_metrics(args.out, body)
    print(f"\nwrote the metrics section of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
