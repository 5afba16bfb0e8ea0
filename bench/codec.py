"""`python -m bench.codec [--quick] [--out DIR]`: issue 8's codec targets, in one run.

The same data, cached through the public API by five loaders that differ only in what
their values are and how the bytes decode:

  (1) a plain dict, with the stdlib codec every loader used before issue 8 (`codec=JsonCodec()`);
  (2) the same plain dict with today's default, msgspec typed by `-> dict[str, Any]`;
  (3) the same data as a frozen dataclass (`-> User`, default codec);
  (4) the same as a frozen msgspec.Struct;
  (5) for reference, a frozen dataclass with the README's field types (UUID, date, Enum,
      datetime) for the same JSON.

All five store byte-for-byte the same JSON payload (checked before timing). Measured on
one redis-server started on a free loopback port: a hit (`load.get(k)` and
`await load.aget(k)` on a warm key), a load (the key absent, the loader returning at once,
so the codec's `round_trip` shows), and the codecs alone without Redis. Contenders run in
alternating rounds, the first rotating, so machine noise falls on all alike; ratios are
medians of per-round ratios. The results go into docs/benchmarks.md between
`<!-- codec:start -->` and `<!-- codec:end -->`, leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import functools
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Sequence, cast
from uuid import UUID

import msgspec

import refresher
from bench.measure import median_ratio, median_seconds
from bench.report import Table, fmt
from refresher.core.envelope import Envelope
from refresher.api.loader import Loader
from tests.support.servers import RedisServer

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- codec:start -->"
END = "<!-- codec:end -->"
TITLE = "Codecs: a hit and a load of the same data as a dict, a dataclass, a Struct (issue 8)"
TTL = 3600.0  # far from the refresh window: every hit is a plain hit, nothing is published


# -- the data -------------------------------------------------------------------------


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    country: str
    postcode: str


@dataclass(frozen=True)
class Order:
    id: int
    total: float
    items: int
    placed: str


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    joined: str
    tier: str
    active: bool
    score: float
    tags: tuple[str, ...]
    address: Address
    orders: tuple[Order, ...]
    nickname: str | None = None


class AddressStruct(msgspec.Struct, frozen=True):
    street: str
    city: str
    country: str
    postcode: str


class OrderStruct(msgspec.Struct, frozen=True):
    id: int
    total: float
    items: int
    placed: str


class UserStruct(msgspec.Struct, frozen=True):
    id: str
    name: str
    email: str
    joined: str
    tier: str
    active: bool
    score: float
    tags: tuple[str, ...]
    address: AddressStruct
    orders: tuple[OrderStruct, ...]
    nickname: str | None = None


@dataclass(frozen=True)
class RichOrder:
    id: int
    total: float
    items: int
    placed: datetime


@dataclass(frozen=True)
class RichUser:
    """The README's kind of value: the same JSON, decoded into UUID, date, Enum, datetime."""

    id: UUID
    name: str
    email: str
    joined: date
    tier: Tier
    active: bool
    score: float
    tags: tuple[str, ...]
    address: Address
    orders: tuple[RichOrder, ...]
    nickname: str | None = None


PLAIN: dict[str, Any] = {
    "id": "6f1c2d3e-8a4b-4c5d-9e6f-7a8b9c0d1e2f",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "joined": "2021-03-14",
    "tier": "pro",
    "active": True,
    "score": 87.5,
    "tags": ["beta", "newsletter", "mobile"],
    "address": {"street": "12 Analytical Row", "city": "London", "country": "GB", "postcode": "N1 9GU"},
    "orders": [
        {"id": 1000 + i, "total": total, "items": i + 1, "placed": f"2024-05-0{i + 1}T10:15:00Z"}
        for i, total in enumerate((19.99, 5.0, 120.5, 42.25, 7.75))
    ],
    "nickname": None,
}
PAYLOAD = msgspec.json.encode(PLAIN)
USER = msgspec.json.decode(PAYLOAD, type=User)
USER_STRUCT = msgspec.json.decode(PAYLOAD, type=UserStruct)
RICH_USER = msgspec.json.decode(PAYLOAD, type=RichUser)


# The origins: each returns at once. Module-level functions, so building the loaders again
# (a second run in one process) registers the same functions under the same names.
def plain_json(user_id: int) -> dict[str, Any]:
    return PLAIN


def plain(user_id: int) -> dict[str, Any]:
    return PLAIN


def user(user_id: int) -> User:
    return USER


def user_struct(user_id: int) -> UserStruct:
    return USER_STRUCT


