"""`python -m bench --quick --only near` runs end to end and writes only its own section of
benchmarks.md. No timing is asserted: timings on a test machine say nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench  # about two minutes together: `make bench-smoke`
ROOT = Path(__file__).resolve().parents[1]
TITLES = ("6a. Near hit throughput", "6b. Invalidation lag", "6c. Near cache, hot key", "6d. Hot key: Redis GETs",
          "6e. Invalidation cost", "6f. Frozen server", "Near cache targets")


@pytest.mark.timeout(90)
def test_quick_near_bench_writes_only_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nbefore\n\n<!-- python -m bench --only near: begin -->\nstale figures\n"
                   "<!-- python -m bench --only near: end -->\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "near", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=80)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for title in TITLES[:-1]:
        assert title in done.stdout
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n\n<!-- python -m bench --only near: begin -->\n## Near cache")
    assert text.rstrip().endswith("<!-- python -m bench --only near: end -->\n\nafter")
    assert "stale figures" not in text
    for title in TITLES:
        assert f"### {title}" in text
    assert "| refresher commit |" in text and "redis-py's client-side cache" in text
    # Six targets (throughput twice, lag, hot key, cost, frozen server), each MET or MISSED.
    assert len(re.findall(r" (?:MET|MISSED) \|", text)) == 6
