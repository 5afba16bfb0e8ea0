"""A process that loads keys while another process's near cache tracks them
(tests/test_fleet_cost.py): each load takes the key's lock, commits the value and frees
the lock, the writes a tracking process may hear of."""

from __future__ import annotations

from refresher import Refresher

NAME = "tests.pushes.square"


def load(namespace: str, keys: list[int]) -> None:
    cache = Refresher(namespace=namespace, queue="pushes-tests")  # a queue no worker reads

    @cache.loader(ttl=60, name=NAME)
    def square(n: int) -> int:
        return n * n

    assert [square.get(n) for n in keys] == [n * n for n in keys]
    assert cache.stats["load"] == len(keys)
    cache.close()
