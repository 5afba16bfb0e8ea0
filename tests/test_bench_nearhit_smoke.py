"""`python -m bench.nearhit --quick` runs end to end, measures the tree it is asked to
(`--before`), and rewrites only its own section of benchmarks.md. No timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bench
@pytest.mark.timeout(120)
def test_quick_nearhit_bench_measures_both_trees_and_replaces_only_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nbefore\n\n<!-- nearhit:start -->\nstale figures\n<!-- nearhit:end -->\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bench.nearhit", "--quick", "--pairs", "1", "--before", str(ROOT),
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n\n<!-- nearhit:start -->\n## Near hit")
    assert text.rstrip().endswith("<!-- nearhit:end -->\n\nafter") and "stale figures" not in text
    assert "| near hit: frozen msgspec Struct (shared" in text and "before: µs per read" in text
    assert len(re.findall(r"\| (?:MET|MISSED) \|", text)) == 3
    assert "### Where a near hit of a dict goes, after" in text
