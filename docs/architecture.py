"""Draw docs/architecture.png, the map of docs/architecture.md: the hit, miss and refresh
paths, each box a module the path passes through, coloured by its folder.

    .venv/bin/python docs/architecture.py            # writes docs/architecture.png
    .venv/bin/python docs/architecture.py out.png    # or somewhere else
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch  # noqa: E402

FOLDERS = {  # folder: (fill, what it holds)
    "api": ("#dbeafe", "refresher/api: what the app calls"),
    "core": ("#dcfce7", "refresher/core: decisions and formats, no I/O"),
    "io": ("#fef3c7", "refresher/io: Redis, the broker, threads"),
    "worker": ("#f3e8ff", "refresher/worker and tasks.py: the Celery side"),
}
OUTSIDE = "#fee2e2"  # Redis, the broker, the origin: not refresher's code
EDGE = "#374151"
WIDTH, HEIGHT, GAP, LEFT = 12.3, 12.5, 2.3, 9.0

Step = tuple[str, str, str]  # (folder or "outside", title, lines under it)

HIT: list[Step] = [
    ("api", "api/reads.py", "Loader.get(1001);\nthe call's keys from\ncore/calls.py, keys.py"),
    ("core", "core/near.py", "a near copy? served\nfrom memory (kept\ncoherent by tracking)"),
    ("io", "io/drivers/", "one GET to Redis\n(aio.py, and sync.py\ngenerated from it)"),
    ("core", "core/read.py", "after_get: envelope,\nmarks (epochs), policy\n-> fresh: the value"),
    ("core", "core/read.py", "in the window: the\nvalue, and CLAIM_PENDING\n(one asker per key)"),
    ("io", "io/publish.py", "Publisher thread:\nrefresher.refresh task\noff the read path"),
]
MISS: list[Step] = [
    ("core", "core/miss.py", "one load per key,\nhowever many callers\nand processes"),
    ("io", "io/singleflight.py", "Coalesce: one caller\nper process loads,\nthe others share it"),
    ("core", "core/lock.py", "SET NX lock with a\nTTL and a random\ntoken (lease)"),
    ("io", "io/drivers/", "Load: calls the loader\n(the origin); the\nwatchdog extends the lock"),
    ("core", "core/commit.py", "COMMIT_LOAD: owner\nand generation checked,\nwritten, signal sent"),
    ("core", "core/wait.py", "other processes sleep\non the signal channel,\nwoken with the value"),
]
REFRESH: list[Step] = [  # drawn right to left: the task arrives under the publisher
    ("worker", "refresher/tasks.py", "refresher.refresh:\na Celery shared task\n(JSON, no result)"),
    ("worker", "worker/run.py", "refresh_task: checks\nthe message first\n(core/wire.py)"),
    ("api", "api/registry.py", "Refreshable: the\nLoaderState and its\ndrivers, by name"),
    ("core", "core/renew.py", "TAKE_REFRESH_LOCK;\nstill fresh? done;\nelse Load (io/drivers/)"),
    ("core", "core/commit.py", "COMMIT_LOAD: the\nsame fenced write\nas a miss's"),
    ("core", "core/protocol/", "outcomes.py: what it\ndid, as logs, metrics\n(ops/) and Flower show"),
]


def box(ax: Axes, x: float, y: float, step: Step) -> None:
    folder, title, body = step
    color = FOLDERS[folder][0] if folder in FOLDERS else OUTSIDE
    ax.add_patch(FancyBboxPatch((x, y), WIDTH, HEIGHT, boxstyle="round,pad=0.2,rounding_size=0.7",
                                facecolor=color, edgecolor=EDGE, linewidth=1.2, zorder=1))
    ax.text(x + WIDTH / 2, y + HEIGHT - 1.0, title, ha="center", va="top", fontsize=10.5,
            fontweight="bold", family="monospace", zorder=3)
    ax.text(x + WIDTH / 2, y + HEIGHT - 3.6, body, ha="center", va="top", fontsize=9.2,
            linespacing=1.35, zorder=3)


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str = "",
          at: tuple[float, float] | None = None, dashed: bool = False, rad: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=15, linewidth=1.6,
                                 color="#111827", linestyle=(0, (5, 3)) if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}", zorder=2, shrinkA=1, shrinkB=1))
    if label:
        x, y = at if at is not None else ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        ax.text(x, y, label, ha="center", va="center", fontsize=8.8, zorder=4, linespacing=1.3,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#111827",
                      "linewidth": 0.8})


def lane(ax: Axes, y: float, name: str, note: str, steps: list[Step], backwards: bool = False) -> list[float]:
    """One path as a row of boxes joined by arrows (right to left if `backwards`);
    returns each step's left edge, in the path's order."""
    ax.add_patch(FancyBboxPatch((0.4, y - 1.2), 99.2, HEIGHT + 2.4, boxstyle="round,pad=0,rounding_size=1",
                                facecolor="#f9fafb", edgecolor="#d1d5db", linewidth=1, zorder=0))
    ax.text(4.6, y + HEIGHT - 0.6, name, ha="center", va="top", fontsize=13, fontweight="bold")
    ax.text(4.6, y + HEIGHT - 3.4, note, ha="center", va="top", fontsize=8.6, color=EDGE, linespacing=1.3)
    lefts = [LEFT + i * (WIDTH + GAP) for i in range(len(steps))]
    if backwards:
        lefts.reverse()
    for x, step in zip(lefts, steps):
        box(ax, x, y, step)
    for a, b in zip(lefts, lefts[1:]):
        ahead = 1 if b > a else -1
        start = a + WIDTH + 0.2 if ahead > 0 else a - 0.2
        arrow(ax, (start, y + HEIGHT / 2), (start + ahead * (GAP - 0.4), y + HEIGHT / 2))
    return lefts


def draw(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(20, 12.5), dpi=100)
    ax.set_xlim(0, 100)
    ax.set_ylim(-3, 72)
    ax.axis("off")
    ax.text(50, 71.5, "refresher: the three paths through the modules", ha="center", va="top",
            fontsize=18, fontweight="bold")
    ax.legend(handles=[Patch(facecolor=fill, edgecolor=EDGE, label=label) for fill, label in FOLDERS.values()],
              loc="upper center", bbox_to_anchor=(0.5, 0.935), ncol=5, fontsize=9.5, frameon=False)

    hit = lane(ax, 46, "Hit", "a value in\nRedis, fresh\nor in its\nrefresh window", HIT)
    miss = lane(ax, 25, "Miss", "no value:\nload once,\ncoalesced\nacross\nprocesses", MISS)
    refresh = lane(ax, 4, "Refresh", "on a Celery\nworker, at most\nonce per key\nper window", REFRESH,
                   backwards=True)

    # Where the paths meet: a read that finds nothing servable misses; the task the hit
    # published reaches a worker through the broker, down the right-hand margin.
    arrow(ax, (hit[3] + WIDTH / 2, 45.9), (miss[0] + WIDTH / 2, 37.7), "nothing servable",
          at=((hit[3] + miss[0]) / 2 + WIDTH / 2, 41.8))
    margin, top, bottom = 97.4, 46 + HEIGHT / 2, 4 + HEIGHT / 2
    ax.plot([hit[5] + WIDTH + 0.2, margin, margin], [top, top, bottom], color="#111827", linewidth=1.6,
            linestyle=(0, (5, 3)), zorder=2)
    arrow(ax, (margin, bottom), (refresh[0] + WIDTH + 0.2, bottom), dashed=True)
    ax.text(margin, (top + bottom) / 2, "broker", ha="center", va="center", fontsize=8.8, rotation=90, zorder=4,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#111827", "linewidth": 0.8})
    ax.text(50, -1.2, "solid: a call or a step within one process; dashed: a task through the broker. "
            "Every Redis round trip is an op a driver performs; every Lua script lives in core/protocol/scripts.py.",
            ha="center", va="top", fontsize=9.5, color=EDGE)

    fig.savefig(path, bbox_inches="tight", facecolor="white")
    plt.close(fig)


if __name__ == "__main__":
    draw(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("architecture.png"))
