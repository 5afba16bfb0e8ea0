"""A real rabbitmq-server (Debian's package) for the tests, run as the test user.

Everything it needs lives in a temporary directory and on free loopback ports: its own
epmd (a child process in the foreground, not a daemon that would outlive the tests), the
node's AMQP and distribution ports, its database, logs, config and Erlang cookie.
Plugins are off (no management UI). Readiness is read from the logs, never guessed:
epmd's "entering the main select() loop" and RabbitMQ's "Server startup complete".
"""

from __future__ import annotations

import glob
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.servers import LogWatcher, free_port

READY = r"Server startup complete"
EPMD_READY = r"entering the main select\(\) loop"


def rabbitmq_server_binary() -> str:
    """The real server script, not /usr/sbin's wrapper (which switches to the rabbitmq
    user and its system directories)."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))
    if not found:
        raise RuntimeError("rabbitmq-server is not installed: run `make test`, which installs it")
    return found[-1]


class Epmd:
    """The Erlang port mapper on a free loopback port, as a child process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        binary = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        # -d -d: its debug output includes the line saying it listens
        self.proc = subprocess.Popen([binary, "-d", "-d", "-port", str(self.port), "-address", "127.0.0.1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        log = LogWatcher(self.proc.stdout, f"[epmd:{self.port}] ")
        try:
            log.wait_for(EPMD_READY, timeout=10)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class RabbitServer:
    """One RabbitMQ node. `stop()` and `start()` keep its ports and database, so a test
    can restart it (or kill it with SIGKILL) and clients find it again at the same URL."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dist_port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="refresher-rabbitmq-"))
        self.node = f"refresher-test-{self.port}@localhost"
        self.epmd = Epmd()
        self.proc: subprocess.Popen[str] | None = None
        self.log: LogWatcher | None = None
        self._vm_pid: int | None = None
        self._controls = 0
        self.app_stopped = False  # by stop_app(): the node runs, the broker does not
        self.start_seconds: list[float] = []  # how long each start took, until ready
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # a nearly full disk must not block publishers in a test
            "disk_free_limit.absolute = 1MB\n"
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.home),  # the Erlang cookie goes here
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd.port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_CONF_ENV_FILE=str(self.home / "none.conf"),  # absent: no shell to source it
            RABBITMQ_CONFIG_FILE=str(self.home / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.home / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.home / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.home / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.home / "log"),
            RABBITMQ_LOGS="-",  # to stdout, where the watcher reads it
            # distribution on loopback only; never start a stray epmd daemon
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
        )
        return env

    def start(self) -> None:
        started = time.monotonic()
        if self.epmd.proc is None:
            self.epmd.start()
        self.proc = subprocess.Popen([rabbitmq_server_binary()], env=self._env(), cwd=self.home,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     encoding="utf-8", errors="replace", start_new_session=True)
        assert self.proc.stdout is not None
        self.log = LogWatcher(self.proc.stdout, f"[rabbitmq:{self.port}] ")
        try:
            self.log.wait_for(READY, timeout=60)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        self.start_seconds.append(time.monotonic() - started)
        self._vm_pid = _only_child(self.proc.pid)
        self.app_stopped = False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown. SIGKILL: the whole node dies at once (the
        rabbitmq-server script and its Erlang VM, which share a process group).
        Returns once the VM has exited, so its port is free for the next start."""
        if self.proc is not None and self.proc.poll() is None:
            vm = _exit_watch(self._vm_pid)
            if sig != signal.SIGKILL:  # a frozen node cannot stop cleanly; SIGKILL needs no wake-up,
                os.killpg(self.proc.pid, signal.SIGCONT)  # which would let it deliver what it had buffered
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)
            if vm is not None:
                try:
                    ready, _, _ = select.select([vm], [], [], 30)
                    assert ready, f"the Erlang VM {self._vm_pid} did not exit"
                finally:
                    os.close(vm)
        self.proc = None
        self._vm_pid = None

    def freeze(self) -> None:
        """SIGSTOP the node: connections stay open, nothing answers (a hung broker)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop_app(self) -> None:
        """Stop the broker inside its running Erlang VM (`rabbitmqctl stop_app`): every
        client connection is closed (CONNECTION_FORCED), the AMQP listener closes, queues
        stop (transient messages are lost). To a client the broker is down."""
        self._rpc("stop")
        self.app_stopped = True

    def start_app(self) -> None:
        """Start it again (`rabbitmqctl start_app`); returns once it accepts connections."""
        listening = self._listening()
        self._rpc("start")
        self._await_listener(listening)
        self.app_stopped = False

    def restart_app(self) -> None:
        """A broker restart as clients see it, in about 1 s where restarting the node takes
        7 to 8 s: what lets a test restart the broker ten times in a row."""
        listening = self._listening()
        self._rpc("stop", "start")
        self._await_listener(listening)

    def _listening(self) -> int:
        """How many times the log has said the AMQP listener started."""
        assert self.log is not None
        return sum(1 for line in list(self.log.lines) if f"started TCP listener on 127.0.0.1:{self.port}" in line)

    def _await_listener(self, before: int) -> None:
        """Until the log says the listener started once more. `rabbit:start()` once returned
        ok in CI with no listener to follow (every later AMQP test was refused): then the
        node is restarted whole, its log's tail shown."""
        assert self.log is not None
        try:
            self.log.wait_for(rf"started TCP listener on 127\.0\.0\.1:{self.port}", timeout=15, count=before + 1)
        except AssertionError as exc:
            sys.stderr.write(f"RabbitMQ's listener did not come back; restarting the node: {exc}\n")
            self.stop(signal.SIGKILL)
            self.start()

    def ensure_running(self) -> None:
        """Whatever an earlier test left: the node and the broker in it running."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
            return
        self.thaw()  # if it was left frozen
        if self.app_stopped:
            self.start_app()

    def _rpc(self, *functions: str) -> None:
        """Call `rabbit:F()` for each function in turn on the node, from a hidden Erlang node
        on loopback (the node's own cookie), and check that each returned ok. The call
        returns when the broker has stopped or started: no polling."""
        assert self.proc is not None, "the node is not running"
        self._controls += 1
        cookie = (self.home / ".erlang.cookie").read_text().strip()
        calls = ", ".join(f"rpc:call('{self.node}', rabbit, {f}, [], 30000)" for f in functions)
        done = subprocess.run(
            ["erl", "-sname", f"ctl{self._controls}-{self.port}@localhost", "-hidden", "-noinput",
             "-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}", "-setcookie", cookie,
             "-eval", f"io:format(\"~p~n\", [[{calls}]]), halt()."],
            env=dict(os.environ, HOME=str(self.home), ERL_EPMD_PORT=str(self.epmd.port)),
            capture_output=True, text=True, timeout=60,
        )
        assert done.stdout.strip() == "[" + ",".join(["ok"] * len(functions)) + "]", (done.stdout, done.stderr)

    def close(self) -> None:
        self.stop()
        self.epmd.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def _only_child(pid: int) -> int | None:
    """The Erlang VM that the rabbitmq-server script started and waits for."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if len(children) == 1 else None


def _exit_watch(pid: int | None) -> int | None:
    """A pidfd that becomes readable when `pid` exits (None if it is already gone)."""
    if pid is None:
        return None
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
