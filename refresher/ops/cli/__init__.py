"""`refresher`, the command line (also `python -m refresher`): look at one cached call,
drop it, warm many, count a loader's keys, or run the demo, without writing Redis
commands by hand. The commands are thin: state.py reads, warm.py refreshes, common.py
finds the loader and turns errors into one line and an exit status."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from typing import IO

import click

from refresher.ops.cli.common import Commands, Failure, cwd_on_path, parse_call, resolve
from refresher.ops.cli.state import describe, key_pattern, read_state, scan
from refresher.ops.cli.warm import FAILED, Warmed, enqueue, load_now
from refresher.api.client import Refresher

PROGRESS_FROM = 20  # calls: a shorter warm is over before a progress bar could say anything


@click.group(name="refresher", cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Look at and act on a refresher cache from a shell.

    LOADER is a loader's name, found as a worker finds it: by importing the modules listed
    in REFRESHER_LOADERS (comma-separated, importable from the current directory). The
    loader's own Refresher says where its cache and broker are (REFRESHER_REDIS_URL,
    REFRESHER_BROKER_URL, REFRESHER_NAMESPACE, REFRESHER_QUEUE).

    ARGS_JSON is one call's arguments: a JSON array of positional arguments, an object of
    keyword arguments, or a bare scalar as the one positional argument ('[1, "a"]',
    '{"user_id": 1}', '1'). Typed arguments take the tagged form of the keys, e.g.
    '[{"$date": "2026-01-31"}]'.

    Exit status: 0 done; 1 failed while running (Redis or the broker unreachable, a load
    failed); 2 asked wrongly (bad JSON, unknown loader, arguments that do not fit).
    """
    cwd_on_path()


def main() -> None:
    """The console script, and `python -m refresher`."""
    cli()


loader_argument = click.argument("loader_name", metavar="LOADER")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


@cli.command("inspect")
@loader_argument
@click.argument("args_json", metavar="ARGS_JSON")
@json_option
def inspect_command(loader_name: str, args_json: str, as_json: bool) -> None:
    """One call's key as a reader sees it now: its state (fresh, in window, stale or
    missing), version, age, TTL left, the lock's TTL, a pending refresh or back-off, and
    its size."""
    loader = resolve(loader_name)
    state = read_state(loader, parse_call(loader, args_json))
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(state)))
        return
    for label, text in describe(state):
        click.echo(f"{label:<10} {text}")


@cli.command("invalidate")
@click.argument("loader_name", metavar="[LOADER]", required=False)
@click.argument("args_json", metavar="[ARGS_JSON]", required=False)
@click.option("--all", "everything", is_flag=True, help="Every value of LOADER, in O(1) (invalidate_all).")
@click.option("--soft", is_flag=True, help="With --all: keep serving the values while workers refresh each one.")
@click.option("--tag", help="Every value carrying this tag, across loaders (invalidate_tag).")
def invalidate_command(loader_name: str | None, args_json: str | None, everything: bool, soft: bool, tag: str | None) -> None:
    """Drop one call's value (LOADER ARGS_JSON), all of a loader's (LOADER --all), or every
    value with a tag (--tag TAG): the next read loads again, and a load already in flight
    cannot bring an old value back. --all --soft serves the old values while workers
    refresh them, one refresh per key as it is next read."""
    if tag is not None:
        if loader_name is not None or everything or soft:
            raise click.UsageError("--tag TAG takes no LOADER, ARGS_JSON, --all or --soft")
        cache = Refresher()  # REFRESHER_REDIS_URL and REFRESHER_NAMESPACE, as the loaders' own
        try:
            cache.invalidate_tag(tag)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--tag") from None
        finally:
            cache.close()
        click.echo(f"invalidated every value tagged {tag}")
        return
    if loader_name is None:
        raise click.UsageError("give LOADER ARGS_JSON, LOADER --all, or --tag TAG")
    if soft and not everything:
        raise click.UsageError("--soft goes with --all")
    if everything == (args_json is not None):
        raise click.UsageError("give either ARGS_JSON or --all, not both" if everything else "give ARGS_JSON, or --all")
    loader = resolve(loader_name)
    if everything:
        loader.invalidate_all(hard=not soft)
        click.echo(f"invalidated every value of {loader.name} ({'soft: refreshed as read' if soft else 'hard'})")
        return
    assert args_json is not None
    call = parse_call(loader, args_json)
    loader.invalidate(*call.args, **call.kwargs)
    click.echo(f"invalidated {call.keys.value}")


