"""`python -m examples.demo`: one cache stampede, read through refresher and through a
naive cache-aside (GET; on a miss query the origin and SET with a TTL), side by side.

It starts a redis-server on a free loopback port (or uses REFRESHER_REDIS_URL if that
answers) and `celery -A workers worker` for examples.loaders, then lets processes x threads
readers loose on a slow origin in two scenarios: a cold key that everybody misses at once,
and a few hot keys read for some seconds while their short TTL runs out again and again.
Origin calls are counted in Redis by the origin itself, tasks enqueued by each reader
process's Refresher.stats, worker results read from the worker's log. On the way out it
stops what it started and deletes every key it wrote (its namespace and queue are its own).
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import redis

from examples.services import Child, celery_worker, reachable, redis_server
from examples.traffic import Phase, Readers, getter

PROFILE_TTL = 2.0  # short, so that hot keys expire several times within a few seconds
QUERY_SECONDS = 0.2
HOT_USERS = (1, 2, 3, 4)
COLD_USER = 1001
WORKER_CONCURRENCY = 4
MODES = ("refresher", "naive")
SLOW = QUERY_SECONDS / 2  # a read this slow waited for the origin
TASK_DONE = r"refresher\.refresh\[[^\]]+\] succeeded in [^:]+: '(\w+)'"


@dataclass
class Outcome:
    """What one phase measured."""

    phase: Phase
    latencies: list[float]  # seconds, sorted
    errors: list[str]
    origin_calls: int
    enqueued: int
    worker_results: Counter[str]


class Progress:
    """One line rewritten in place on a terminal; only the finished lines elsewhere."""

    WIDTH = 100

    def __init__(self) -> None:
        self.live = sys.stdout.isatty()

    def tick(self, text: str) -> None:
        if self.live:
            sys.stdout.write("\r" + text.ljust(self.WIDTH)[: self.WIDTH])
            sys.stdout.flush()

    def done(self, text: str) -> None:
        print(("\r" if self.live else "") + text.ljust(self.WIDTH if self.live else 0), flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each hot-keys run (default 8, at most 60)")
    parser.add_argument("--processes", type=int, default=4, help="reader processes (default 4)")
    parser.add_argument("--threads", type=int, default=8, help="reader threads per process (default 8)")
    parser.add_argument("--events", action="store_true", help="start the worker with -E, for Flower to watch")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 60 or not 0 < args.processes <= 32 or not 0 < args.threads <= 64:
        parser.error("need 0 < --seconds <= 60, 0 < --processes <= 32, 0 < --threads <= 64")
    return args


def make_plan(seconds: float) -> list[Phase]:
    cold = [Phase("cold stampede", mode, (COLD_USER,), 0.0) for mode in MODES]
    hot = [Phase("hot keys", mode, HOT_USERS, seconds) for mode in MODES]
    return cold + hot


def shown(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname}:{parts.port or 6379}").geturl()


@contextmanager
def use_redis() -> Iterator[str]:
    """REFRESHER_REDIS_URL if it answers, else a redis-server of our own."""
    url = os.environ.get("REFRESHER_REDIS_URL")
    if url and reachable(url):
        print(f"redis: using {shown(url)} (REFRESHER_REDIS_URL)")
        yield url
        return
    if url:
        print(f"redis: {shown(url)} does not answer; starting a redis-server instead")
    with redis_server() as own:
        print(f"redis: started redis-server at {own}")
        yield own
    print("redis: stopped redis-server")


def demo_env(url: str, run: str) -> dict[str, str]:
    """What the readers, this process and the worker must agree on."""
    return {
        "REFRESHER_REDIS_URL": url,
        "REFRESHER_BROKER_URL": url,
        "REFRESHER_NAMESPACE": run,  # our own keys and queue: a shared Redis or worker is left alone
        "REFRESHER_QUEUE": run,
        "REFRESHER_LOADERS": "examples.loaders",
        "EXAMPLES_PROFILE_TTL": str(PROFILE_TTL),
        "EXAMPLES_QUERY_SECONDS": str(QUERY_SECONDS),
    }


def delete_keys(url: str, run: str) -> None:
    """This run's cache keys, its queue and kombu's bindings for it: all hold the run id."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"*{run}*", count=1000):
            client.delete(key)
    finally:
        client.close()


def warm(phase: Phase) -> None:
    """Load the hot keys once, together, before the clock starts."""
    get = getter(phase.mode)
    with ThreadPoolExecutor(len(phase.user_ids)) as pool:
        list(pool.map(get, phase.user_ids))


def worker_results(worker: Child) -> Counter[str]:
    return Counter(m.group(1) for m in worker.matches(TASK_DONE))


