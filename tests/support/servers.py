"""Real processes for the tests: redis-server on a free loopback port, Celery workers.

Readiness is read from each process's own log ("Ready to accept connections",
"celery@... ready."), never guessed with a sleep.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Callable

ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT: set[int] = set()
_handing_out = threading.Lock()


def free_port() -> int:
    """A loopback port nothing is bound to, and never one this process handed out before:
    the kernel may give two probes in a row the same port (each is closed at once), which
    made a cluster's twelve ports, picked together, collide about once in 150 batches
    ('Address already in use' at start)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with _handing_out:
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def stop_gracefully(proc: subprocess.Popen[str] | None, nudge: Callable[[], object] | None = None) -> None:
    """SIGTERM (a warm shutdown for Celery, uvicorn and gunicorn), SIGKILL if it hangs.
    `nudge()`, called once the signal is sent, can wake a process that would notice it late."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        if nudge is not None:
            nudge()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class LogWatcher:
    """Collects a process's output lines and lets a test wait for one to appear."""

    def __init__(self, stream: IO[str], echo_prefix: str = "") -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._echo = echo_prefix
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            if os.environ.get("REFRESHER_TEST_ECHO"):
                sys.stderr.write(self._echo + line)
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("<eof>")
            self._cond.notify_all()

    def count(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if rx.search(line))

    def wait_for(self, pattern: str, timeout: float = 20.0, count: int = 1) -> str:
        """Block until `count` lines match `pattern`; return the last one matched."""
        rx = re.compile(pattern)
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(1 for line in self.lines if rx.search(line)) >= count or "<eof>" in self.lines[-1:],
                timeout,
            )
            matches = [line for line in self.lines if rx.search(line)]
            if not ok or len(matches) < count:
                tail = "\n".join(self.lines[-40:])
                raise AssertionError(f"timed out waiting for {count}x /{pattern}/; last output:\n{tail}")
            return matches[-1]


class RedisServer:
    def __init__(self, port: int | None = None, *extra: str, binary: str = "redis-server") -> None:
        self.port = port or free_port()
        self.extra = list(extra)
        self.binary = binary  # a name on the PATH, or a path (another Redis version)
        self.proc: subprocess.Popen[str] | None = None
        self.log: LogWatcher | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which(self.binary)
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "no", *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.proc.stdout is not None
        self.log = LogWatcher(self.proc.stdout, f"[redis:{self.port}] ")
        try:
            self.log.wait_for("Ready to accept connections", timeout=10)
        except BaseException:
            self.stop()
            raise

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


TEST_WORKER_FLAGS = ("--without-mingle", "--without-gossip", "--without-heartbeat")


class WorkerProcess:
    """`celery -A workers worker` as a subprocess, exactly as a user runs it.

    `flags=()` runs it as the README recommends, heartbeat on (refresher.worker turns gossip
    and mingle off whatever the flags). `events=False` drops `-E`: task events cost a
    worker about two thirds of its refresh throughput (a fleet test needs it all). `app`
    and `queues` run a user's own Celery app instead (`-A proj -Q celery,refresher`)."""

    def __init__(self, redis_url: str, loaders: str = "tests.support.loaders", concurrency: int = 1,
                 pool: str = "threads", extra_env: dict[str, str] | None = None,
                 flags: tuple[str, ...] = TEST_WORKER_FLAGS, events: bool = True, app: str = "workers",
                 queues: str | None = None) -> None:
        self.env = dict(os.environ)
        self.env.update(
            REFRESHER_REDIS_URL=redis_url,
            REFRESHER_LOADERS=loaders,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        self.env.update(extra_env or {})
        self.args = [
            sys.executable, "-m", "celery", "-A", app, "worker", "-l", "info", *(["-E"] if events else []),
            "-P", pool, "-c", str(concurrency), *flags, *(["-Q", queues] if queues else []),
            "-n", f"worker{free_port()}@%h",
        ]
        # Its node name as Celery expands %h: a control call addressed to it returns with
        # its reply instead of waiting out the timeout for other workers' replies.
        self.node = self.args[-1].replace("%h", socket.gethostname())
        self.proc: subprocess.Popen[str] | None = None
        self.log: LogWatcher | None = None

    def start(self) -> WorkerProcess:
        # A process group of its own, with its prefork pool's children: discard() ends them all.
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        assert self.proc.stdout is not None
        self.log = LogWatcher(self.proc.stdout, "[worker] ")
        try:
            self.log.wait_for(r"@\S+ ready\.", timeout=60)
        except BaseException:
            self.stop()  # never leave a half-started worker behind
            raise
        return self

    def ping(self, timeout: float) -> bool:
        """`celery inspect ping` for this worker, on its broker: whether it answered in time."""
        from celery import Celery

        app = Celery("probe", broker=self.env.get("REFRESHER_BROKER_URL") or self.env["REFRESHER_REDIS_URL"],
                     set_as_current=False)
        app.conf.broker_connection_timeout = 1
        try:
            return bool(app.control.ping([self.node], timeout=timeout))
        finally:
            app.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self, nudge: Callable[[], object] | None = None) -> None:
        stop_gracefully(self.proc, nudge)

    def discard(self) -> None:
        """End a worker whose test is over, at once, with its pool's processes (SIGKILL to
        its process group). A warm stop waits for the broker read in progress (kombu's 1 s
        BRPOP), the interpreter's exit and a prefork pool's children: 1 to 2.5 s a worker;
        nothing it would finish outlives the test: the next one empties Redis and its queue."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone already
        self.proc.wait(timeout=10)
