"""A Sentinel-managed Redis on loopback for the tests: a master, a replica and three
sentinels (`redis-server --sentinel`) that fail over within a couple of seconds."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.servers import LogWatcher, RedisServer, free_port

SERVICE = "refresher-test"


class SentinelServers:
    def __init__(self, sentinels: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="refresher-sentinel-"))
        quick = ("--repl-diskless-sync-delay", "0", "--dir", str(self.dir))  # RDB files in the temp dir
        self.master = RedisServer(None, *quick)
        self.replica = RedisServer(None, "--replicaof", "127.0.0.1", str(self.master.port), *quick)
        self.sentinels = sentinels
        self.ports: list[int] = []  # each picked as its sentinel starts (see _start_sentinel)
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[LogWatcher] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{SERVICE}"

    def start(self) -> None:
        try:
            self.master.start()
            self.replica.start()
            assert self.replica.log is not None
            self.replica.log.wait_for("MASTER <-> REPLICA sync: (Finished with success|Master accepted a Partial)")
            for _ in range(self.sentinels):
                self._start_sentinel()
            for log in self.logs:  # every sentinel has found the replica through the master
                log.wait_for(r"\+slave slave 127\.0\.0\.1:%d" % self.replica.port)
        except BaseException:
            self.stop()
            raise

    def _start_sentinel(self) -> None:
        """On a port picked now, not at construction: a port free then can be taken by the
        time the master and replica have synced (an outgoing connection's ephemeral port
        comes from the same range), so a refused bind is tried again on another."""
        for attempt in range(3):
            port = free_port()
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            binary = shutil.which("redis-server")
            assert binary is not None, "redis-server is not installed: run `make test`"
            proc = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            log = LogWatcher(proc.stdout, f"[sentinel:{port}] ")
            line = log.wait_for(r"\+monitor master|Address already in use")
            if "Address already in use" not in line:
                self.ports.append(port)
                self.procs.append(proc)
                self.logs.append(log)
                return
            proc.wait(timeout=10)
        raise AssertionError("three ports in a row were taken before a sentinel could bind one")

    def wait_until_replicated(self, timeout: float = 10.0) -> None:
        """Until the replica has applied everything the master has written (its offset in
        INFO replication: a condition Redis reports; WAIT only covers one connection's writes)."""
        master = redis.Redis(host="127.0.0.1", port=self.master.port)
        replica = redis.Redis(host="127.0.0.1", port=self.replica.port)
        deadline = time.monotonic() + timeout
        try:
            target = master.info("replication")["master_repl_offset"]
            while replica.info("replication")["slave_repl_offset"] < target:
                assert time.monotonic() < deadline, "the replica never caught up"
                time.sleep(0.01)
        finally:
            master.close()
            replica.close()

    def cut_replication(self, timeout: float = 10.0) -> None:
        """Break the replica's link to its master and keep it broken, the replica itself
        up and answering the sentinels: whatever the master acknowledges from now on, the
        replica never receives. The replica is told to log in to its master as a user that
        does not exist, so each reconnection is refused; then its link is closed."""
        replica = redis.Redis(host="127.0.0.1", port=self.replica.port)
        deadline = time.monotonic() + timeout
        try:
            replica.config_set("masteruser", "no-such-user")
            replica.config_set("masterauth", "no-such-password")
            replica.client_kill_filter(_type="master")
            while replica.info("replication")["master_link_status"] != "down":
                assert time.monotonic() < deadline, "the replica kept its link"
                time.sleep(0.01)
        finally:
            replica.close()

    def wait_for_failover(self, timeout: float = 30.0) -> None:
        """Until a sentinel has switched the service to the replica."""
        self.logs[0].wait_for(r"\+switch-master %s 127\.0\.0\.1 %d 127\.0\.0\.1 %d" % (
            SERVICE, self.master.port, self.replica.port), timeout=timeout)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        self.replica.stop()
        self.master.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
