"""The framework examples as real server processes (uvicorn, gunicorn) on a free loopback
port, each known to be up from its own log lines, and the HTTP load the tests put on them."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import redis

from tests.support.servers import ROOT, LogWatcher, WorkerProcess, free_port, stop_gracefully

WRITTEN = r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'"


def example_env(redis_url: str, db: Path, **extra: str) -> dict[str, str]:
    """What an app and its worker must agree on. A queue of their own keeps their tasks
    apart from whatever earlier tests left in the session's Redis."""
    return {"REFRESHER_REDIS_URL": redis_url, "REFRESHER_QUEUE": f"examples-{secrets.token_hex(4)}",
            "EXAMPLES_DB": str(db), **extra}


class AppServer:
    """A web server subprocess on 127.0.0.1:`port`. `launch` returns at once (so a worker
    can start meanwhile); `wait_ready` waits for `count` lines matching `ready`."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, ready: str, count: int = 1,
                 cwd: Path = ROOT) -> None:
        self.args = args
        self.cwd = cwd
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.port = port
        self.ready = ready
        self.count = count
        self.proc: subprocess.Popen[str] | None = None
        self.log: LogWatcher | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> AppServer:
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        self.log = LogWatcher(self.proc.stdout, f"[{self.args[2]}] ")  # [uvicorn], [gunicorn]
        return self

    def wait_ready(self, timeout: float = 60.0) -> AppServer:
        assert self.log is not None
        try:
            self.log.wait_for(self.ready, timeout=timeout, count=self.count)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_gracefully(self.proc)


def flower(redis_url: str, basic_auth: str, app: str = "workers", **extra: str) -> AppServer:
    """`celery -A <app> flower` on a free loopback port, with basic auth (`user:password`),
    which also turns on Flower 2's HTTP API; launched (up once it says "Visit me at")."""
    port = free_port()
    args = [sys.executable, "-m", "celery", "-A", app, "flower", f"--port={port}", "--address=127.0.0.1"]
    env = {"REFRESHER_REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": basic_auth, **extra}
    return AppServer(args, env, port, rf"Visit me at http://127\.0\.0\.1:{port}").launch()


def uvicorn(app: str, env: dict[str, str], *options: str) -> AppServer:
    """`uvicorn <app> <options>` on a free loopback port, launched."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", app, *options, "--host", "127.0.0.1", "--port", str(port)]
    return AppServer(args, env, port, rf"Uvicorn running on http://127\.0\.0\.1:{port}").launch()


def gunicorn(app: str, env: dict[str, str], workers: int, *options: str) -> AppServer:
    """`gunicorn -w <workers> --preload <options> <app>` on a free loopback port, launched. Ready
    once every worker has been forked (the socket listens before, so no request is lost)."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--preload", "-b", f"127.0.0.1:{port}", *options, app]
    return AppServer(args, env, port, r"Booting worker with pid", count=workers).launch()


class Answer(NamedTuple):
    status: int
    body: Any  # the JSON it carried (else its text)
    served_by: str | None  # the X-Served-By header: the pid of the process that answered


def stampede(url: str, path: str, n: int) -> tuple[list[Answer], float]:
    """`n` concurrent GETs of `path`, from `n` threads on a connection each: all connected
    first, then let go together by a barrier, so they reach the server at once. Returns
    the answers and when they were let go (time.monotonic()).

    Threads with http.client rather than one httpx pool: with hundreds of connections
    httpx's pool spends seconds of CPU on itself, and the reads would trickle in."""
    address = urllib.parse.urlsplit(url)
    barrier = threading.Barrier(n + 1)

    def one() -> Answer:
        conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=60)
        try:
            try:
                conn.connect()
            except BaseException:
                barrier.abort()  # the others need not wait for this one
                raise
            barrier.wait(timeout=60)
            conn.request("GET", path)
            response = conn.getresponse()
            raw = response.read()
            is_json = (response.getheader("Content-Type") or "").startswith("application/json")
            return Answer(response.status, json.loads(raw) if is_json else raw.decode(errors="replace"),
                          response.getheader("X-Served-By"))
        finally:
            conn.close()

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(one) for _ in range(n)]
        barrier.wait(timeout=60)
        started = time.monotonic()
        return [f.result() for f in futures], started


class HealthProbe:
    """tests/support/healthprobe.py in a process of its own, probing `url` until stopped."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.healthprobe", url], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if first.strip() != "ready":
            self.proc.kill()
            raise AssertionError(f"the health probe did not start: {first!r}")

    def stop(self) -> list[tuple[float, float]]:
        """The samples: (when it started, by time.monotonic(); seconds it took)."""
        try:
            out, _ = self.proc.communicate(input="", timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return [(float(at), float(took)) for at, took in (line.split() for line in out.splitlines())]


class Deployment:
    """An example's app servers with their worker: what a test counts across processes."""

    def __init__(self, worker: WorkerProcess, r: redis.Redis, origin_calls_key: str) -> None:
        self.worker, self.r, self._origin_calls_key = worker, r, origin_calls_key

    def origin_calls(self) -> int:
        return int(self.r.get(self._origin_calls_key) or 0)

    def written(self) -> int:
        assert self.worker.log is not None
        return self.worker.log.count(WRITTEN)
