"""gevent and eventlet: a monkey-patched client (patched before anything imports socket, in
a process of its own, as a green app starts), with the near cache off and on; a frozen
Redis failing a read within the socket timeout (a green socket is non-blocking, so only
Python's own timeout can bound it); and `-P gevent` / `-P eventlet` workers refreshing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid

import pytest
import redis

from tests.support import loaders
from tests.support.ageing import into_window
from tests.support.servers import ROOT, RedisServer, WorkerProcess

LIBRARIES = ["gevent", "eventlet"]
SOCKET_TIMEOUT = 0.5
PATCH = {"gevent": "from gevent import monkey; monkey.patch_all()",
         "eventlet": "import eventlet; eventlet.monkey_patch()"}
SPAWN = {"gevent": "import gevent; spawn, joinall = gevent.spawn, lambda gs: gevent.joinall(gs)",
         "eventlet": "import eventlet; spawn, joinall = eventlet.spawn, lambda gs: [g.wait() for g in gs]"}
CLIENT = '''
import json, sys, time
from refresher import CacheUnavailable, Refresher
cache = Refresher(sys.argv[1], socket_timeout={timeout}, near_cache=int(sys.argv[2]))

@cache.loader(ttl=60, name="green.square")
def square(n: int) -> int:
    return n * n
'''
READERS = '''
errors = []
def read(g):
    for i in range(20):
        try:
            assert square.get(i % 5) == (i % 5) ** 2
        except Exception as exc:
            errors.append(repr(exc))
joinall([spawn(read, g) for g in range(50)])
print(json.dumps({{"errors": errors, "connection": cache.redis.connection_pool.connection_class.__name__}}))
'''
FROZEN = '''
assert square.get(3) == 9
print("warm", flush=True)
sys.stdin.readline()  # the test froze the server
started = time.perf_counter()
try:
    square.get(3)
    outcome = "served"
except CacheUnavailable:
    outcome = "unavailable"
print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - started}}), flush=True)
'''


def script(library: str, body: str) -> str:
    return "\n".join([PATCH[library], SPAWN[library], CLIENT.format(timeout=SOCKET_TIMEOUT), body.format()])


def green(library: str, body: str, url: str, near: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script(library, body), url, str(near)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.standalone_only
@pytest.mark.parametrize("near", [0, 1000], ids=["near-off", "near-on"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_fifty_greenlets_read_without_an_error(library: str, near: int, own_redis: RedisServer) -> None:
    out, err = green(library, READERS, own_redis.url, near).communicate(timeout=60)
    assert out, err
    report = json.loads(out.splitlines()[-1])
    assert report["errors"] == []
    assert report["connection"] == "Connection"  # redis-py's own: Python's timeouts, which green sockets keep


@pytest.mark.standalone_only
@pytest.mark.parametrize("library", LIBRARIES)
def test_a_read_against_a_frozen_redis_fails_within_the_socket_timeout(library: str, own_redis: RedisServer) -> None:
    proc = green(library, FROZEN, own_redis.url, 0)
    assert proc.stdout is not None and proc.stdin is not None and own_redis.proc is not None
    try:
        assert proc.stdout.readline().strip() == "warm"
        own_redis.proc.send_signal(signal.SIGSTOP)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=30)
    finally:
        own_redis.proc.send_signal(signal.SIGCONT)
        proc.kill()
    report = json.loads(out.splitlines()[-1]) if out else {"err": err}
    assert report.get("outcome") == "unavailable", report
    assert SOCKET_TIMEOUT * 0.9 <= report["seconds"] < 2 * SOCKET_TIMEOUT


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_green_worker_refreshes(library: str, redis_url: str, r: redis.Redis) -> None:
    worker = WorkerProcess(redis_url, pool=library, concurrency=4).start()
    try:
        n = uuid.uuid4().int % 10**9
        before = loaders.calls("windowed")
        loaders.windowed.get(n)
        into_window(r, loaders.windowed.keys(n))
        loaders.windowed.get(n)  # served, and a refresh asked for
        assert worker.log is not None
        worker.log.wait_for(r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'", timeout=30)
        assert loaders.calls("windowed") == before + 2  # the miss here, the refresh there
    finally:
        worker.discard()