def rich_user(user_id: int) -> RichUser:
    return RICH_USER


@dataclass(frozen=True)
class Variant:
    key: str  # "(1)" ...
    label: str  # short, for the tables; the docs' list says what each one is
    loader: Loader[[int], Any]
    expect: type


def variants(cache: refresher.Refresher) -> list[Variant]:
    def make(fn: Callable[[int], Any], **options: Any) -> Loader[[int], Any]:
        return cache.loader(ttl=TTL, name=f"bench.codec.{fn.__name__}", **options)(fn)

    return [
        Variant("(1)", "dict, JsonCodec (before issue 8)", make(plain_json, codec=refresher.JsonCodec()), dict),
        Variant("(2)", "dict, default (`-> dict[str, Any]`)", make(plain), dict),
        Variant("(3)", "frozen dataclass (`-> User`)", make(user), User),
        Variant("(4)", "frozen Struct (`-> UserStruct`)", make(user_struct), UserStruct),
        Variant("(5)", "dataclass, UUID/date/Enum/datetime", make(rich_user), RichUser),
    ]


# -- scale, timing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    # Many short rounds rather than a few long ones: a burst of the machine's other work
    # spoils a few rounds, and the medians step over them.
    # About 30 s of CPU in all: under a minute even with the 2-CPU machine's load at 4.
    rounds: int = 60  # alternating rounds, for every measurement
    hits: int = 400  # sync hits per contender per round
    ahits: int = 200  # awaited hits per contender per round
    loads: int = 20  # loads per contender per round
    decodes: int = 1000  # decodes (no Redis) per contender per round
    stores: int = 250  # store steps (round_trip or encode, no Redis) per contender per round


FULL = Scale()
QUICK = Scale(rounds=4, hits=100, ahits=50, loads=10, decodes=200, stores=50)

Rounds = list[list[float]]  # seconds, one row per round, the contenders in order


@dataclass(frozen=True)
class Timing:
    """One measurement: each contender's wall time and this process's CPU time, per round,
    for `per_round` operations. CPU time leaves out redis-server and the time the process
    waited for a CPU, so it shows the client's own cost even on a busy machine."""

    wall: Rounds
    cpu: Rounds
    per_round: int

    def us(self, i: int, cpu: bool = False) -> float:
        return median_seconds(self.cpu if cpu else self.wall, i) / self.per_round * 1e6

    def ratio(self, i: int, base: int = 0, cpu: bool = False) -> float:
        """Contender i's throughput over `base`'s: the median of the per-round ratios."""
        return median_ratio(self.cpu if cpu else self.wall, a=i, b=base)

    def quartiles(self, i: int, base: int = 0, cpu: bool = False) -> str:
        """The spread of the per-round ratios: how far to trust the median."""
        ratios = [r[base] / r[i] for r in (self.cpu if cpu else self.wall)]
        if len(ratios) < 2:
            return "—"
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        return f"{q1:.2f} – {q3:.2f}"

    def not_slower(self, i: int, base: int = 0, cpu: bool = False) -> str:
        rounds = self.cpu if cpu else self.wall
        return f"{sum(r[i] <= r[base] for r in rounds)}/{len(rounds)}"


def alternate(contenders: Sequence[Callable[[], object]], rounds: int, per_round: int) -> Timing:
    """bench.measure.alternating, timing CPU as well: each contender once per round, the
    first rotating, so drift and noisy neighbours fall on all of them alike."""
    wall: Rounds = []
    cpu: Rounds = []
    for i in range(rounds):
        w, c = [0.0] * len(contenders), [0.0] * len(contenders)
        for j in range(len(contenders)):
            k = (i + j) % len(contenders)
            c0, w0 = time.process_time(), time.perf_counter()
            contenders[k]()
            w[k], c[k] = time.perf_counter() - w0, time.process_time() - c0
        wall.append(w)
        cpu.append(c)
    return Timing(wall, cpu, per_round)


@dataclass
class Measured:
    hit: Timing
    ahit: Timing
    load: Timing
    decode: Timing
    store: Timing
    loads: list[float]  # the 1-minute load average, sampled between phases


# -- the run --------------------------------------------------------------------------


def check(vs: Sequence[Variant], loop: asyncio.AbstractEventLoop) -> None:
    """Before timing: each loader loads, then hits (sync and async), the value it should,
    and all of them stored the very same payload bytes."""
    payloads = set()
    for v in vs:
        loaded = v.loader.get(1)
        for hit in (v.loader.get(1), loop.run_until_complete(v.loader.aget(1))):
            if type(hit) is not v.expect or hit != loaded:
                raise AssertionError(f"{v.key}: a hit returned {type(hit).__name__} {hit!r}, loaded {loaded!r}")
        raw = cast(bytes, v.loader.cache.redis.get(v.loader.keys(1).value))
        payloads.add(Envelope.from_bytes(raw).payload)
    if payloads != {PAYLOAD}:
        raise AssertionError(f"the variants stored different payloads: {sorted(payloads)}")


