"""The built wheel, installed with no extras into a venv of its own (`make test-wheel` builds
it and points REFRESHER_TEST_WHEEL_VENV at it): every module imports on the declared
dependencies alone, and a read in the refresh window publishes a task that a worker started
from that venv (`celery -A refresher.worker worker`) runs. Nothing here may see the
repository: the scripts run outside it, with no PYTHONPATH but their own loaders."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import redis

from refresher import Refresher
from tests.support.ageing import into_window
from tests.support.servers import LogWatcher, RedisServer, free_port, stop_gracefully

VENV = os.path.abspath(os.environ["REFRESHER_TEST_WHEEL_VENV"]) if os.environ.get("REFRESHER_TEST_WHEEL_VENV") else ""
EXTRAS = {  # package prefix: the import its extra provides
    "refresher.ops.metrics": "prometheus_client",  # [prometheus]
    "refresher.ops.flowerconfig": "tornado",  # [flower]: the file Flower executes at start (FLOWER_CONF)
    "refresher.contrib.django": "django",  # [django]
}
LOADERS = '''
import os
from refresher import Refresher

cache = Refresher()  # REFRESHER_REDIS_URL


@cache.loader(ttl=300, name="wheel.who")
def who(n: int) -> str:
    return os.environ["WHO"]
'''
IMPORT_ALL = '''
import importlib, importlib.metadata, importlib.util, json, pathlib
import refresher
root = pathlib.Path(refresher.__file__).parent
names = sorted(".".join(("refresher",) + p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
               for p in root.rglob("*.py"))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed[name] = getattr(exc, "name", None) or str(exc)
print(json.dumps({"file": refresher.__file__, "names": names, "failed": failed,
                  "version": refresher.__version__, "dist": importlib.metadata.version("refresher"),
                  "typed": (root / "py.typed").is_file(),
                  "workers": importlib.util.find_spec("workers") is not None}))
'''
pytestmark = [
    pytest.mark.skipif(not VENV, reason="make test-wheel runs this with the wheel's venv"),
    pytest.mark.standalone_only,
]


def run(script: str, cwd: Path, **env: str) -> str:
    done = subprocess.run([f"{VENV}/bin/python", "-c", script], cwd=cwd, env=_env(cwd, env),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _env(cwd: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REFRESHER_", "VIRTUAL_ENV"))}
    return {**env, "PYTHONPATH": str(cwd), **extra}


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    s.start()
    yield s
    s.stop()


def test_every_module_imports_on_the_declared_dependencies_alone(tmp_path: Path) -> None:
    found = json.loads(run(IMPORT_ALL, tmp_path))
    assert found["file"].startswith(VENV)  # the installed wheel, not the repository
    assert len(found["names"]) > 30 and "refresher.api.client" in found["names"]
    expected = {name: package for name in found["names"] for prefix, package in EXTRAS.items()
                if name == prefix or name.startswith(prefix + ".")}
    assert found["failed"] == expected  # only the extras' modules, each for its extra's package
    assert found["version"] == found["dist"]
    assert found["typed"] and not found["workers"]  # the wheel holds refresher only


def test_a_read_in_the_window_publishes_a_refresh_a_worker_from_the_wheel_runs(
    tmp_path: Path, server: RedisServer
) -> None:
    (tmp_path / "wheel_loaders.py").write_text(LOADERS)
    url = server.url
    read = "from wheel_loaders import cache, who; print(who.get(1)); cache.close()"  # close: publish before exit
    assert run(read, tmp_path, REFRESHER_REDIS_URL=url, WHO="reader").strip() == "reader"  # a miss, loaded inline
    worker = subprocess.Popen(
        [f"{VENV}/bin/celery", "-A", "refresher.worker", "worker", "-l", "info", "-P", "solo",
         "--without-mingle", "--without-gossip", "--without-heartbeat", "-n", f"wheel{free_port()}@%h"],
        cwd=tmp_path, env=_env(tmp_path, {"REFRESHER_REDIS_URL": url, "REFRESHER_LOADERS": "wheel_loaders",
                                          "WHO": "worker", "PYTHONUNBUFFERED": "1"}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert worker.stdout is not None
    log = LogWatcher(worker.stdout, "[wheel worker] ")
    try:
        log.wait_for(r"@\S+ ready\.", timeout=60)
        cache = Refresher(url)

        @cache.loader(ttl=300, name="wheel.who")
        def who(n: int) -> str:
            raise AssertionError("the test never loads")

        with redis.Redis.from_url(url) as r:
            into_window(r, who.keys(1))
        assert run(read, tmp_path, REFRESHER_REDIS_URL=url, WHO="reader").strip() == "reader"  # served, refresh asked
        log.wait_for(r"refresher\.refresh\[\S+\] succeeded", timeout=30)
        assert who.get(1) == "worker"
        cache.close()
    finally:
        stop_gracefully(worker)
