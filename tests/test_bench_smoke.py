"""The quick benchmark runs end to end. It checks that the bench works, not what it
measured: timings on a test machine say nothing, so none are asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench  # about two minutes together: `make bench-smoke`
ROOT = Path(__file__).resolve().parents[1]
TABLES = (
    "1. Cold stampede",
    "2. Hot key",
    "2b. Refresher Window vs XFetch",
    "3. Hit path",
    "4a. Many keys",
    "4b. Memory per key",
    "4c. Refresh path profile",
    "5. Bulk",
    "Targets",
)


@pytest.mark.timeout(150)
def test_quick_bench_writes_its_tables_and_plot(tmp_path: Path) -> None:
    # The bench starts its own redis-server and workers; --out keeps docs/ untouched.
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=140,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for title in TABLES:
        assert title in done.stdout
    doc = (tmp_path / "benchmarks.md").read_text()
    for title in TABLES:
        assert f"### {title}" in doc
    assert "![Hot key" in doc and "## Machine" in doc
    assert (tmp_path / "hot-key.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
