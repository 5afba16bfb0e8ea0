"""One module per scenario; each `run(ctx)` returns its tables and the targets it checks."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Table, Target


@dataclass
class Outcome:
    tables: list[Table]
    targets: list[Target] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # paragraphs for the docs, derived from the figures
    figure: str = ""  # caption of the plot drawn from this scenario, shown after its tables
