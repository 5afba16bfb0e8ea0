"""Flower as this project starts it (`celery -A workers flower`, `make flower`, the compose
service): never an open door. Flower shows every task's arguments and can shut workers
down, and unconfigured it listens on every interface with no password, so the settings
here refuse to start it unless every FLOWER_BASIC_AUTH entry (`user:password`, several
comma-separated) has a user and a password of MIN_PASSWORD characters or more; an empty
entry (what an unset compose variable used to become) is no credential. Flower listens
on 127.0.0.1 unless an address is given (FLOWER_ADDRESS or --address).

REFRESHER_FLOWER_INSECURE_LOCAL=1 is the one way to run without credentials: then only
on a loopback address.

Flower reads its settings from a Python file it executes (`--conf`, or FLOWER_CONF; by
default `flowerconfig.py` in the current directory): refresher/ops/flowerconfig.py, which the
`workers` app names in FLOWER_CONF, and the repository's flowerconfig.py both apply
`settings()`; for a user's own Celery app, `--conf="$(python -m refresher.ops.flower)"`
names the installed file from any directory. The tasks page shows each refresh as the
loader call it refreshes (its argsrepr, such as `examples.loaders.user_profile(2)`) and its
result (written, deduplicated, fresh, failed, backing_off, ...).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

MIN_PASSWORD = 12
INSECURE_LOCAL = "REFRESHER_FLOWER_INSECURE_LOCAL"
LOOPBACK = "127.0.0.1"
TASKS_COLUMNS = "name,args,state,result,exception,received,runtime,worker"
CONFIG_FILE = str(Path(__file__).with_name("flowerconfig.py"))
HOW = (f"set FLOWER_BASIC_AUTH=user:password (a password of {MIN_PASSWORD}+ characters; several users "
       f"comma-separated), or {INSECURE_LOCAL}=1 to run without a password on {LOOPBACK} only")


class Refused(SystemExit):
    """Flower must not start so: the message says what to set."""

    def __init__(self, why: str) -> None:
        super().__init__(f"refresher: Flower refused to start: {why}; {HOW}")


def weak_entries(entries: list[str]) -> list[str]:
    """What is wrong with each basic-auth entry (never the password itself); none: all fine."""
    if not entries or entries == [""]:
        return ["FLOWER_BASIC_AUTH is unset or empty"]
    problems = []
    for n, entry in enumerate(entries, 1):
        user, colon, password = entry.partition(":")
        if not user.strip() or not colon:
            problems.append(f"entry {n} has no user (expected user:password)")
        elif len(password) < MIN_PASSWORD:
            problems.append(f"entry {n} (user {user!r}) has a password of {len(password)} characters")
    return problems


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def settings(options: Any = None) -> dict[str, Any]:
    """The settings a Flower config file sets, given Flower's `options` as the environment
    and command line have made them so far (tornado's; read when not given). Raises
    Refused, which ends the process with its message, if Flower would be open."""
    if options is None:
        from tornado.options import options
    address = options.address or LOOPBACK
    entries = list(options.basic_auth or [])
    if os.environ.get(INSECURE_LOCAL, "").strip() == "1":
        if not options.unix_socket and not is_loopback(address):
            raise Refused(f"{INSECURE_LOCAL}=1 serves a loopback address only, not {address!r}")
        entries = [entry for entry in entries if entry]  # an empty one would be a password of its own
    elif problems := weak_entries(entries):
        raise Refused("; ".join(problems))
    return {"address": address, "basic_auth": entries, "tasks_columns": TASKS_COLUMNS}


if __name__ == "__main__":  # `celery -A proj flower --conf="$(python -m refresher.ops.flower)"`: a user's own app
    print(CONFIG_FILE)
