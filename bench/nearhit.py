"""`python -m bench.nearhit [--quick] [--before DIR] [--pairs N] [--out DIR]`: what a near hit
costs against a raw GET + json.loads (issue 23), by value kind, and a near-off hit beside them.

One thread, one redis-server on a free loopback port, the contenders in alternating rounds
(the first rotating), every ratio the median of the per-round ratios:

  raw: a GET + json.loads of the same ~300-byte JSON dict (bench/origin.py's RECORD) on a
      redis-py client with its defaults: the baseline;
  near hits (`Refresher(near_cache=10_000)`) of that dict, copied per hit, and of values
      handed out shared: a str, an int, a tuple, a frozen dataclass, a frozen msgspec Struct;
  a hit of the dict with the near cache off (`near=False`): one GET each.

Each measurement runs in a child process. `--before DIR` (an unpacked checkout of an earlier
commit, e.g. `git archive <commit> | tar -x -C DIR`) runs the same measurement on DIR's
refresher too, alternately with this tree's, `--pairs` times: before and after side by side.
A cProfile of near hits says where their time goes. The results go into docs/benchmarks.md
between `<!-- nearhit:start -->` and `<!-- nearhit:end -->`; a full `python -m bench` keeps them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

from bench.docs import NEARHIT_BEGIN, NEARHIT_END, write_section
from bench.nearhit_measure import FULL, KINDS, QUICK, Scale, measure
from bench.report import Table, Target

ROOT = Path(__file__).resolve().parents[1]
DICT_TARGET, SHARED_TARGET, OFF_TARGET = 20.0, 50.0, 1.05


def _child(code: str | None, quick: bool) -> dict[str, Any]:
    """One measurement in a child process. A run that fails is tried once more: on a busy
    machine the tracker may miss a PING deadline and bypass the near cache for a moment,
    which the child reports as a failure rather than as figures."""
    command = [sys.executable, "-m", "bench.nearhit", "--child"] + (["--quick"] if quick else [])
    for attempt in (1, 2):
        done = subprocess.run(command + (["--code", code] if code else []), cwd=ROOT, capture_output=True, text=True)
        if done.returncode == 0:
            break
        print(f"a measurement failed (attempt {attempt}): {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    else:
        raise RuntimeError(f"the measurement failed twice:\n{done.stderr[-3000:]}")
    out = done.stdout
    run = cast(dict[str, Any], json.loads(out.splitlines()[-1]))
    if Path(run["code"]).resolve() != Path(code or ROOT).resolve():
        raise RuntimeError(f"the child measured the refresher in {run['code']}, not {code or ROOT}")
    return run


def _ratios(run: dict[str, Any], clock: str = "wall") -> list[float]:
    """Each contender's throughput over raw's, the median of the per-round ratios."""
    return [statistics.median(r[0] / r[i] for r in run[clock]) for i in range(len(KINDS))]


def _us(run: dict[str, Any], i: int) -> float:
    return float(statistics.median(r[i] for r in run["wall"])) * 1e6


def tables(runs: list[tuple[str, dict[str, Any]]], scale: Scale) -> tuple[list[Table], str]:
    labels = sorted({label for label, _ in runs}, key=lambda label: label != "before")
    by_label = {label: [run for name, run in runs if name == label] for label in labels}
    results = Table(f"Near hit against a raw GET + json.loads: one thread, {scale.rounds} alternating rounds of "
                    f"{scale.memory_reads:,} reads (memory) or {scale.redis_reads:,} (Redis) per contender, "
                    f"{len(runs)} runs", ["read"] + [c for label in labels for c in (
                        f"{label}: µs per read", f"{label}: x raw, each run (wall)", f"{label}: x raw (client CPU)")],
                    notes=["x raw: the raw read's time over the contender's, the median of the per-round ratios "
                           "(above 1: faster than raw). Client CPU leaves out redis-server and waits for a CPU. "
                           "µs: the median over the runs of each run's median."])
    for i, (kind, _) in enumerate(KINDS):
        cells: list[object] = [kind]
        for label in labels:
            group = by_label[label]
            cells += [statistics.median(_us(run, i) for run in group),
                      " / ".join(f"{_ratios(run)[i]:.1f}" for run in group),
                      " / ".join(f"{_ratios(run, 'cpu')[i]:.1f}" for run in group)]
        results.add(*cells)
    summary = {label: _summary(group) for label, group in by_label.items()}
    dict_x, shared_x, off, _, _ = summary[labels[-1]]
    targets = Table(f"Targets (issue 23), {labels[-1]}: medians over its runs", ["target", "measured", "result"])
    for target in (Target("near", f"near hit, dict >= {DICT_TARGET:g}x raw", f"{dict_x:.1f}x", dict_x >= DICT_TARGET),
                   Target("near", f"near hit, shared values (the slowest kind) >= {SHARED_TARGET:g}x raw",
                          f"{shared_x:.1f}x", shared_x >= SHARED_TARGET),
                   Target("hit", f"hit with the near cache off <= {OFF_TARGET:g}x the time of raw", f"{off:.3f}x",
                          off <= OFF_TARGET)):
        targets.add(target.goal, target.measured, target.verdict)
    profiles = []
    for label in labels:
        for kind, parts in by_label[label][-1]["profile"].items():
            table = Table(f"Where a near hit of a {kind} goes, {label}: {scale.profiled:,} hits under cProfile",
                          ["function (its own code, cProfile's tottime)", "µs per hit (profiled)"])
            for name, us in parts:
                table.add(name, us)
            profiles.append(table)
    raws = {label: statistics.median(_us(run, 0) for run in group) for label, group in by_label.items()}
    return [targets, results, *profiles], _finding(summary, raws, by_label[labels[-1]][-1]["profile"]["str"])


def _summary(group: list[dict[str, Any]]) -> tuple[float, float, float, float, float]:
    """Medians over a tree's runs: x raw for the dict and the slowest shared kind, the
    near-off hit's time over raw's, and the dict's and the slowest shared kind's µs."""
    shared = range(2, len(KINDS) - 1)
    return (statistics.median(_ratios(run)[1] for run in group),
            min(statistics.median(_ratios(run)[i] for run in group) for i in shared),
            statistics.median(1 / _ratios(run)[-1] for run in group),
            statistics.median(_us(run, 1) for run in group),
            max(statistics.median(_us(run, i) for run in group) for i in shared))


def _finding(summary: dict[str, tuple[float, float, float, float, float]], raws: dict[str, float],
             profile: list[tuple[str, float]]) -> str:
    dict_x, shared_x, off, dict_us, shared_us = summary[list(summary)[-1]]
    now = (f"a near hit of the dict ran at {dict_x:.1f}x a raw GET + json.loads ({dict_us:.2f} µs), the slowest "
           f"shared kind at {shared_x:.1f}x ({shared_us:.2f} µs); a hit with the near cache off cost {off:.3f}x "
           "the raw read")
    if "before" in summary:
        b_dict, b_shared, b_off, b_dict_us, b_shared_us = summary["before"]
        now = (f"a near hit of the dict went from {b_dict:.1f}x to {dict_x:.1f}x a raw GET + json.loads "
               f"({b_dict_us:.2f} to {dict_us:.2f} µs), the slowest shared kind from {b_shared:.1f}x to "
               f"{shared_x:.1f}x ({b_shared_us:.2f} to {shared_us:.2f} µs); a hit with the near cache off cost "
               f"{b_off:.3f}x, then {off:.3f}x, the raw read")
    raw = " and ".join(f"{us:.1f} µs {label}" for label, us in raws.items())
    now += (f". The ratios move with the raw read's time, which the machine's other work sets (its median: {raw}); "
            "the µs per read compare the trees more fairly")
    total = dict(profile)["all of it"]
    others = sum(us for name, us in profile if name in ("tracking.py:sync", "stats.py:incr") or "epoll" in name)
    return (f"**Near hit (issue 23).** Medians over the runs, by wall time: {now}. Of a shared near hit's profiled "
            f"time, {others / total:.0%} is the tracker's sync (its epoll_wait included) and the stats counter "
            "(the profile tables).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nearhit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    parser.add_argument("--before", help="an unpacked checkout of an earlier commit to measure beside this tree")
    parser.add_argument("--before-label", help="what the docs call the --before tree (e.g. its commit)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each tree, alternately (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmarks.md is (default: docs/)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    if args.child:
        if args.code:
            sys.path.insert(0, args.code)  # before refresher is first imported
        import refresher

        print(json.dumps({**measure(scale), "code": str(Path(refresher.__file__).parent.parent)}))
        return 0
    started = time.monotonic()
    trees = [("before", args.before), ("after", None)] if args.before else [("this tree", None)]
    runs = [(label, _child(code, args.quick)) for _ in range(args.pairs) for label, code in trees]
    made, finding = tables(runs, scale)
    for table in made:
        print(table.text(), end="\n\n")
    print(finding)
    command = "python -m bench.nearhit" + (" --quick" if args.quick else "") + (
        f" --before {args.before} --pairs {args.pairs}" if args.before else f" --pairs {args.pairs}")
    loads = [load for _, run in runs for load in run["loads"]]
    from bench.codec import machine  # here: a child must import refresher from --code first
    facts = machine(command, runs[-1][1]["redis"], loads)
    if args.before:
        facts.append(("before", f"{args.before_label or args.before}: its refresher package, measured in turn "
                      "with this tree's"))
    body = "\n".join([
        "## Near hit: what a read from memory costs, by value kind (issue 23)", "",
        "Written by `python -m bench.nearhit` (the code is in `bench/nearhit.py`), apart from the full run. One "
        "thread reads one fresh key per contender through the public API, the contenders in alternating rounds; "
        "the baseline is a GET + json.loads of the same JSON dict on a default redis-py client. A dict is copied "
        "per near hit; the other kinds are immutable, so one object is handed out. Each run is a child process "
        "of its own.", "", "| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), "",
        *(part for table in made for part in (table.markdown(), "")), finding])
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_section(args.out, NEARHIT_BEGIN, NEARHIT_END, body)
    print(f"wrote the near-hit section of {path} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
