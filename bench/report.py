"""Tables and targets, rendered as aligned text for the terminal and Markdown for the docs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([fmt(c) for c in cells])

    def text(self) -> str:
        widths = [max(len(r[i]) for r in [self.columns, *self.rows]) for i in range(len(self.columns))]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [self.title, line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows]
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
               "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + self.notes
        return "\n".join(out)


@dataclass(frozen=True)
class Target:
    scenario: str
    goal: str
    measured: str
    met: bool

    @property
    def verdict(self) -> str:
        return "MET" if self.met else "MISSED"


def targets_table(targets: Sequence[Target]) -> Table:
    table = Table("Targets: refresher with the default Window policy, ratios from this run", ["scenario", "target", "measured", "result"])
    for t in targets:
        table.add(t.scenario, t.goal, t.measured, t.verdict)
    return table


def fmt(value: object) -> str:
    """Numbers to at most three significant-looking places; everything else as text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
