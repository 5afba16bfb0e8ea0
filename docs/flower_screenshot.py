"""Take docs/flower.png: Flower's tasks page after the demo's traffic (`make flower-screenshot`).

    .venv/bin/python -m docs.flower_screenshot            # writes docs/flower.png
    .venv/bin/python -m docs.flower_screenshot out.png    # or somewhere else

Starts a redis-server on a free loopback port, Flower on another (basic auth, as the README
recommends), runs `python -m examples.demo --events` against that Redis (its worker with
-E), then refreshes a loader whose first origin call fails (docs/flower_loaders.py, a
worker of its own): one refresh FAILURE with RefreshFailed, two `written`, the way a failure
shows to an operator. Then headless Chromium (Debian's `chromium` package) loads Flower's
tasks page and saves it. Not run in CI: it needs Chromium and takes about a minute.
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

from examples.services import ROOT, Child, celery_worker, free_port, redis_server

AUTH = "demo:screenshot-only"  # refresher/ops/flower.py wants 12+ characters
PRICING = "docs-pricing"  # the failing loader's namespace, queue and worker name
DEMO = [sys.executable, "-m", "examples.demo", "--events", "--seconds", "4", "--processes", "2", "--threads", "4"]


def tasks_seen(port: int, state: str = "") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/tasks" + (f"?state={state}" if state else ""))
    request.add_header("Authorization", "Basic " + b64encode(AUTH.encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        return len(json.loads(answer.read()))


def wait_for_tasks(port: int, state: str = "", at_least: int = 1, seconds: float = 20.0) -> int:
    """Flower takes task events off the broker as they come: poll until it shows enough."""
    deadline = time.monotonic() + seconds
    while (seen := tasks_seen(port, state)) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Flower saw {seen} {state or 'refresh'} tasks, not {at_least}: is the worker on -E?")
        time.sleep(0.2)
    return seen


def failed_refresh(url: str, port: int) -> None:
    """One refresh whose loader raises, then two that write: in that order, so the failure
    is the first call (docs/flower_loaders.py) and the rows read newest first."""
    env = {"REFRESHER_REDIS_URL": url, "REFRESHER_BROKER_URL": url, "REFRESHER_NAMESPACE": PRICING,
           "REFRESHER_QUEUE": PRICING, "REFRESHER_LOADERS": "docs.flower_loaders"}
    os.environ.update(env)  # the publishing Refresher below is made when the module is imported
    from docs.flower_loaders import cache, plan_price
    from refresher.ops.cli.warm import enqueue

    successes = tasks_seen(port, "SUCCESS")
    with celery_worker(PRICING, env, 2, events=True):
        enqueue(plan_price, plan_price.call(("pro",), {}))
        wait_for_tasks(port, "FAILURE")
        for plan in ("free", "team"):
            enqueue(plan_price, plan_price.call((plan,), {}))
        wait_for_tasks(port, "SUCCESS", successes + 2)
    cache.close()


def screenshot(url: str, out: Path, size: str = "1800,940") -> None:
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
            print(f"flower: {wait_for_tasks(port)} refresh tasks seen from the demo")
            failed_refresh(url, port)
            print(f"flower: {tasks_seen(port)} refresh tasks seen, {tasks_seen(port, 'FAILURE')} failed")
            screenshot(f"http://{AUTH}@127.0.0.1:{port}/tasks", out)
        finally:
            flower.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "flower.png")
