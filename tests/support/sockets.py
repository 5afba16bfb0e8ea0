"""Which addresses a local port listens on, read from the kernel's socket tables: a test
can tell 127.0.0.1 from 0.0.0.0 without a second network interface."""

from __future__ import annotations

import socket
from pathlib import Path


def listening_addresses(port: int) -> set[str]:
    """The addresses sockets listen on at `port` (/proc/net/tcp and tcp6)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, packed))
    return found