def _repeat(n: int, call: Callable[[], object]) -> Callable[[], None]:
    def calls() -> None:
        for _ in range(n):
            call()

    return calls


def _arepeat(loop: asyncio.AbstractEventLoop, n: int, call: Callable[[], Awaitable[object]]) -> Callable[[], None]:
    async def calls() -> None:
        for _ in range(n):
            await call()

    return lambda: loop.run_until_complete(calls())


def _loads(n: int, loader: Loader[[int], Any], ids: Iterator[int]) -> Callable[[], None]:
    def loads() -> None:
        for _ in range(n):
            loader.get(next(ids))  # a key never read before: a miss, a load, a write

    return loads


def measure(vs: Sequence[Variant], s: Scale, loop: asyncio.AbstractEventLoop) -> Measured:
    loads = [os.getloadavg()[0]]
    hit = alternate([_repeat(s.hits, functools.partial(v.loader.get, 1)) for v in vs], s.rounds, s.hits)
    loads.append(os.getloadavg()[0])
    ahit = alternate([_arepeat(loop, s.ahits, functools.partial(v.loader.aget, 1)) for v in vs], s.rounds, s.ahits)
    loads.append(os.getloadavg()[0])
    ids = itertools.count(1_000)
    load = alternate([_loads(s.loads, v.loader, ids) for v in vs], s.rounds, s.loads)
    loads.append(os.getloadavg()[0])
    decode = alternate([_repeat(s.decodes, functools.partial(v.loader.state.codec.decode, PAYLOAD)) for v in vs],
                       s.rounds, s.decodes)
    # What a load does with the value before writing it (LoaderState.encode): round_trip (encode,
    # decode, compare) for the default codec, encode alone for JsonCodec, which has no round_trip.
    store = alternate([_repeat(s.stores, functools.partial(v.loader.state.encode, v.loader.fn(1))) for v in vs],
                      s.rounds, s.stores)
    loads.append(os.getloadavg()[0])
    return Measured(hit, ahit, load, decode, store, loads)


# -- tables ---------------------------------------------------------------------------


def _path_table(title: str, vs: Sequence[Variant], t: Timing, what: str) -> Table:
    table = Table(title, ["value", f"µs per {what}", f"{what}s/s", "× (1)", f"client CPU µs per {what}", "× (1) by CPU"])
    for i, v in enumerate(vs):
        wall = t.us(i)
        table.add(f"{v.key} {v.label}", wall, 1e6 / wall, t.ratio(i), t.us(i, cpu=True), t.ratio(i, cpu=True))
    return table


