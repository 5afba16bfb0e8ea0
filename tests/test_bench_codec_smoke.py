"""`python -m bench.codec --quick` runs end to end and rewrites only its own section of
benchmarks.md. No timing is asserted: timings on a test machine say nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TITLES = ("Target (issue 8)", "Hit, `get`", "Hit, `await aget`", "Load:", "The codec alone")


@pytest.mark.timeout(60)
def test_quick_codec_bench_replaces_only_its_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nbefore\n\n<!-- codec:start -->\nstale figures\n<!-- codec:end -->\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "bench.codec", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for title in TITLES:
        assert title in done.stdout
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nbefore\n\n<!-- codec:start -->\n## Codecs")
    assert text.rstrip().endswith("<!-- codec:end -->\n\nafter")
    assert "stale figures" not in text
    assert text.count("<!-- codec:start -->") == text.count("<!-- codec:end -->") == 1
    for title in TITLES:
        assert f"### {title}" in text
    assert "| load average (1 min) at start / end |" in text and "| refresher commit |" in text
    # The verdict rows (get and aget, wall time and CPU) say MET or MISSED, whatever the machine.
    assert len(re.findall(r"\| (?:MET|MISSED) \|", text)) == 4
