"""The monitoring files shipped in deploy/: Prometheus' configuration and alert rules, and
Grafana's provisioning and dashboard, checked against the metrics the app really exports.

promtool (Debian's `prometheus` package) checks the configuration, the rules, the rules'
unit tests and the dashboard's queries; without it these checks are skipped on a laptop and
fail under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from distributor.engine.dbclock import ClockOffset, read_database_time
from distributor.engine.heartbeats import beat
from distributor.migrate import upgrade
from distributor.runtime import Runtime
from distributor.settings import Settings
from distributor.web.app import create_app

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "distributor.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "distributor.yml"
METRIC_NAME = re.compile(r"\bdistributor_[a-z0-9_]+")
# What admins look at first (issue: throughput, lift latency, queue depth, states).
DASHBOARD_ROWS = {"Throughput", "Lift latency", "Queues", "States"}
REQUIRED_ALERTS = {
    "DistributorSchedulerSilent",
    "DistributorNoWorkerWhileArmed",
    "DistributorSendBehindEmbargo",
    "DistributorRelayRefusing",
    "DistributorBounceRateHigh",
    "DistributorComplaintRateHigh",
}


def read_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in read_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p.get("type") != "row"]


def dashboard_queries() -> list[str]:
    return [str(t["expr"]) for p in dashboard_panels() for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every metric name /metrics serves, with every optional figure present: limits set,
    and a scheduler and a worker alive."""
    folder = tmp_path_factory.mktemp("exported")
    database = f"sqlite:///{folder / 'db.sqlite3'}"
    upgrade(database)
    settings = Settings(
        database_url=database,
        data_dir=folder / "var",
        rate_per_second=100,
        max_connections=10,
        daily_quota=10_000,
    )
    rt = Runtime(settings)
    try:
        with rt.sessions.begin() as session:
            now = read_database_time(session, rt.database_clock)
            for kind in ("scheduler", "worker"):
                beat(
                    session,
                    name=f"{kind}:h:1",
                    kind=kind,
                    now=now,
                    offset=ClockOffset(timedelta(0)),
                )
        with TestClient(create_app(rt)) as client:
            response = client.get("/metrics")
    finally:
        rt.close()
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


# --- names --------------------------------------------------------------------------------


def test_every_metric_in_the_alert_rules_is_exported(exported: set[str]) -> None:
    used = {name for rule in alert_rules() for name in METRIC_NAME.findall(str(rule["expr"]))}
    assert used, "no distributor metric in the alert rules"
    assert sorted(used - exported) == []


def test_every_metric_in_the_dashboard_is_exported(exported: set[str]) -> None:
    used = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    assert used, "no distributor metric in the dashboard"
    assert sorted(used - exported) == []


def test_the_alerts_the_admins_asked_for_are_all_there() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= REQUIRED_ALERTS, sorted(REQUIRED_ALERTS - set(rules))
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_the_dashboard_uses_the_provisioned_data_source_and_covers_what_admins_watch() -> None:
    board = dashboard()
    (source,) = read_yaml(DATASOURCES)["datasources"]
    assert source["url"] == "http://prometheus:9090"
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
    rows = {p["title"] for p in board["panels"] if p.get("type") == "row"}
    assert rows >= DASHBOARD_ROWS, sorted(DASHBOARD_ROWS - rows)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "two panels share an id"
    assert board["uid"] and not board["editable"]


def test_the_dashboard_provider_reads_the_folder_the_dashboard_is_in() -> None:
    (provider,) = read_yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    # Mounted there by docker-compose.yml (tests/test_compose.py checks the mount).
    assert provider["options"]["path"] == "/etc/grafana/dashboards"


def test_prometheus_scrapes_the_web_app_and_loads_the_rules() -> None:
    config = read_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == [ALERT_RULES.name]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "distributor"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["web:8000"]}]
    # The scheduler alert fires after 10 s of silence: scrapes must come more often.
    assert int(str(job["scrape_interval"]).removesuffix("s")) < 10


# --- promtool -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (Debian's prometheus package)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}, and CI must run every test")
        pytest.skip(message)
    return path


def run_promtool(promtool: str, *args: str | Path) -> None:
    result = subprocess.run(
        [promtool, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    )


def test_promtool_accepts_the_configuration(promtool: str) -> None:
    run_promtool(promtool, "check", "config", PROMETHEUS_CONFIG)


def test_promtool_accepts_the_rules_and_their_unit_tests_pass(promtool: str) -> None:
    run_promtool(promtool, "check", "rules", ALERT_RULES)
    run_promtool(promtool, "test", "rules", ALERT_TESTS)


@pytest.fixture
def dashboard_as_rules(tmp_path: Path) -> Iterator[Path]:
    """The dashboard's queries as recording rules, so that promtool parses each one."""
    rules = [
        {"record": f"dashboard:query_{n}", "expr": query}
        for n, query in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    yield path


def test_promtool_parses_every_dashboard_query(promtool: str, dashboard_as_rules: Path) -> None:
    run_promtool(promtool, "check", "rules", dashboard_as_rules)
