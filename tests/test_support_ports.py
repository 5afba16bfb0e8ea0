"""The tests' own servers get ports that collide with nothing the same test run handed out."""

from __future__ import annotations

from tests.support.servers import free_port


def test_free_port_never_hands_out_a_port_twice() -> None:
    """The kernel gives two closed probes the same port now and then (a cluster's twelve
    ports, picked together, collided once in about 150 batches): a thousand picks would
    repeat dozens of times without the process's memory of what it handed out."""
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)