def tables(vs: Sequence[Variant], m: Measured, s: Scale) -> tuple[Table, list[Table], list[str]]:
    """The target, the results, and the findings in words."""
    hits = _path_table(f"Hit, `get`: a warm key, {s.rounds} alternating rounds of {s.hits:,} hits per value",
                       vs, m.hit, "hit")
    hits.notes.append("× (1): throughput against (1), the median of the per-round ratios (above 1: faster than (1)). "
                      "Client CPU: this process's CPU time (redis-server's is not in it).")
    ahits = _path_table(f"Hit, `await aget`: the same keys, one task, {s.rounds} alternating rounds of {s.ahits:,} "
                        "hits per value", vs, m.ahit, "hit")
    load = _path_table(f"Load: the key absent, the loader returning at once, {s.rounds} alternating rounds of "
                       f"{s.loads:,} loads per value (a miss, the lock, the origin, `round_trip` or `encode`, "
                       "the write)", vs, m.load, "load")

    pure = Table(
        f"The codec alone, no Redis: the same {len(PAYLOAD)}-byte payload, {s.rounds} alternating rounds "
        f"of {s.decodes:,} decodes and {s.stores:,} store steps per value",
        ["value", "codec", "µs per decode", "× (1)", "µs per store step", "× (1) "],
    )
    for i, v in enumerate(vs):
        step = "round_trip" if hasattr(v.loader.state.codec, "round_trip") else "encode"
        pure.add(f"{v.key} {v.label}", type(v.loader.state.codec).__name__, m.decode.us(i), m.decode.ratio(i),
                 f"{fmt(m.store.us(i))} ({step})", m.store.ratio(i))
    pure.notes.append("Decode: what a hit does with the payload. Store step: what a load does with the value before "
                      "writing it (`LoaderState.encode`): `round_trip` (encode, decode, compare) for the default codec, "
                      "`encode` alone for JsonCodec, which has no round_trip.")

    targets = Table("Target (issue 8): a hit of an annotated dataclass value is no slower than today's hit of the "
                    "same data as a plain dict",
                    ["comparison", "measure", "throughput ratio (median of rounds)", "per-round ratios, quartiles",
                     "rounds (3) not slower", "result"])
    rows: list[tuple[str, Timing, int]] = [("`get`: (3) dataclass vs (1) dict, JsonCodec", m.hit, 0),
                                          ("`aget`: (3) dataclass vs (1) dict, JsonCodec", m.ahit, 0),
                                          ("`get`: (3) dataclass vs (2) dict, default (reference)", m.hit, 1),
                                          ("`aget`: (3) dataclass vs (2) dict, default (reference)", m.ahit, 1)]
    for name, t, base in rows:
        for cpu in (False, True):
            ratio = t.ratio(2, base, cpu)
            result = ("MET" if ratio >= 1.0 else "MISSED") if base == 0 else "—"
            targets.add(name, "client CPU" if cpu else "wall time", f"{ratio:.2f}×", t.quartiles(2, base, cpu),
                        t.not_slower(2, base, cpu), result)
    targets.notes.append("The verdict is the first row: a sync hit's wall time, MET when the median over rounds of "
                         "(1)'s time / (3)'s time is at least 1.00. The other rows say how firmly it holds.")

    g, a = [m.hit.us(i) for i in range(len(vs))], [m.ahit.us(i) for i in range(len(vs))]
    d, st = [m.decode.us(i) for i in range(len(vs))], [m.store.us(i) for i in range(len(vs))]
    findings = [
        f"- A `get` hit of the frozen dataclass (3) took {g[2]:.1f} µs against {g[0]:.1f} µs for the plain dict with "
        f"JsonCodec (1): {m.hit.ratio(2):.2f}× the throughput ({m.hit.ratio(2, cpu=True):.2f}× by client CPU). "
        f"Against today's plain dict (2, {g[1]:.1f} µs) it is {m.hit.ratio(2, 1):.2f}× "
        f"({m.hit.ratio(2, 1, cpu=True):.2f}× by CPU). The Struct (4) is {m.hit.ratio(3):.2f}× (1).",
        f"- The decode alone (no Redis) is {d[0]:.1f} µs for (1), {d[1]:.1f} µs for (2), {d[2]:.1f} µs for (3) and "
        f"{d[3]:.1f} µs for (4): decoding (3) instead of (1) changes a hit by {d[2] - d[0]:+.1f} µs out of (1)'s "
        f"{g[0]:.1f} µs; the rest of a hit is the Redis round trip, the envelope and the key, the same for all. "
        f"An `aget` hit costs about {a[0]:.0f} µs, so the codec's share of it is smaller still.",
        f"- A load pays `round_trip` (encode, decode, compare the value field by field): {st[2]:.1f} µs for (3) "
        f"and {st[1]:.1f} µs for (2), against {st[0]:.1f} µs for (1)'s encode alone. That is {st[2] - st[0]:+.1f} µs "
        f"for (3), {(st[2] - st[0]) / m.load.us(0):.1%} of (1)'s {m.load.us(0):.0f} µs load (the lock, the write and "
        f"the wake-up dominate). For scale, the per-round load ratios of (3) to (1) have quartiles "
        f"{m.load.quartiles(2)}.",
        f"- The README's kind of dataclass (5: UUID, date, Enum, datetime fields, the same JSON) decodes in "
        f"{d[4]:.1f} µs, and a `get` hit of it is {m.hit.ratio(4):.2f}× (1).",
    ]
    return targets, [hits, ahits, load, pure], findings


# -- the docs -------------------------------------------------------------------------


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "refresher", "workers", "bench/codec.py"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + (" (refresher/, workers/ or bench/codec.py modified)" if dirty.stdout.strip() else "")


def machine(command: str, redis_version: str, loads: Sequence[float]) -> list[tuple[str, str]]:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
                 platform.processor() or "unknown")
    return [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("command", f"`{command}`"),
        ("CPUs (nproc)", str(os.cpu_count())),
        ("CPU model", model),
        ("Python", platform.python_version()),
        ("Redis server", redis_version),
        ("redis-py / hiredis / msgspec", " / ".join(_version(p) for p in ("redis", "hiredis", "msgspec"))),
        ("load average (1 min) at start / end", f"{loads[0]:.2f} / {loads[-1]:.2f}"),
        ("load average (1 min) between phases, min / max", f"{min(loads):.2f} / {max(loads):.2f}"),
        ("refresher commit", _commit()),
    ]