@cli.command("warm")
@loader_argument
@click.argument("args_json", metavar="[ARGS_JSON]...", nargs=-1)
@click.option("--from-file", "from_file", type=click.File(), help="One ARGS_JSON per line ('-': stdin); blank lines skipped.")
@click.option("--now", is_flag=True, help="Load each call here, as a worker would, instead of enqueueing it.")
@json_option
def warm_command(loader_name: str, args_json: tuple[str, ...], from_file: IO[str] | None, now: bool, as_json: bool) -> None:
    """Refresh calls ahead of their readers: a refresh task per call for a worker (on the
    loader's queue), or with --now a load here. Every ARGS_JSON is checked before the
    first is sent. Exits 1 if any --now load failed."""
    if not args_json and from_file is None:
        raise click.UsageError("give ARGS_JSON arguments or --from-file FILE")
    loader = resolve(loader_name)
    texts = [(f"ARGS_JSON #{n}", text) for n, text in enumerate(args_json, 1)]
    if from_file is not None:
        texts += [(f"{from_file.name}:{n}", line.strip()) for n, line in enumerate(from_file, 1) if line.strip()]
    calls = [parse_call(loader, text, where) for where, text in texts]
    work = load_now if now else enqueue
    if len(calls) < PROGRESS_FROM:
        results = [work(loader, call) for call in calls]
    else:
        label = f"{'loading' if now else 'enqueueing'} {len(calls)} calls of {loader.name}"
        with click.progressbar(calls, label=label, file=sys.stderr) as bar:
            results = [work(loader, call) for call in bar]
    counts = Counter(warmed.result for warmed in results)
    if as_json:
        click.echo(json.dumps({"loader": loader.name, "queue": None if now else loader.cache.queue,
                               "counts": counts, "results": [dataclasses.asdict(w) for w in results]}))
    else:
        click.echo(_summary(loader.name, loader.cache.queue, now, results, counts))
    failed = sum(counts[outcome] for outcome in FAILED)
    if failed:
        raise Failure(f"{failed} of {len(results)} loads failed (the log lines above say why)")


def _summary(name: str, queue: str, now: bool, results: list[Warmed], counts: Counter[str]) -> str:
    if now:
        outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        return f"loaded {_count(len(results), 'call')} of {name} here: {outcomes or 'none'}"
    replacing = sum(1 for warmed in results if warmed.seen is not None)
    return (f"enqueued {_count(len(results), 'refresh task')} for {name} on queue {queue!r} "
            f"({replacing} replace a stored version, {len(results) - replacing} fill a key with nothing stored)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@cli.command("keys")
@loader_argument
@click.option("--sample", default=10, show_default=True, type=click.IntRange(min=0), help="How many keys to list.")
@json_option
def keys_command(loader_name: str, sample: int, as_json: bool) -> None:
    """Count the loader's cached keys and list a few (the first in sorted order), by SCAN
    with a MATCH on the loader's key prefix, never KEYS; on a Redis Cluster, every
    master. Invalidated keys count until they lapse."""
    loader = resolve(loader_name)
    match = key_pattern(loader)
    found = sorted({key.decode(errors="backslashreplace") for key in scan(loader.cache.redis, match)})  # SCAN may repeat a key
    if as_json:
        click.echo(json.dumps({"loader": loader.name, "match": match, "count": len(found), "sample": found[:sample]}))
        return
    click.echo(f"{_count(len(found), 'key')} of {loader.name} (SCAN MATCH {match})")
    for key in found[:sample]:
        click.echo(f"  {key}")


@cli.command("demo", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("demo_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def demo_command(ctx: click.Context, demo_args: tuple[str, ...]) -> None:
    """The same run as `make demo`: python -m examples.demo, with its options (--help
    lists them). Run it from a checkout of refresher, where examples/ lives."""
    try:
        from examples import demo
    except ImportError:
        raise Failure("the demo needs the repository's examples/ package: run `refresher demo` from a checkout of refresher") from None
    ctx.exit(demo.main(list(demo_args)))

