"""Take docs/reference/metrics.png: Prometheus' own graph page over two minutes of demo-style traffic.

    .venv/bin/python -m docs.metrics_screenshot            # writes docs/reference/metrics.png
    .venv/bin/python -m docs.metrics_screenshot out.png    # or somewhere else

Grafana does not run here (no Docker engine, no Debian package), so the picture is
Prometheus' graph page. Everything listens on loopback ports: a redis-server, a refresh
worker (`celery -A workers worker` with REFRESHER_METRICS_PORT), the FastAPI example under
uvicorn with a near cache, and Debian's `prometheus` scraping both with
ops/prometheus/prometheus.yml (targets moved to those ports, every 2 s). Reader threads
read users with a skewed popularity; halfway, `invalidate_all(hard=True)` drops every
value at once. Then headless Chromium (Debian's `chromium`) saves the graph page. Needs
`apt-get install -y prometheus chromium`; not run in CI.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from docs.flower_screenshot import screenshot
from examples.services import ROOT, Child, celery_worker, free_port, redis_server

SECONDS = 120  # of traffic
INVALIDATE_AT = 60
READERS = 6
THINK = 0.02  # seconds between a reader's requests
USERS = 100
WINDOW = "20s"  # rate() window: short, for a two-minute picture (the dashboard uses $__rate_interval)
SERVED = 'outcome=~"hit|near_hit|refresh_asked|stale_served"'
GRAPHS = {
    "hit ratio": f"sum by (loader) (rate(refresher_reads_total{{{SERVED}}}[{WINDOW}])) "
                 f"/ sum by (loader) (rate(refresher_reads_total[{WINDOW}]))",
    "origin calls": f"sum by (job) (rate(refresher_loads_total[{WINDOW}]))",
}


def prometheus_config(web: int, worker: int, folder: Path) -> Path:
    """ops/prometheus/prometheus.yml with its targets on this machine's loopback ports."""
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "2s"
    ports = {"web": web, "worker": worker}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def query(prometheus: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]  # type: ignore[no-any-return]


def read_users(port: int, until: float, counts: list[int]) -> None:
    """One reader: user n with a weight of 1/n (a few hot users, a long tail)."""
    rng, weights = random.Random(), [1 / n for n in range(1, USERS + 1)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < until:
        user = rng.choices(range(1, USERS + 1), weights)[0]
        conn.request("GET", f"/users/{user}")
        answer = conn.getresponse()
        answer.read()
        counts[answer.status == 200] += 1
        time.sleep(THINK)  # pacing, not synchronisation
    conn.close()


def traffic(port: int, env: dict[str, str]) -> list[int]:
    """READERS threads for SECONDS, and a hard invalidate_all at INVALIDATE_AT; returns
    [failed, ok] request counts."""
    os.environ.update(env)  # the loaders module builds its Refresher from the environment
    from examples.fastapi_app.loaders import cache, load_user

    counts = [0, 0]
    start = time.monotonic()
    readers = [threading.Thread(target=read_users, args=(port, start + SECONDS, counts)) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    time.sleep(INVALIDATE_AT)  # a scene of the picture, not a wait for an event
    load_user.invalidate_all(hard=True)
    print(f"{time.monotonic() - start:.0f} s: invalidate_all(hard=True)")
    for reader in readers:
        reader.join()
    cache.close()
    return counts


def main(out: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: apt-get install -y prometheus chromium")
    with redis_server() as url, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        web, metrics, prometheus = free_port(), free_port(), free_port()
        env = {"REFRESHER_REDIS_URL": url, "REFRESHER_QUEUE": f"metrics-{uuid.uuid4().hex[:8]}",
               "EXAMPLES_DB": str(folder / "users.sqlite3"), "EXAMPLES_PROFILE_TTL": "20",
               "EXAMPLES_QUERY_SECONDS": "0.05"}
        worker_env = {**env, "REFRESHER_LOADERS": "examples.fastapi_app.loaders",
                      "REFRESHER_METRICS_PORT": str(metrics), "REFRESHER_METRICS_ADDR": "127.0.0.1"}
        with celery_worker("metrics", worker_env, concurrency=2):
            path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            app = Child("uvicorn", [sys.executable, "-m", "uvicorn", "examples.fastapi_app.main:app", "--no-access-log",
                                    "--host", "127.0.0.1", "--port", str(web)],
                        {**os.environ, **env, "REFRESHER_NEAR_CACHE": "10000", "PYTHONPATH": path})
            app.start(r"Uvicorn running on", timeout=30)
            server = Child("prometheus", [binary, f"--config.file={prometheus_config(web, metrics, folder)}",
                                          f"--storage.tsdb.path={folder / 'data'}",
                                          f"--web.listen-address=127.0.0.1:{prometheus}"])
            server.start(r"Server is ready to receive web requests", timeout=60)
            try:
                failed, ok = traffic(web, env)
                print(f"traffic: {ok} reads answered, {failed} failed")
                time.sleep(4)  # two more scrapes, so the last seconds are in the picture
                figures(prometheus)
                params = {f"g{n}.{key}": value for n, expr in enumerate(GRAPHS.values())
                          for key, value in (("expr", expr), ("tab", "0"), ("range_input", "2m"), ("step_input", "2"))}
                screenshot(f"http://127.0.0.1:{prometheus}/graph?" + urllib.parse.urlencode(params), out,
                           size="1400,1540")
            finally:
                server.stop()
                app.stop()
    print(f"wrote {out}")


def figures(prometheus: int) -> None:
    """What the run added up to, as Prometheus has it (for docs/reference/metrics.md)."""
    for title, expr in {
        "reads": "sum by (job, outcome) (refresher_reads_total)",
        "origin calls": "sum by (job) (refresher_loads_total)",
        "refresh tasks": "sum by (job, outcome) (refresher_refresh_tasks_total)",
        "near cache": "sum(refresher_near_cache_entries) or sum(refresher_near_cache_invalidations_total)",
        "load p99 (s)": "histogram_quantile(0.99, sum by (le, job) (refresher_load_duration_seconds_bucket))",
    }.items():
        found = {json.dumps(r["metric"]): r["value"][1] for r in query(prometheus, expr)}
        print(f"{title}: {found}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "reference" / "metrics.png")
