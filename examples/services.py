"""The demo's own processes: a redis-server and a Celery worker, each started as a user
would start it and known to be up from its own log line, never from a guessed sleep."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class Child:
    """A child process whose output lines are collected as they arrive."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.lines: list[str] = []
        self._eof = False
        self._cond = threading.Condition()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, ready: str, timeout: float) -> Child:
        """Start the process and wait until a line matches `ready`."""
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()
        if not self.wait_for(ready, timeout=timeout):
            self.stop()
            tail = "\n".join(self.lines[-20:])
            raise RuntimeError(f"{self.name} did not come up within {timeout:g} s; its last output:\n{tail}")
        return self

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def matches(self, pattern: str) -> list[re.Match[str]]:
        rx = re.compile(pattern)
        with self._cond:
            return [m for line in self.lines if (m := rx.search(line))]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 10.0) -> bool:
        """True once `count` lines match; False on timeout or if the process's output ends."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.matches(pattern)) >= count or self._eof, timeout)
        return len(self.matches(pattern)) >= count

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a Celery worker's warm shutdown), then SIGKILL if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, stopped on exit; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (scripts/ensure-redis installs it), "
                           "and REFRESHER_REDIS_URL names no reachable Redis")
    port = free_port()
    server = Child("redis-server", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no"])
    server.start("Ready to accept connections", timeout=10)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


@contextmanager
def celery_worker(name: str, env: dict[str, str], concurrency: int, events: bool = False) -> Iterator[Child]:
    """`celery -A workers worker` (threads pool) with `env` added, stopped on exit; with
    `events`, -E and heartbeats, for Flower."""
    args = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-l", "info", "-P", "threads",
            "-c", str(concurrency), "--without-mingle", "--without-gossip",
            *(["-E"] if events else ["--without-heartbeat"]), "-n", f"{name}@%h"]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    worker = Child("celery worker", args, {**os.environ, **env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"})
    worker.start(r"@\S+ ready\.", timeout=30)
    try:
        yield worker
    finally:
        worker.stop()
