"""docker-compose.yml and its Dockerfile: five services, and each app service's command
really starts. No Docker engine runs on test machines, so the commands run here, against
the test redis-server, exactly as the compose file spells them."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import pytest
import redis
import yaml

from tests.support.ageing import into_window
from tests.support.servers import ROOT, WorkerProcess, free_port
from tests.support.webapps import AppServer

APP_SERVICES = ("worker", "web", "flower", "demo")
REDIS_IN_COMPOSE = "redis://redis:6379/0"
FLOWER_AUTH = "ops:twelve-chars-or-more"
VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (unset or empty: the error),
    for machines without docker-compose."""
    def one(found: re.Match[str]) -> str:
        name, how, text = found.groups()
        if how == "?" and not env.get(name):
            raise ValueError(f"required variable {name} is missing a value: {text}")
        return env.get(name) or (text if how == "-" else "")

    return VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as docker-compose itself resolves it when the tool is installed (CI
    installs it), else as plain YAML."""
    tool = shutil.which("docker-compose")
    if tool is None:
        return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]
    done = subprocess.run([tool, "-f", "docker-compose.yml", "config"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "FLOWER_BASIC_AUTH": FLOWER_AUTH})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)  # type: ignore[no-any-return]


def command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def published(port: str | dict[str, Any]) -> tuple[int, int]:
    """(host port, container port) from either the short or the long port syntax."""
    if isinstance(port, dict):
        return int(port["published"]), int(port["target"])
    host, container = str(port).split("/")[0].rsplit(":", 2)[-2:]  # [ip:]host:container[/tcp]
    return int(host), int(container)


def test_the_five_services_and_how_they_are_built(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "worker", "web", "flower", "demo"}
    assert services["redis"]["image"] == "redis:7"
    for name in APP_SERVICES:
        build = services[name]["build"]
        context = build["context"] if isinstance(build, dict) else build
        assert (ROOT / context).resolve() == ROOT, name
        assert services[name]["environment"]["REFRESHER_REDIS_URL"] == REDIS_IN_COMPOSE, name
        assert "redis" in services[name]["depends_on"], name
    assert command(services["worker"]) == ["celery", "-A", "workers", "worker", "-l", "info", "-E"]
    assert services["worker"]["environment"]["REFRESHER_LOADERS"] == "examples.loaders,examples.fastapi_app.loaders"
    assert command(services["web"]) == ["uvicorn", "examples.fastapi_app.main:app", "--host", "0.0.0.0", "--port", "8000"]
    assert [published(p) for p in services["web"]["ports"]] == [(8000, 8000)]
    assert command(services["flower"]) == ["celery", "-A", "workers", "flower", "--port=5555", "--address=0.0.0.0"]
    assert [published(p) for p in services["flower"]["ports"]] == [(5555, 5555)]
    assert command(services["demo"]) == ["python", "-m", "examples.demo"]


def test_the_web_app_and_the_worker_share_the_example_database(compose: dict[str, Any]) -> None:
    """The worker refreshes the FastAPI example's users by querying its SQLite file: the
    same path in both, on one named volume."""
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["environment"]["EXAMPLES_DB"] == worker["environment"]["EXAMPLES_DB"]
    folder = os.path.dirname(web["environment"]["EXAMPLES_DB"])

    def mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
        return {(v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2])
                for v in service["volumes"]}

    volume = next(source for source, target in mounts(web) if target == folder)
    assert (volume, folder) in mounts(worker) and volume in compose["volumes"]


def test_the_dockerfile_installs_what_the_services_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile.splitlines()
    assert "pip install --no-cache-dir -e '.[test,examples]'" in dockerfile
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("flower") for req in extras["test"])  # `celery -A workers flower`
    for needed in ("fastapi", "uvicorn", "aiosqlite"):  # the web service
        assert any(req.startswith(needed) for req in extras["examples"]), needed
    assert "COPY examples ./examples" in dockerfile and "PYTHONPATH=/app" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored  # a local venv must not end up in the image


def test_the_worker_service_refreshes_the_example_loaders(compose: dict[str, Any], r: redis.Redis,
                                                          redis_url: str) -> None:
    """`celery -A workers worker -l info` with REFRESHER_LOADERS=examples.loaders: it comes
    up and refreshes examples.loaders.user_profile when a read finds it in its window."""
    from examples import loaders

    service = compose["services"]["worker"]
    worker = WorkerProcess(redis_url, loaders=service["environment"]["REFRESHER_LOADERS"])
    assert worker.args[2:2 + len(command(service))] == command(service)  # the same command, plus test flags
    worker.start()
    try:
        first = loaders.user_profile.get(7)
        into_window(r, loaders.user_profile.keys(7))
        assert loaders.user_profile.get(7) == first  # served at once; a refresh is asked for
        assert worker.log is not None
        worker.log.wait_for(r"refresher\.refresh\[\S+\] succeeded in \S+ 'written'")
        assert loaders.origin_calls() == {"refresher": 2}
        assert loaders.user_profile.get(7)["loaded_at"] > first["loaded_at"]
    finally:
        worker.discard()


def flower_args(service: dict[str, Any], port: int) -> list[str]:
    """The flower service's command, on `port` of the loopback interface instead of 0.0.0.0:5555."""
    cmd = command(service)
    assert cmd[0] == "celery" and cmd[-2:] == ["--port=5555", "--address=0.0.0.0"]
    return [sys.executable, "-m", *cmd[:-2], f"--port={port}", "--address=127.0.0.1"]


