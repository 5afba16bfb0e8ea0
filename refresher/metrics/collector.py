"""Single-process export: a Collector that reads the counts when it is scraped.

Nothing is added to the read path: the counts refresher keeps anyway (refresher/stats.py)
become metric families at scrape time.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from refresher.metrics.families import (BREAKER, BREAKER_HELP, COUNTERS, LOAD_DURATION, LOAD_DURATION_HELP,
                                        LOAD_EVENT, NEAR_COUNTERS, NEAR_GAUGES, label_names, labels, route)
from refresher.metrics.sampling import near_figures
from refresher.stats import BUCKETS, everything


class StatsCollector(Collector):
    """Every Refresher's counts in this process, per loader, as Prometheus metrics."""

    def collect(self) -> Iterator[Metric]:
        counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
        durations: dict[str, tuple[list[int], float]] = {}
        every = everything()
        for stats in every:
            for loader in stats.loaders():
                for event, n in loader.snapshot().items():
                    if (routed := route(event)) is not None:
                        family, value = routed
                        counts[family.name, labels(family, loader.name, value)] += n
                timing = loader.timings().get(LOAD_EVENT)
                if timing is not None:
                    buckets, total = durations.get(loader.name, ([0] * len(timing.buckets), 0.0))
                    durations[loader.name] = ([a + b for a, b in zip(buckets, timing.buckets)], total + timing.total)
        for family in COUNTERS:
            metric = CounterMetricFamily(family.name, family.help, labels=label_names(family))
            for (name, label_values), n in sorted(counts.items()):
                if name == family.name:
                    metric.add_metric(label_values, n)
            yield metric
        histogram = HistogramMetricFamily(LOAD_DURATION, LOAD_DURATION_HELP, labels=("loader",))
        for loader_name, (buckets, total) in sorted(durations.items()):
            cumulative = [sum(buckets[: i + 1]) for i in range(len(buckets))]
            bounds = [*(str(b) for b in BUCKETS), "+Inf"]
            histogram.add_metric([loader_name], list(zip(bounds, map(float, cumulative))), total)
        yield histogram
        yield GaugeMetricFamily(BREAKER, BREAKER_HELP, value=float(any(stats.breaker_open for stats in every)))
        near = near_figures()
        for gauge in NEAR_GAUGES:
            yield GaugeMetricFamily(gauge.name, gauge.help, value=near[gauge.name])
        for counter in NEAR_COUNTERS:
            yield CounterMetricFamily(counter.name, counter.help, value=near[counter.name])