def run_phase(step: str, phase: Phase, readers: Readers, worker: Child, progress: Progress) -> Outcome:
    from examples.loaders import origin_calls  # imported once main has set the environment

    if phase.seconds:
        warm(phase)
    calls_before = origin_calls().get(phase.mode, 0)
    results_before = worker_results(worker)
    label = f"{step} {phase.title}, {phase.mode}"
    started = time.monotonic()

    def tick() -> None:
        calls = origin_calls().get(phase.mode, 0) - calls_before
        progress.tick(f"{label}: {time.monotonic() - started:4.1f}/{phase.seconds:g} s, origin calls {calls}")

    reports = readers.run(phase, tick)
    enqueued = sum(r.enqueued for r in reports)
    # The last tasks may still be running: their origin calls belong to this phase.
    worker.wait_for(TASK_DONE, count=sum(results_before.values()) + enqueued, timeout=10)
    outcome = Outcome(
        phase=phase,
        latencies=sorted(t for r in reports for t in r.latencies),
        errors=[e for r in reports for e in r.errors],
        origin_calls=origin_calls().get(phase.mode, 0) - calls_before,
        enqueued=enqueued,
        worker_results=worker_results(worker) - results_before,
    )
    progress.done(f"{label}: {time.monotonic() - started:.1f} s, {len(outcome.latencies)} reads, "
                  f"origin calls {outcome.origin_calls}, tasks enqueued {enqueued}")
    return outcome


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank: a value that was really measured."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency(seconds: float) -> str:
    ms = seconds * 1000
    return "-" if math.isnan(ms) else f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms"


def rows(outcome: Outcome) -> dict[str, str]:
    refresher = outcome.phase.mode == "refresher"
    results = ", ".join(f"{n} {what}" for what, n in sorted(outcome.worker_results.items())) or "none"
    cells = {
        "reads": str(len(outcome.latencies) + len(outcome.errors)),
        "origin calls": str(outcome.origin_calls),
        "tasks enqueued": str(outcome.enqueued) if refresher else "-",
        "worker results": results if refresher else "-",
        f"reads > {latency(SLOW)}": str(sum(1 for t in outcome.latencies if t > SLOW)),
        "read latency p50": latency(percentile(outcome.latencies, 0.50)),
        "read latency p99": latency(percentile(outcome.latencies, 0.99)),
    }
    if outcome.errors:
        cells["errors"] = str(len(outcome.errors))
    return cells


def table(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    readers = args.processes * args.threads
    titles = {
        "cold stampede": f"cold stampede: {readers} readers read one uncached key at the same moment",
        "hot keys": f"hot keys: {readers} readers, {len(HOT_USERS)} keys, {args.seconds:g} s, TTL {PROFILE_TTL:g} s",
    }
    lines = [f"{'':20}{'refresher':>20}{'naive':>20}"]
    for title, text in titles.items():
        by_mode = {o.phase.mode: rows(o) for o in outcomes if o.phase.title == title}
        lines.append(text)
        names = dict.fromkeys(name for cells in by_mode.values() for name in cells)
        for name in names:
            lines.append(f"  {name:18}" + "".join(f"{by_mode[m].get(name, '-'):>20}" for m in MODES))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[Outcome]:
    run_id = f"demo-{secrets.token_hex(4)}"
    plan = make_plan(args.seconds)
    progress = Progress()
    with ExitStack() as stack:
        url = stack.enter_context(use_redis())
        stack.callback(print, "stopped the worker and the readers, deleted this run's keys")  # runs after both
        env = demo_env(url, run_id)
        os.environ.update(env)  # before the readers are spawned and examples.loaders is imported
        stack.callback(delete_keys, url, run_id)
        readers = stack.enter_context(Readers(plan, args.processes, args.threads))
        worker = stack.enter_context(celery_worker(run_id, env, WORKER_CONCURRENCY, args.events))
        print(f"worker: celery -A workers worker is ready (REFRESHER_LOADERS=examples.loaders, queue {run_id})")
        outcomes = [run_phase(f"[{i}/{len(plan)}]", phase, readers, worker, progress)
                    for i, phase in enumerate(plan, 1)]
        print()
        print(table(outcomes, args))
        print()
        print("shutting down ...")
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"refresher demo: {args.processes} processes x {args.threads} threads, origin query "
          f"{QUERY_SECONDS * 1000:.0f} ms, TTL {PROFILE_TTL:g} s, refresh window 20%")
    outcomes = run(args)
    errors = [e for o in outcomes for e in o.errors]
    if errors:
        print(f"{len(errors)} reads failed; the first:\n{errors[0]}", file=sys.stderr)
        return 1
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
