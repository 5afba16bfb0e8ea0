"""`python -m bench.coldab` runs end to end, measures the tree it is asked to (`--before`)
beside this one, and rewrites only its own section of benchmarks.md. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.bench
@pytest.mark.timeout(180)
def test_coldab_measures_both_trees_and_replaces_only_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nbefore\n\n<!-- coldab:start -->\nstale figures\n<!-- coldab:end -->\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bench.coldab", "--rounds", "1", "--before", str(ROOT),
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n\n<!-- coldab:start -->\n## Cold stampede hand-off")
    assert text.rstrip().endswith("<!-- coldab:end -->\n\nafter") and "stale figures" not in text
    assert "\n| before | " in text and "\n| after | " in text
