"""`python -m bench.coldab --before DIR [--before-label TEXT] [--rounds N] [--bench-runs N] [--out DIR]`:
the cold stampede's hand-off (issue 23), this tree's refresher against an earlier one, side by side.

A round runs one stampede per tree, in turn (the first alternating): 4 reader processes x 50
threads, started afresh for each stampede (a first read's connections and threads included,
as in the full run's table 1; each thread stays alive until all have read, as there),
released together, miss one key whose loader takes 200 ms (bench/origin.py's counted
origin). Per stampede: the p99 of the reads minus the load time, when the load began after
the release, and when the last read returned after the load ended. `DIR` is an unpacked
checkout of the earlier commit (`git archive <commit> | tar -x -C DIR`; copy this tree's
bench/readers.py into it to measure both with one harness); each reader process imports
refresher from its tree. With `--bench-runs N`, each tree's own `python -m bench --only cold
--quick` (table 1: the other strategies first, in the same long-lived reader processes) runs
N times too, the trees in turn, and its refresher rows are kept. The medians go into
docs/benchmarks.md between `<!-- coldab:start -->` and `<!-- coldab:end -->`; a full `python
-m bench` keeps them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench import origin
from bench.docs import COLDAB_BEGIN, COLDAB_END, write_section
from bench.machine import ROOT, describe
from bench.measure import latency_ms
from bench.workloads import COLD
from tests.support.servers import RedisServer

PROCESSES, THREADS = 4, 50
WAIT_S = 300  # for reader processes to start and report, on a machine this busy


def _child(code: str, key: str, job: str) -> None:
    """One reader process: its threads wait, are released at once, read `key` once each."""
    sys.path.insert(0, code)  # before refresher is first imported: the tree measured
    import refresher

    control = origin.control()
    cache = refresher.Refresher()

    @cache.loader(ttl=COLD.ttl, name="bench.coldab")
    def load(k: str) -> dict[str, Any]:
        return origin.fetch(COLD, k)

    cache.publisher.start()
    control.ping()
    go, all_read, leave, reads = threading.Event(), threading.Event(), threading.Event(), []

    def read() -> None:
        go.wait()
        started = time.time()
        try:
            load.get(key)
        except Exception as exc:
            reads.append((started, time.time(), repr(exc)))
        else:
            reads.append((started, time.time(), ""))
        if len(reads) == THREADS:
            all_read.set()
        leave.wait()  # alive until every process has read, as bench/readers.py's threads

    threads = [threading.Thread(target=read) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    control.rpush(f"coldab:ready:{job}", os.getpid())
    control.blpop([f"coldab:go:{job}"], WAIT_S)
    go.set()
    all_read.wait(WAIT_S)
    control.rpush(f"coldab:done:{job}", json.dumps({"reads": reads, "code": refresher.__file__}))
    control.blpop([f"coldab:leave:{job}"], WAIT_S)
    leave.set()
    for thread in threads:
        thread.join()


def _stampede(control: redis.Redis, code: Path, job: str) -> dict[str, float]:
    key = f"coldab-{job}"
    procs = [subprocess.Popen([sys.executable, "-m", "bench.coldab", "--child", str(code), key, job], cwd=ROOT)
             for _ in range(PROCESSES)]
    for _ in range(PROCESSES):
        if control.blpop([f"coldab:ready:{job}"], WAIT_S) is None:
            raise TimeoutError("a reader process never got ready")
    released = time.time()
    control.rpush(f"coldab:go:{job}", *range(PROCESSES))
    reads = []
    for _ in range(PROCESSES):
        done = control.blpop([f"coldab:done:{job}"], WAIT_S)
        if done is None:
            raise TimeoutError("a reader process never reported")
        report = json.loads(done[1])
        if not Path(report["code"]).is_relative_to(code):
            raise RuntimeError(f"a reader process measured {report['code']}, not the tree in {code}")
        reads += report["reads"]
    control.rpush(f"coldab:leave:{job}", *range(PROCESSES))
    for proc in procs:
        proc.wait()
    if errors := [error for _, _, error in reads if error]:
        raise RuntimeError(f"{len(errors)} reads failed, the first: {errors[0]}")
    (began, ended), *others = origin.call_times(COLD.series(key))
    if others:
        raise RuntimeError(f"{1 + len(others)} origin calls for one cold key")
    _, p99, _ = latency_ms([end - start for start, end, _ in reads])
    return {"p99 - load": p99 - COLD.delay * 1000, "load began": (began - released) * 1000,
            "last read after the load": (max(end for _, end, _ in reads) - ended) * 1000}


def _bench_rows(tree: Path) -> list[str]:
    """The refresher rows of table 1 from `python -m bench --only cold --quick` run in `tree`
    (as printed: strategy, origin calls, reads, errors, p50, p99, max, first load began, commands)."""
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "cold", "--quick"], cwd=tree,
                          capture_output=True, text=True, timeout=WAIT_S)
    if done.returncode != 0:
        raise RuntimeError(f"the bench in {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    rows = [line for line in done.stdout.splitlines() if line.startswith("refresher (")]
    return ["| " + " | ".join(re.split(r"\s{2,}", row.strip())) + " |" for row in rows]


def _section(runs: dict[str, list[dict[str, float]]], facts: list[tuple[str, str]],
             bench: list[tuple[str, int, str]]) -> str:
    rows = []
    for tree, stampedes in runs.items():
        cells = [f"{statistics.median(s[what] for s in stampedes):.1f}" for what in stampedes[0]]
        each = ", ".join(f"{s['p99 - load']:.0f}" for s in stampedes)
        rows.append(f"| {tree} | {' | '.join(cells)} | {each} |")
    return "\n".join([
        "## Cold stampede hand-off, before and after (issue 23)", "",
        "Written by `python -m bench.coldab` (the code is in `bench/coldab.py`), apart from the full run: 4 reader "
        f"processes x {THREADS} threads, started afresh for each stampede, miss one key whose loader takes "
        f"{COLD.delay * 1000:.0f} ms; the two trees in turn, round after round. Medians over the rounds, in ms: the "
        "reads' p99 minus the load time (the target is 10 ms or less), when the one load began after the release, "
        "when the last read returned after the load ended. A reader thread stays alive until every process has "
        "read, in both trees' runs (the earlier tree was given this tree's bench/readers.py), as a server's pooled threads do (bench/readers.py says why); before 07e3e56 "
        "each thread ended after its read, and 200 thread ends were counted in the latencies of the reads still "
        "being woken.", "",
        "| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), "",
        "| tree | p99 - load | load began | last read after the load | p99 - load, each round |",
        "|---|---:|---:|---:|---|", *rows,
        *(["", f"The full bench's table 1 (`python -m bench --only cold --quick`: 4 processes x {THREADS} threads, "
            f"{COLD.delay * 1000:.0f} ms load) in each tree, the trees in turn; its target is refresher (Window)'s "
            "p99 minus the load time at 10 ms or less.", "",
            "| tree | run | strategy | origin calls | reads | errors | p50 ms | p99 ms | max ms | first load began ms "
            "| Redis commands |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(f"| {tree} | {n} {row}" for tree, n, row in bench), "", _bench_medians(bench)] if bench else [])])


def _bench_medians(bench: list[tuple[str, int, str]]) -> str:
    """Each strategy's median p99 minus the load time over the bench runs, by tree."""
    p99s: dict[tuple[str, str], list[float]] = {}
    for tree, _, row in bench:
        cells = [cell.strip() for cell in row.strip("| ").split("|")]
        p99s.setdefault((cells[0], tree), []).append(float(cells[5].replace(",", "")) - COLD.delay * 1000)
    return "Median p99 minus the load time over those runs: " + "; ".join(
        f"{strategy}, {tree}: {statistics.median(values):.1f} ms" for (strategy, tree), values in sorted(p99s.items())) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="an unpacked checkout of an earlier commit")
    parser.add_argument("--before-label", help="what the docs call the --before tree (e.g. its commit)")
    parser.add_argument("--rounds", type=int, default=12, help="stampedes of each tree, in turn (default 12)")
    parser.add_argument("--bench-runs", type=int, default=0, help="runs of each tree's full cold scenario (default 0)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmarks.md is (default: docs/)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    trees = {"before": args.before, "after": ROOT} if args.before else {"this tree": ROOT}
    server = RedisServer()
    server.start()
    os.environ["REFRESHER_REDIS_URL"] = server.url
    load_at_start = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
    try:
        control = origin.control()
        for n in range(args.rounds):
            for tree in list(trees)[:: 1 if n % 2 == 0 else -1]:
                runs[tree].append(_stampede(control, trees[tree], f"{n}-{tree.replace(' ', '-')}"))
                print(f"round {n} {tree}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in runs[tree][-1].items()),
                      flush=True)
        command = "python -m bench.coldab" + (f" --before {args.before}" if args.before else "") + \
            f" --rounds {args.rounds} --bench-runs {args.bench_runs}"
        facts = describe(control, command, load_at_start)
    finally:
        server.stop()
    bench = [(tree, n + 1, row) for n in range(args.bench_runs)
             for tree in list(trees)[:: 1 if n % 2 == 0 else -1] for row in _bench_rows(trees[tree])]
    ended = f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"  # the bench runs included
    facts = [(what, ended if what.startswith("load average") else value) for what, value in facts]
    if args.before:
        facts.append(("before", f"{args.before_label or args.before}: its refresher package, in turn with this tree's"))
    body = _section(runs, facts, bench)
    print(body)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"wrote the cold hand-off section of {write_section(args.out, COLDAB_BEGIN, COLDAB_END, body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
