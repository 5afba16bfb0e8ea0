"""The hot-key plot: cumulative origin calls over time, one line per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402

from bench.scenarios.hot import Series  # noqa: E402


# Strategies with the same few calls draw on top of each other: styles keep each visible.
STYLES = [("-", 3.0), ("--", 2.2), ("-.", 1.8), (":", 2.6), ("-", 1.4), ("--", 1.0)]


def hot_key_png(series: Sequence[Series], ttl: float, seconds: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for s, (style, width) in zip(series, STYLES * len(series)):
        starts = sorted(s.starts)
        ax.step([min(starts[0], 0.0), *starts, seconds], [0, *range(1, len(starts) + 1), len(starts)],
                where="post", linestyle=style, linewidth=width, label=f"{s.label} ({len(starts):,})")
    ax.set_yscale("log")
    ax.set_xlim(min(0.0, *(min(s.starts) for s in series if s.starts)), seconds)
    ax.set_xlabel("seconds since the readers were released (the warm-up load is just before 0)")
    ax.set_ylabel("origin calls so far (log scale)")
    ax.set_title(f"Hot key: origin calls over time (TTL {ttl:g} s)")
    for t in range(1, int(seconds / ttl) + 1):
        ax.axvline(t * ttl, color="0.85", linewidth=0.8, zorder=0)
    ax.grid(axis="y", which="major", color="0.9")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