def versus(title: str, label: str, names: Sequence[str], timing: Timing, target: float) -> Table:
    """Each contender's hits against the first's (`names[0]`, the baseline), by wall time and
    by this process's CPU time; the wall ratio is held to `target` (throughput, >= target)."""
    base = names[0]
    table = Table(title, [label, "clock", "µs per hit", f"throughput vs {base} (median of rounds)",
                          "quartiles of the per-round ratios", f"rounds not slower than {base}", "target"])
    for i, name in enumerate(names):
        for cpu in (False, True):
            ratio = timing.ratio(i, 0, cpu)
            verdict = "—" if i == 0 or cpu else ("MET" if ratio >= target else "MISSED") + f" (>= {target})"
            table.add(name, "client CPU" if cpu else "wall", f"{timing.us(i, cpu):.1f}", f"{ratio:.3f}x",
                      timing.quartiles(i, 0, cpu), timing.not_slower(i, 0, cpu), verdict)
    return table


def own_section(heading: str, about: str, facts: Sequence[tuple[str, str]], table: Table) -> str:
    """A benchmarks.md section of its own: what it measured, on which machine, the table."""
    return "\n".join([heading, "", about, "", "| what | value |", "|---|---|",
                      *(f"| {k} | {v} |" for k, v in facts), "", table.markdown()])


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _version(package: str) -> str:
    try:
        return version(package)
    except Exception:
        return "—"


def section(facts: Sequence[tuple[str, str]], targets: Table, results: Sequence[Table], findings: Sequence[str]) -> str:
    parts = [
        f"## {TITLE}", "",
        "Written by `python -m bench.codec` (the code is in `bench/codec.py`), apart from the full run, with its own "
        "machine, date and commit. One redis-server on a free 127.0.0.1 port; five loaders that differ only in "
        "their values and codec, every one storing byte-for-byte the same JSON payload (checked before timing):",
        "",
        "- (1) a plain dict, `codec=refresher.JsonCodec()`: the stdlib json codec every loader used before issue 8;",
        "- (2) the same dict with today's default codec, msgspec typed by the annotation `-> dict[str, Any]`;",
        "- (3) the same data as a frozen dataclass (`-> User`, nested frozen dataclasses, tuples), default codec;",
        "- (4) the same as a frozen `msgspec.Struct`, default codec;",
        "- (5) for reference, a frozen dataclass whose fields are UUID, date, Enum and datetime, like the README's.",
        "",
        "Contenders run in alternating rounds, the one that goes first rotating, so the machine's other work "
        "falls on all of them alike; µs are medians over rounds, ratios are medians of per-round ratios. A full "
        "`python -m bench` rewrites this file without this section: run `python -m bench.codec` after it.",
        "",
        "| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in facts), "",
        targets.markdown(), "", *(part for table in results for part in (table.markdown(), "")), *findings,
    ]
    return "\n".join(parts)


def write(path: Path, body: str) -> None:
    """Put `body` between the markers, replacing what was there, or at the end of the file.
    The file is read right before writing: other commands write other sections of it."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    start, stop = text.find(BEGIN), text.find(END)
    if 0 <= start < stop:
        text = text[:start] + block + text[stop + len(END):]
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds, for a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where benchmarks.md is (default: docs/)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    command = "python -m bench.codec" + (" --quick" if args.quick else "")
    started = time.monotonic()

    server = RedisServer()
    server.start()
    loop = asyncio.new_event_loop()
    cache = refresher.Refresher(server.url, namespace="benchcodec")
    try:
        redis_version = str(cache.redis.info("server")["redis_version"])
        vs = variants(cache)
        check(vs, loop)
        m = measure(vs, scale, loop)
        loop.run_until_complete(cache.aclose())
    finally:
        cache.close()
        loop.close()
        server.stop()

    targets, results, findings = tables(vs, m, scale)
    for table in (targets, *results):
        print(table.text(), end="\n\n")
    print("\n".join(findings))
    facts = machine(command, redis_version, m.loads)
    print("\n" + "\n".join(f"{k}: {v}" for k, v in facts))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "benchmarks.md"
    write(out, section(facts, targets, results, findings))
    print(f"\nwrote the codec section of {out} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
