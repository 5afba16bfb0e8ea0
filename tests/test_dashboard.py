"""ops/: the Grafana dashboard asks only for series refresher's exporters produce, with
labels they carry; Prometheus' own promtool accepts ops/prometheus/prometheus.yml; and
ops/compose.metrics.yml adds Prometheus and Grafana to docker-compose.yml, local-only,
scraping what the web and worker services really serve."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from refresher.ops.metrics.families import (BREAKER, COUNTERS, DURATIONS, NEAR_COUNTERS, NEAR_GAUGES, NEAR_LAG,
                                            QUEUE_MESSAGES, label_names)
from tests.support.servers import ROOT, RedisServer
from tests.support.webapps import example_env, uvicorn

DASHBOARD = ROOT / "ops/grafana/dashboards/refresher.json"
PROMETHEUS = ROOT / "ops/prometheus/prometheus.yml"
OVERLAY = ROOT / "ops/compose.metrics.yml"
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus to every series it scrapes
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
               "offset", "inf", "nan"}
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?\s*(\()?")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def selectors(expr: str) -> Iterator[tuple[str, set[str]]]:
    """Each series selector of a PromQL expression: (metric name, label names it matches on)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values: not names
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges, $__rate_interval included
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    for name, matchers, called in SELECTOR.findall(expr):
        if not called and name.lower() not in NOT_METRICS:
            yield name, set(MATCHER.findall(matchers))


def test_the_selector_reader_finds_names_and_labels_only() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{loader="x|y", job!~"w"}[$__rate_interval])))'
            ' / on (job) group_left b_total - 1 > bool c')
    assert list(selectors(expr)) == [("a_bucket", {"loader", "job"}), ("b_total", set()), ("c", set())]


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def vocabulary() -> dict[str, set[str]]:
    """Every series name refresher/ops/metrics/families.py makes, with its labels."""
    names = {f"{family.name}_total": set(label_names(family)) for family in COUNTERS}
    for duration in DURATIONS:
        names.update({f"{duration.name}_bucket": {"loader", "le"}, f"{duration.name}_sum": {"loader"},
                      f"{duration.name}_count": {"loader"}})
    names[BREAKER] = set()
    names.update({near.name: set() for near in (*NEAR_GAUGES, NEAR_LAG)})
    names.update({f"{near.name}_total": set() for near in NEAR_COUNTERS})
    return names | WORKER_ONLY


