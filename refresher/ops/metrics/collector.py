"""Single-process export: a Collector that reads the counts when it is scraped.

Nothing is added to the read path: the counts refresher keeps anyway (refresher/core/stats.py)
become metric families at scrape time.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from refresher.ops.metrics.families import (BREAKER, BREAKER_HELP, COUNTERS, DURATIONS, NEAR_COUNTERS, NEAR_GAUGES,
                                        NEAR_LAG, label_names, labels, route)
from refresher.ops.metrics.sampling import near_figures, near_lag
from refresher.core.stats import BUCKETS, everything


class StatsCollector(Collector):
    """Every Refresher's counts in this process, per loader, as Prometheus metrics."""

    def collect(self) -> Iterator[Metric]:
        counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
        durations: dict[tuple[str, str], tuple[list[int], float]] = {}  # (event, loader) -> buckets, sum
        every = everything()
        for stats in every:
            for loader in stats.loaders():
                for event, n in loader.snapshot().items():
                    if (routed := route(event)) is not None:
                        family, value = routed
                        counts[family.name, labels(family, loader.name, value)] += n
                for event, timing in loader.timings().items():
                    buckets, total = durations.get((event, loader.name), ([0] * len(timing.buckets), 0.0))
                    durations[event, loader.name] = ([a + b for a, b in zip(buckets, timing.buckets)],
                                                     total + timing.total)
        for family in COUNTERS:
            metric = CounterMetricFamily(family.name, family.help, labels=label_names(family))
            for (name, label_values), n in sorted(counts.items()):
                if name == family.name:
                    metric.add_metric(label_values, n)
            yield metric
        bounds = [*(str(b) for b in BUCKETS), "+Inf"]
        for duration in DURATIONS:
            histogram = HistogramMetricFamily(duration.name, duration.help, labels=("loader",))
            for (event, loader_name), (buckets, total) in sorted(durations.items()):
                if event == duration.event:
                    cumulative = [sum(buckets[: i + 1]) for i in range(len(buckets))]
                    histogram.add_metric([loader_name], list(zip(bounds, map(float, cumulative))), total)
            yield histogram
        yield GaugeMetricFamily(BREAKER, BREAKER_HELP, value=float(any(stats.breaker_open(time.monotonic()) for stats in every)))
        near = near_figures()
        for gauge in NEAR_GAUGES:
            yield GaugeMetricFamily(gauge.name, gauge.help, value=near[gauge.name])
        yield GaugeMetricFamily(NEAR_LAG.name, NEAR_LAG.help, value=near_lag())
        for counter in NEAR_COUNTERS:
            yield CounterMetricFamily(counter.name, counter.help, value=near[counter.name])
