"""What the figures were measured on, for the top of the docs."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]


def describe(client: redis.Redis, command: str, load_at_start: float) -> list[tuple[str, str]]:
    """`load_at_start`: the 1-minute load average when the run began. A shared machine's other
    work shows up in every latency here, so the docs say how busy it was."""
    return [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("command", f"`{command}`"),
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", _cpu_model()),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("Redis server", str(client.info("server")["redis_version"])),
        ("redis-py / celery / dogpile.cache / cashews",
         " / ".join(version(p) for p in ("redis", "celery", "dogpile.cache", "cashews"))),
        ("load average (1 min) at start / end", f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"),
        ("refresher commit", _commit()),
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "refresher", "workers"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + (" (refresher/ or workers/ modified)" if dirty.stdout.strip() else "")
