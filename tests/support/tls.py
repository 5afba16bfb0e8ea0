"""A redis-server that speaks only TLS, on loopback, with a self-signed certificate made
for the test (it is its own CA); with `client_auth` it also demands that certificate from
every client."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from tests.support.servers import RedisServer, free_port


class TlsRedis(NamedTuple):
    server: RedisServer
    url: str  # rediss://, without the TLS parameters
    cert: Path
    key: Path


def tls_redis(directory: Path, client_auth: bool = False) -> TlsRedis:
    """Started; the caller stops `server`."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed to make the test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    port = free_port()
    server = RedisServer(None, "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
                         "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                         "--tls-auth-clients", "yes" if client_auth else "no")
    server.start()
    return TlsRedis(server, f"rediss://127.0.0.1:{port}/0", cert, key)
