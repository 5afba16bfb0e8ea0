"""A process under gevent's monkey-patching (run as `python -m tests.support.green URL`):
50 greenlets read through the near cache, another client's write is seen within 200 ms, a
read waiting on a load in flight is woken when the value lands, and a frozen Redis (the
test stops it once told) takes the tracker down within a second.
Prints one JSON line of what it saw."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402  (after patching, as gevent requires)
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from refresher import Refresher  # noqa: E402


def main(url: str) -> None:
    cache = Refresher(redis_url=url, near_cache=100, namespace="green")
    load = cache.loader(ttl=60, name="tests.green")(lambda n: {"n": n})
    seen: dict[str, object] = {"live": cache.tracker.wait_live(5)}
    readers = [gevent.spawn(lambda i=i: [load.get(i % 5) for _ in range(20)]) for i in range(50)]
    gevent.joinall(readers)
    seen["errors"] = [repr(g.exception) for g in readers if g.exception is not None]
    other = redis.Redis.from_url(url)
    load.set(0, {"n": 100})  # the write another client sees...
    other.delete(load.keys(0).value)  # ...and another client's, which only tracking reports
    started = time.monotonic()
    while load.get(0) != {"n": 0} and time.monotonic() - started < 1:
        gevent.sleep(0.001)
    seen["write_seen_after"] = time.monotonic() - started
    other.set(load.keys(9).lock, "another process", px=5000)  # a load in flight elsewhere...
    waiter = gevent.spawn(load.get, 9)  # ...which this read waits for, on the shared subscription
    gevent.sleep(0.2)
    started = time.monotonic()
    load.set(9, {"n": 99})  # its value lands, and wakes the waiter
    seen["waited_for"] = waiter.get(timeout=2)
    seen["woken_after"] = time.monotonic() - started
    seen["near_hits"] = cache.stats.snapshot().get("near_hit", 0)
    seen["waited"] = cache.stats.snapshot().get("waited", 0)
    print(json.dumps(seen), flush=True)
    sys.stdin.readline()  # the test has frozen the server
    started = time.monotonic()
    while cache.tracker.sync() and time.monotonic() - started < 5:
        gevent.sleep(0.01)
    print(json.dumps({"down_after": time.monotonic() - started}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