WORKER_ONLY = {QUEUE_MESSAGES: {"queue"}}  # a worker's own series (tests/brokers/test_backlog.py scrapes it)


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The series names a real web process serves at /metrics after a miss and a hit:
    each family it exposes, with the suffixes its type gets."""
    db = tmp_path_factory.mktemp("dashboard") / "users.sqlite3"
    env = example_env(redis_server.url, db, EXAMPLES_QUERY_SECONDS="0")
    server = uvicorn("examples.fastapi_app.main:app", env, "--no-access-log").wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert [client.get("/users/3").status_code for _ in range(2)] == [200, 200]
            text = client.get("/metrics").text
    finally:
        server.stop()
    return {family.name + suffix for family in text_string_to_metric_families(text)
            if family.name.startswith("refresher_") for suffix in SUFFIXES[family.type]}


def test_a_web_process_serves_every_family_the_exporters_declare(served: set[str]) -> None:
    assert served == set(vocabulary()) - set(WORKER_ONLY)


def test_the_metrics_reference_has_a_row_for_every_family() -> None:
    rows = set(re.findall(r"^\|\s*`(refresher_\w+)`", (ROOT / "docs/reference/metrics.md").read_text(), re.MULTILINE))
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in vocabulary()}
    assert not families - rows, f"docs/reference/metrics.md has no row for: {', '.join(sorted(families - rows))}"


def test_every_dashboard_query_asks_for_exported_series_and_labels(served: set[str]) -> None:
    known = vocabulary()
    for expr in queries():
        found = list(selectors(expr))
        assert found, f"no metric in {expr}"
        for name, labels in found:
            assert name in served | set(WORKER_ONLY), f"{name} is not exported (in {expr})"
            assert labels <= known[name] | SCRAPE_LABELS, f"{name} has no label {labels - known[name]} (in {expr})"


def test_the_dashboard_shows_what_an_operator_looks_for() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    for wanted in ("Hit ratio by loader", "Origin calls avoided (5m)", "Refresh latency (origin calls)", "Failures",
                   "Queue backlog", "Refresh tasks: sent and run", "Lock waits", "Near cache size"):
        assert wanted in titles


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: scripts/ensure-prometheus installs it")
        pytest.skip("promtool is not installed (scripts/ensure-prometheus)")
    done = subprocess.run([promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr


def compose(password: str | None = "test-only") -> subprocess.CompletedProcess[str] | None:
    """`docker-compose -f docker-compose.yml -f ops/compose.metrics.yml config`, or None
    when docker-compose is not installed (CI installs it)."""
    tool = shutil.which("docker-compose")
    if tool is None:
        return None
    env = {key: value for key, value in os.environ.items() if key != "GRAFANA_ADMIN_PASSWORD"}
    env["FLOWER_BASIC_AUTH"] = "ops:a-long-enough-secret"  # docker-compose.yml requires it (tests/test_compose.py)
    if password is not None:
        env["GRAFANA_ADMIN_PASSWORD"] = password
    return subprocess.run([tool, "-f", "docker-compose.yml", "-f", str(OVERLAY.relative_to(ROOT)), "config"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    """Both files as docker-compose resolves them, or the overlay alone as plain YAML."""
    done = compose()
    if done is None:
        return yaml.safe_load(OVERLAY.read_text())  # type: ignore[no-any-return]
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)  # type: ignore[no-any-return]


def test_grafana_needs_an_admin_password() -> None:
    if shutil.which("docker-compose") is None:
        assert "${GRAFANA_ADMIN_PASSWORD:?" in OVERLAY.read_text()
        return
    for missing in (None, ""):
        done = compose(missing)
        assert done is not None and done.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in done.stderr


def bound(port: str | dict[str, Any]) -> tuple[str, int]:
    """(host address, host port) of a published port, short syntax (ip:host:container[/tcp]) or long."""
    if isinstance(port, dict):
        return port.get("host_ip", "0.0.0.0"), int(port["published"])
    parts = port.split("/")[0].split(":")
    return (parts[0], int(parts[1])) if len(parts) == 3 else ("0.0.0.0", int(parts[0]))


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in service["volumes"]:
        source, target = (volume["source"], volume["target"]) if isinstance(volume, dict) else volume.split(":")[:2]
        if source.startswith((".", "/")):
            found[target] = (ROOT / source).resolve()
    return found


def test_prometheus_and_grafana_listen_on_loopback_and_mount_ops(merged: dict[str, Any]) -> None:
    services = merged["services"]
    for name, port in (("prometheus", 9090), ("grafana", 3000)):
        assert [bound(p) for p in services[name]["ports"]] == [("127.0.0.1", port)], name
    assert mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    grafana = mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == ROOT / "ops/grafana/provisioning"
    provider = yaml.safe_load((ROOT / "ops/grafana/provisioning/dashboards/refresher.yml").read_text())
    assert grafana[provider["providers"][0]["options"]["path"]] == DASHBOARD.parent
    source = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert {panel["datasource"]["uid"] for panel in json.loads(DASHBOARD.read_text())["panels"]} == {uid}


def test_prometheus_scrapes_the_ports_the_web_and_worker_services_serve(merged: dict[str, Any]) -> None:
    jobs = {job["job_name"]: job["static_configs"][0]["targets"]
            for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    worker = merged["services"]["worker"]["environment"]
    assert jobs["worker"] == [f"worker:{worker['REFRESHER_METRICS_PORT']}"]
    assert worker["REFRESHER_METRICS_ADDR"] == "0.0.0.0"  # reachable in the compose network; no port published
    tmpfs = {mount.split(":")[0] for mount in merged["services"]["worker"]["tmpfs"]}
    assert worker["PROMETHEUS_MULTIPROC_DIR"] in tmpfs  # empty at every start
    assert jobs["web"] == ["web:8000"]  # the web service's uvicorn --port, where its /metrics is
    if "web" in merged["services"]:  # docker-compose merged the two files
        web = merged["services"]["web"]["command"]
        args = shlex.split(web) if isinstance(web, str) else web
        assert args[args.index("--port") + 1] == "8000"


@pytest.mark.parametrize("page", ["docs/reference/metrics.md", "docs/howto/compose.md"])
def test_the_documented_compose_commands_resolve_with_the_variables_they_set(page: str) -> None:
    """Each `VAR=... docker-compose ... up` line of the page, run as `config` with those
    variables alone (each `...` a long enough value): a variable the files require and the
    line forgets makes compose refuse the files."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (CI installs it)")
    lines = [line.split("#")[0] for line in (ROOT / page).read_text().splitlines()
             if re.match(r"^[A-Z_]+=.* docker-compose\b.* up\b", line)]
    assert lines, f"{page} shows no compose command"
    for line in lines:
        words = shlex.split(line)
        env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
        env = {name: "a-long-enough-value" if value == "..." else value for name, value in env.items()}
        args = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
        args = args[:args.index("up")] + ["config", "-q"]
        done = subprocess.run([tool, *args[1:]], cwd=ROOT, env={"PATH": os.environ["PATH"], **env},
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{line.strip()}: {done.stderr}"
