"""`python -m bench.fleetcost --quick` runs end to end, and its counts (not its timings)
are the ones docs/scaling.md section 8 works from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bench
@pytest.mark.timeout(120)
def test_quick_fleetcost_bench_counts_connections_and_one_push_per_write() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.fleetcost", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1].strip(" |") for line in done.stdout.splitlines()}
    assert rows["connections, near cache off, 1 read"] == "1 (0 the tracker's)"
    assert rows["connections, near cache off, 20 reads in a second"] == "2 (1 the tracker's)"
    assert rows["connections, near cache on, 1 read"] == "2 (1 the tracker's)"
    assert rows["pushes per idle tracker for 100 loads + 100 sets elsewhere, each of 4"] == "200 / 200 / 200 / 200"
    assert "redis-server CPU per push, 32 trackers, 1 SET(s) a round trip" in rows
    assert rows["near-off hit, tracker on / no tracker (epoch fetched per read)"].endswith("x)")
