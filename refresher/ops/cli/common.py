"""What every command shares: finding the loader, reading ARGS_JSON, and turning errors
into one line and a Unix exit code (1: it failed while running, 2: it was asked wrongly)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refresher.api import registry
from refresher.core.calls import Call
from refresher.core.ops import Batch, Steps
from refresher.errors import CacheRefused, CacheUnavailable, UnknownLoader
from refresher.api.loader import Loader


class Failure(click.ClickException):
    """It went wrong while running (Redis or the broker unreachable, a load failed): exit 1."""

    exit_code = 1


class Usage(click.ClickException):
    """The command was asked for something that cannot be (bad JSON, an unknown loader):
    exit 2 like click's own usage errors, but as one line, without the usage text."""

    exit_code = 2


class Commands(click.Group):
    """A group whose commands fail with one line, not a traceback, when Redis or the broker
    is unreachable: every command talks to one or the other, so it is handled once here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CacheUnavailable, CacheRefused) as exc:  # its message names the key, the cause, the fix
            raise Failure(str(exc)) from None
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise Failure(f"cannot reach the cache Redis: {exc}") from None
        except RedisError as exc:
            raise Failure(f"Redis refused the command: {type(exc).__name__}: {exc}") from None
        except BrokerError as exc:
            raise Failure(f"cannot reach the broker: {exc}") from None


def cwd_on_path() -> None:
    """Let REFRESHER_LOADERS and `examples` name modules in the current directory, as
    `celery -A workers worker` does: a console script's sys.path starts with its own
    directory, not the one it is run from."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def resolve(name: str) -> Loader[Any, Any]:
    """The loader registered under `name` once the REFRESHER_LOADERS modules are imported,
    exactly as a worker finds it (so the CLI and the worker agree on keys and settings).
    In a Django project DJANGO_SETTINGS_MODULE is enough: setting Django up imports them."""
    modules = os.environ.get("REFRESHER_LOADERS", "")
    if not modules.strip() and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise Usage("REFRESHER_LOADERS is not set: list the modules that define your loaders, as for the worker")
    try:
        # Imported here, not at the top: the worker side is not what `refresher --help`
        # and `refresher demo` need; user code may fail in the loader modules.
        from refresher.worker import import_loaders

        import_loaders()
    except ImportError as exc:
        raise Usage(f"cannot import the modules in REFRESHER_LOADERS={modules!r}: {exc}") from None
    except Exception as exc:  # the loader modules' own code failed: one line, not a traceback
        raise Failure(f"importing REFRESHER_LOADERS={modules!r} failed: {type(exc).__name__}: {exc}") from None
    try:
        return registry.lookup(name)
    except UnknownLoader:
        known = ", ".join(registry.names()) or "none"
        raise Usage(f"no loader named {name!r}: REFRESHER_LOADERS={modules!r} registers {known}") from None


def parse_call(loader: Loader[Any, Any], text: str, where: str = "ARGS_JSON") -> Call:
    """One call from ARGS_JSON: a JSON array of positional arguments, an object of keyword
    arguments, or a bare scalar as the one positional argument. Typed arguments take the
    tagged form a refresh task carries ({"$date": "2026-01-31"}, {"$uuid": ...},
    {"$enum": ["module.Class", "MEMBER"]}), rebuilt from the loader's annotations."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Usage(f"{where}: {text!r} is not JSON: {exc}") from None
    if isinstance(value, list):
        args, kwargs = value, {}
    elif isinstance(value, dict):
        args, kwargs = [], value
    else:
        args, kwargs = [value], {}
    try:
        return loader.call.from_wire([args, kwargs])
    except TypeError as exc:
        raise Usage(f"{where}: {text!r} does not fit the loader: {exc}") from None


def redis_call(loader: Loader[Any, Any], *commands: tuple[Any, ...]) -> list[Any]:
    """Their replies, in one round trip through the loader's own driver, so one Redis, a
    Cluster and a Sentinel-managed master are all read the way the library reads them."""

    def batch() -> Steps[list[Any]]:
        replies: list[Any] = yield Batch(commands)
        return replies

    return loader.cache.sync.run(batch())
