"""A real Redis Cluster on loopback for the tests: 3 masters with 1 replica each, made by
`redis-cli --cluster create`, as an operator would."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis
import redis.cluster

from tests.support.servers import RedisServer, free_port


class RedisClusterServers:
    def __init__(self, masters: int = 3, replicas: int = 1, binary: str = "redis-server", bus_option: bool = True) -> None:
        """`bus_option`: the server has --cluster-port (Redis 7.0), which puts each node's bus
        on a free port of its own; before 7.0 the bus is the port + 10000."""
        self.dir = tempfile.mkdtemp(prefix="refresher-cluster-")
        self.nodes = [
            RedisServer(None if bus_option else _port_and_bus(), "--cluster-enabled", "yes", "--cluster-node-timeout",
                        "1000", "--dir", self.dir, "--repl-diskless-sync-delay", "0", binary=binary)
            for _ in range(masters * (1 + replicas))
        ]
        self.replicas = replicas
        for node in self.nodes:
            node.extra += ["--cluster-config-file", f"nodes-{node.port}.conf"]
            node.extra += ["--cluster-port", str(free_port())] if bus_option else []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])

    def start(self, timeout: float = 30.0) -> None:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas),
                 "--cluster-yes"],
                check=True, capture_output=True, text=True, timeout=timeout,
            )
            self.wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise

    def wait_until_ok(self, timeout: float) -> None:
        """Until every live node reports the cluster ok and every replica has synced with
        its master (a replica that never synced cannot be promoted). Conditions Redis
        reports; the nodes agree over their bus within about a second."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.proc is None:
                continue
            client = redis.Redis(host="127.0.0.1", port=node.port)
            try:
                while not self._ready(client):
                    assert time.monotonic() < deadline, f"cluster not ready on {node.port}"
                    time.sleep(0.05)
            finally:
                client.close()

    @staticmethod
    def _ready(client: redis.Redis) -> bool:
        if client.cluster("info").get("cluster_state") != "ok":
            return False
        replication = client.info("replication")
        return replication["role"] == "master" or replication.get("master_link_status") == "up"

    def master_of(self, key: str) -> RedisServer:
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=self.nodes[0].port)
        try:
            node = client.get_node_from_key(key)
            return next(n for n in self.nodes if n.port == node.port)
        finally:
            client.close()

    def replica_of(self, master: RedisServer) -> RedisServer:
        client = redis.Redis(host="127.0.0.1", port=master.port)
        try:
            port = client.info("replication")["slave0"]["port"]
            return next(n for n in self.nodes if n.port == port)
        finally:
            client.close()

    def state(self, node: RedisServer) -> str:
        """The cluster's state as `node` sees it: "ok", or "fail" while slots are uncovered."""
        client = redis.Redis(host="127.0.0.1", port=node.port)
        try:
            return str(client.cluster("info")["cluster_state"])
        finally:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_and_bus() -> int:
    """A free port whose bus port (+ 10000, at most 65535) is free too, for a Redis before 7.0."""
    while True:
        with socket.socket() as server, socket.socket() as bus:
            server.bind(("127.0.0.1", 0))
            port = int(server.getsockname()[1])
            if port + 10000 > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port
