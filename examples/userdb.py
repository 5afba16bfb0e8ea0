"""The framework examples' origin: a small users table in SQLite, slow on purpose, that
counts its own queries in Redis.

The count lives in Redis, not in a process, so a test can add up the origin calls of an
app's processes and of the refresh worker alike. The apps create and seed the table at
start-up; the worker only reads it, so both must be given the same EXAMPLES_DB file.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing
from typing import Any

from typing_extensions import TypedDict  # pydantic (FastAPI) wants this one before Python 3.12

QUERY_SECONDS = float(os.environ.get("EXAMPLES_QUERY_SECONDS", "0.2"))  # so that a stampede is real
PROFILE_TTL = float(os.environ.get("EXAMPLES_PROFILE_TTL", "300"))
REFRESH_WINDOW = 0.3

SCHEMA = "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)"
SELECT_USER = "SELECT id, name, email FROM users WHERE id = ?"


class User(TypedDict):
    """A row as the apps serve it: a plain dict, so any codec stores it as JSON."""

    id: int
    name: str
    email: str


USERS = [User(id=n, name=f"user {n}", email=f"user{n}@example.com") for n in range(1, 101)]


def db_path() -> str:
    """EXAMPLES_DB, else one file in the system's temp directory."""
    return os.environ.get("EXAMPLES_DB") or os.path.join(tempfile.gettempdir(), "refresher-examples.sqlite3")


def seed(path: str) -> None:
    """Create the users table and its rows; running it again changes nothing."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(SCHEMA)
        db.executemany("INSERT OR IGNORE INTO users VALUES (?, ?, ?)", [tuple(u.values()) for u in USERS])


def user(row: Any) -> User | None:
    """A row of SELECT_USER (a tuple, or aiosqlite's Row), or None, as a User."""
    return None if row is None else User(id=row[0], name=row[1], email=row[2])


def origin_calls_key(namespace: str, app: str) -> str:
    """The Redis counter of `app`'s origin queries, inside the cache's namespace."""
    return f"{namespace}:examples:{app}:origin-calls"
