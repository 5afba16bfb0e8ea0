"""Draw docs/deployment.png, the recommended deployment of docs/scaling.md.

    .venv/bin/python docs/deployment.py            # writes docs/deployment.png
    .venv/bin/python docs/deployment.py out.png    # or somewhere else

App processes with the refresher client, a Redis Cluster cache (3 masters, 1 replica each),
a separate broker, Celery workers and Flower, with arrows labelled by what flows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

Point = tuple[float, float]

APP = "#dbeafe"
CACHE = "#fee2e2"
BROKER = "#fef3c7"
WORKER = "#dcfce7"
ORIGIN = "#e5e7eb"
FLOWER = "#f3e8ff"
INNER = "#ffffff"


def box(ax: Axes, x: float, y: float, w: float, h: float, color: str, title: str, body: str = "",
        title_size: float = 11.5, body_size: float = 9.0, edge: str = "#374151") -> None:
    """A rounded box with a bold title at its top and smaller lines under it."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.25,rounding_size=0.8",
                                facecolor=color, edgecolor=edge, linewidth=1.3, zorder=1))
    ax.text(x + w / 2, y + h - 0.9, title, ha="center", va="top", fontsize=title_size,
            fontweight="bold", zorder=3)
    if body:
        ax.text(x + w / 2, y + h - 1.0 - title_size * 0.2, body, ha="center", va="top",
                fontsize=body_size, linespacing=1.35, zorder=3)


def arrow(ax: Axes, start: Point, end: Point, label: str = "", at: Point | None = None,
          color: str = "#111827", dashed: bool = False, both: bool = False,
          size: float = 8.8, rad: float = 0.0) -> None:
    """An arrow from `start` to `end`, its label in a white box at `at` (default: the middle)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="<|-|>" if both else "-|>",
                                 mutation_scale=16, linewidth=1.7, color=color,
                                 linestyle=(0, (5, 3)) if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}", zorder=2,
                                 shrinkA=2, shrinkB=2))
    if label:
        x, y = at if at is not None else ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        ax.text(x, y, label, ha="center", va="center", fontsize=size, color=color, zorder=4,
                linespacing=1.3,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": color,
                      "linewidth": 0.8})


def draw(path: Path) -> None:
    fig, ax = plt.subplots(figsize=(19, 11.5), dpi=100)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 74)
    ax.axis("off")
    ax.text(50, 73.4, "refresher: the recommended deployment", ha="center", va="top",
            fontsize=18, fontweight="bold")
    ax.text(50, 70.8, "sized in docs/scaling.md for 1M keys, 100k reads/s, TTL 300 s "
            "(refresh window 30 s)", ha="center", va="top", fontsize=11.5, color="#374151")

    # The origin, top middle.
    box(ax, 34, 60, 32, 7, ORIGIN, "Origin database (or HTTP API)",
        "what the loaders call: the source of truth")

    # App processes, left.
    box(ax, 1, 17, 18, 37, APP, "App processes",
        "web workers (gunicorn, uvicorn, ...)\neach imports the loaders\nand makes one Refresher()")
    for i, y in enumerate((37.5, 28.5, 19.5)):
        name = "web worker N" if i == 2 else f"web worker {i + 1}"
        box(ax, 2.5, y, 15, 7, INNER, name,
            "load_user.get(...) / aget(...)\nsingleflight, publisher thread",
            title_size=10, body_size=8.5)

    # The cache: a Redis Cluster, 3 masters with a replica each.
    box(ax, 34.5, 17, 31.5, 35.5, CACHE, "Cache: Redis Cluster",
        "REFRESHER_REDIS_URL=redis+cluster://m1:6379,m2:6379,m3:6379", body_size=9)
    slots = ("0-5460", "5461-10922", "10923-16383")
    for i, x in enumerate((35.4, 45.65, 55.9)):
        box(ax, x, 36.5, 9.2, 9.5, INNER, f"master {i + 1}",
            f"slots {slots[i]}\n333k keys\n204 MB used",
            title_size=10, body_size=8.5, edge="#991b1b")
        box(ax, x, 22.5, 9.2, 7, INNER, f"replica {i + 1}", "stands by\nfor failover;\nno reads",
            title_size=10, body_size=8.5, edge="#991b1b")
        arrow(ax, (x + 4.6, 36.3), (x + 4.6, 29.8), color="#991b1b", dashed=True)
    ax.text(50, 19.2, "master to replica: asynchronous replication\n"
            "(a failover can lose the last acknowledged writes)",
            ha="center", va="center", fontsize=8.8, color="#991b1b", zorder=4, linespacing=1.3)

    # Celery workers, right.
    box(ax, 81, 17, 18, 37, WORKER, "Celery workers",
        "REFRESHER_LOADERS=myapp.loaders\ncelery -A workers worker\n-P threads --concurrency C")
    for i, y in enumerate((37.5, 28.5, 19.5)):
        name = "worker process N" if i == 2 else f"worker process {i + 1}"
        box(ax, 82.5, y, 15, 7, INNER, name, "threads run refresh tasks:\nlock, load, commit",
            title_size=10, body_size=8.5)

    # The broker and Flower, bottom.
    box(ax, 37, 1, 26, 11.5, BROKER, "Broker (separate from the cache)",
        "Redis or RabbitMQ, queue \"refresher\"\nREFRESHER_BROKER_URL\n(Celery cannot use a Cluster)")
    box(ax, 79, 1, 20, 10, FLOWER, "Flower",
        "celery -A workers flower (:5555)\nno login: keep it internal")

    # What flows.
    arrow(ax, (19.3, 43), (34.2, 43),
          "~100k GET/s: one per read\nclaim script: first reader\nin the window, per process\n"
          "miss: lock, MGET, commit", at=(26.7, 48.3), size=8.6)
    arrow(ax, (34.2, 26), (19.3, 26), "values;\nSPUBLISH wakes\nthe miss waiters", dashed=True,
          at=(26.7, 30.2), size=8.6)
    arrow(ax, (80.7, 43), (66.3, 43),
          "per refresh: lock,\nMGET, extend, commit\n(4 round trips)", at=(73.5, 47.3), size=8.6)
    arrow(ax, (10, 54.4), (33.8, 62.5), "inline load on a true miss\n(coalesced: one per key)",
          at=(18.5, 61.3))
    arrow(ax, (90, 54.4), (66.2, 62.5), "refresh loads\n<= 3.7k/s", at=(82, 61.3))
    arrow(ax, (10, 16.8), (36.8, 7),
          "refresh task: 1 per key per window\n(publisher thread, off the read path)",
          at=(17, 8))
    arrow(ax, (63.2, 10.5), (88, 16.8), "refresh tasks <= 3.7k/s\n(prefetch 1 per thread)",
          at=(74.5, 13.4))
    arrow(ax, (63.2, 4.5), (78.8, 4.5), "task events\n(workers with -E)", dashed=True,
          at=(71.5, 4.5))
    ax.text(50, -1.2, "solid: requests and the data they carry; dashed: replication, "
            "wake-ups and events", ha="center", va="top", fontsize=9.5, color="#374151")

    fig.savefig(path, bbox_inches="tight", facecolor="white")
    plt.close(fig)


if __name__ == "__main__":
    draw(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("deployment.png"))
