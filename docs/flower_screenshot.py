"""Take docs/flower.png: Flower's tasks page after the demo's traffic (`make flower-screenshot`).

    .venv/bin/python -m docs.flower_screenshot            # writes docs/flower.png
    .venv/bin/python -m docs.flower_screenshot out.png    # or somewhere else

Starts a redis-server on a free loopback port, Flower on another (basic auth, as the README
recommends), runs `python -m examples.demo --events` against that Redis (its worker with
-E), then has headless Chromium (Debian's `chromium` package) load Flower's tasks page and
save it. Not run in CI: it needs Chromium and takes about a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

from examples.services import ROOT, Child, free_port, redis_server

AUTH = "demo:screenshot-only"  # refresher/ops/flower.py wants 12+ characters
DEMO = [sys.executable, "-m", "examples.demo", "--events", "--seconds", "4", "--processes", "2", "--threads", "4"]


def tasks_seen(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/tasks")
    request.add_header("Authorization", "Basic " + b64encode(AUTH.encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        return len(json.loads(answer.read()))


def wait_for_tasks(port: int, seconds: float = 10.0) -> int:
    """Flower takes task events off the broker as they come: poll until it shows some."""
    deadline = time.monotonic() + seconds
    while not (seen := tasks_seen(port)):
        if time.monotonic() > deadline:
            raise RuntimeError("Flower saw no refresh task: did the demo's worker run with -E?")
        time.sleep(0.2)
    return seen


def screenshot(url: str, out: Path, size: str = "1500,760") -> None:
    browser = shutil.which("chromium")
    if browser is None:
        raise RuntimeError("chromium is not installed: apt-get install -y chromium")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size}", "--virtual-time-budget=10000", f"--screenshot={out}", url],
                   check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def main(out: Path) -> None:
    with redis_server() as url:
        port = free_port()
        env = {**os.environ, "REFRESHER_REDIS_URL": url, "PYTHONPATH": str(ROOT), "FLOWER_BASIC_AUTH": AUTH}
        flower = Child("flower", [sys.executable, "-m", "celery", "-A", "workers", "flower",
                                  f"--port={port}", "--address=127.0.0.1"], env)
        flower.start(r"Visit me at", timeout=30)
        try:
            subprocess.run(DEMO, env=env, cwd=ROOT, check=True, stdin=subprocess.DEVNULL)
            print(f"flower: {wait_for_tasks(port)} refresh tasks seen")
            screenshot(f"http://{AUTH}@127.0.0.1:{port}/tasks", out)
        finally:
            flower.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "flower.png")