def test_compose_will_not_start_flower_without_its_password(compose: dict[str, Any], redis_url: str) -> None:
    """`${FLOWER_BASIC_AUTH:?...}`: unset or empty, compose stops with the message (it used
    to pass an empty string, and `Authorization: Basic =` got in). Were that check bypassed,
    the command itself refuses to start (refresher/ops/flower.py)."""
    written = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]["environment"]
    assert VARIABLE.fullmatch(written["FLOWER_BASIC_AUTH"]).groups()[:2] == ("FLOWER_BASIC_AUTH", "?")  # type: ignore[union-attr]
    for env in ({}, {"FLOWER_BASIC_AUTH": ""}):
        with pytest.raises(ValueError, match=r"set FLOWER_BASIC_AUTH=user:password \(12\+ characters\)"):
            interpolate(written["FLOWER_BASIC_AUTH"], env)
    tool = shutil.which("docker-compose")
    if tool is not None:
        env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
        done = subprocess.run([tool, "-f", "docker-compose.yml", "config"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
        assert done.returncode != 0 and "FLOWER_BASIC_AUTH=user:password" in done.stderr
    refused = subprocess.run(flower_args(compose["services"]["flower"], free_port()), cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env={**os.environ, "REFRESHER_REDIS_URL": redis_url,
                                                         "PYTHONPATH": str(ROOT), "FLOWER_BASIC_AUTH": ""})
    assert refused.returncode != 0 and "refresher: Flower refused to start" in refused.stderr


def status(url: str, header: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": header} if header else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_the_flower_service_comes_up(compose: dict[str, Any], redis_url: str) -> None:
    """Flower comes up, and answers nothing but its healthcheck without the password: no
    header, empty credentials (`Basic =`, `Basic Og==`) and a wrong password alike get 401."""
    port = free_port()
    auth = interpolate(compose["services"]["flower"]["environment"]["FLOWER_BASIC_AUTH"],
                       {"FLOWER_BASIC_AUTH": FLOWER_AUTH})
    env = {"REFRESHER_REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": auth}
    server = AppServer(flower_args(compose["services"]["flower"], port), env, port,
                       rf"Visit me at http://127\.0\.0\.1:{port}")
    try:
        server.launch().wait_ready(30)
        assert status(f"{server.url}/healthcheck", None) == 200
        for path in ("/", "/tasks", "/api/workers"):
            for header in (None, "Basic =", "Basic Og==", "Basic " + base64.b64encode(b"ops:wrong").decode()):
                assert status(server.url + path, header) == 401, (path, header)
            assert status(server.url + path, "Basic " + base64.b64encode(auth.encode()).decode()) == 200, path
    finally:
        server.stop()


def web_args(service: dict[str, Any], port: int) -> list[str]:
    """The web service's command, on `port` of the loopback interface instead of 0.0.0.0:8000."""
    cmd = command(service)
    assert cmd[0] == "uvicorn" and cmd[-4:] == ["--host", "0.0.0.0", "--port", "8000"]
    return [sys.executable, "-m", *cmd[:-4], "--host", "127.0.0.1", "--port", str(port)]


def test_the_web_service_comes_up_and_serves_users(compose: dict[str, Any], redis_url: str,
                                                    tmp_path: Path) -> None:
    port = free_port()
    service = compose["services"]["web"]
    env = {"REFRESHER_REDIS_URL": redis_url, "EXAMPLES_DB": str(tmp_path / "users.sqlite3")}
    server = AppServer(web_args(service, port), env, port, rf"Uvicorn running on http://127\.0\.0\.1:{port}")
    try:
        server.launch().wait_ready()
        with urllib.request.urlopen(f"{server.url}/health", timeout=5) as answer:
            assert (answer.status, json.loads(answer.read())) == (200, {"status": "ok"})
        with urllib.request.urlopen(f"{server.url}/users/1", timeout=10) as answer:  # seeded at start-up
            assert json.loads(answer.read()) == {"id": 1, "name": "user 1", "email": "user1@example.com"}
    finally:
        server.stop()
