"""What the benches of one cost on the hit path share (bench.metrics, bench.epochs): their
scale, the value read, the read loop, and the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, NamedTuple

from refresher.api.loader import Loader

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.95  # the throughput with the cost paid, over the throughput without it
VALUE = {"id": 1001, "name": "Ada Lovelace", "email": "ada@example.com", "tags": ["beta", "newsletter"]}


class Scale(NamedTuple):
    rounds: int
    reads: int  # per round and contender


FULL = Scale(rounds=100, reads=1000)  # many short rounds: a burst of other work falls on one round
QUICK = Scale(rounds=6, reads=200)


def profile(user_id: int) -> dict[str, Any]:
    return VALUE


def reads(loader: Loader[[int], Any], n: int) -> Callable[[], None]:
    """One contender's round: `n` hits of one fresh key."""
    def read() -> None:
        for _ in range(n):
            loader.get(1)

    return read


def arguments(prog: str, doc: str | None, argv: list[str] | None) -> tuple[argparse.Namespace, Scale, str]:
    """The parsed `--quick` and `--out`, the scale, and the command as the doc shows it."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmarks.md is (default: docs/)")
    args = parser.parse_args(argv)
    return args, QUICK if args.quick else FULL, prog + (" --quick" if args.quick else "")
