"""Scraping a real /metrics endpoint, parsed by prometheus_client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from refresher.ops.metrics.collector import StatsCollector

Sample = tuple[str, tuple[tuple[str, str], ...]]


class Scrape:
    """One scrape's samples (of `url`, or of exposition `text` already fetched); `value` is 0
    for a series not exported (yet)."""

    def __init__(self, url: str | None = None, text: str = "") -> None:
        if url is not None:
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
        self.samples: dict[Sample, float] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum of a series over every label these `labels` leave open (every outcome, say)."""
        wanted = set(labels.items())
        return sum(value for (series, have), value in self.samples.items() if series == name and wanted <= set(have))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


def grew(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much a series grew between two scrapes."""
    return after.value(name, **labels) - before.value(name, **labels)


def collected() -> Scrape:
    """This process's metrics as a scrape would see them, through the collector alone."""
    registry = CollectorRegistry()
    registry.register(StatsCollector())
    return Scrape(text=generate_latest(registry).decode())
