"""The production compose file: valid for docker-compose, and shaped as docs/deployment.md and
docs/monitoring.md say."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from distributor.cli import app as cli_app
from distributor.settings import DEVELOPMENT_SECRET, Environment, Settings
from tests.support.services import require

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
DEPLOYMENT_DOC = COMPOSE_FILE.parent / "docs" / "deployment.md"
MONITORING_DOC = COMPOSE_FILE.parent / "docs" / "monitoring.md"
PROMETHEUS_CONFIG = COMPOSE_FILE.parent / "deploy" / "prometheus" / "prometheus.yml"

SERVICES = {
    "postgres",
    "redis",
    "migrate",
    "worker",
    "notice-worker",
    "scheduler",
    "web",
    "flower",
    "mailpit",
}
LONG_RUNNING = (
    "postgres",
    "redis",
    "rabbitmq",
    "worker",
    "notice-worker",
    "scheduler",
    "web",
    "flower",
    "mailpit",
    "prometheus",
    "grafana",
)
APP_SERVICES = ("migrate", "worker", "notice-worker", "scheduler", "web")
SCALABLE = ("worker", "scheduler")
REQUIRED_VARIABLES = ("DISTRIBUTOR_SECRET_KEY", "POSTGRES_PASSWORD")
REDIS_BROKER_URL = "redis://redis:6379/0"
# RabbitMQ, the alternative broker, runs only when this profile is started.
RABBITMQ_PROFILE = "rabbitmq"
# Prometheus and Grafana run only when this one is.
MONITORING_PROFILE = "monitoring"
MONITORING_SERVICES = {"prometheus", "grafana"}
PROFILED = {
    "rabbitmq": RABBITMQ_PROFILE,
    "prometheus": MONITORING_PROFILE,
    "grafana": MONITORING_PROFILE,
}
GRAFANA_PASSWORD = "composeTestGrafana1"

SECRET = "compose-test-secret"
PASSWORD = "compose-test-password"
RABBITMQ_PASSWORD = "composeTestRabbit1"
RABBITMQ_BROKER_URL = f"amqp://distributor:{RABBITMQ_PASSWORD}@rabbitmq:5672/distributor"


# --- the file as written, read with PyYAML -------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{COMPOSE_FILE.name} is not a YAML mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found = compose.get("services")
    assert isinstance(found, dict), f"{COMPOSE_FILE.name} has no services mapping"
    return found


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {key: value if sep else None for key, sep, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def profiles_of(service: dict[str, Any]) -> set[str]:
    return {str(p) for p in service.get("profiles") or []}


def active_services(services: dict[str, Any], *profiles: str) -> set[str]:
    """The services `up` starts with these profiles: those without any, and those in one."""
    return {
        name
        for name, service in services.items()
        if not profiles_of(service) or profiles_of(service) & set(profiles)
    }


def depends_on_names(service: dict[str, Any]) -> set[str]:
    depends_on = service.get("depends_on") or {}
    return {str(name) for name in depends_on}


def variable_default(value: str | None, variable: str) -> str | None:
    """The default of `${variable:-default}`, or None if `value` is not exactly that form."""
    match = re.fullmatch(rf"\$\{{{variable}:-([^}}]*)\}}", value or "")
    return match.group(1) if match else None


def dependency(service: dict[str, Any], name: str) -> str | None:
    """The condition a service waits for on `name`, or None if it does not wait for it."""
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):
        return "service_started" if name in depends_on else None
    if name not in depends_on:
        return None
    condition = (depends_on[name] or {}).get("condition", "service_started")
    return str(condition)


def test_all_services_exist(services: dict[str, Any]) -> None:
    missing = sorted(SERVICES - services.keys())
    assert not missing, f"missing services: {missing}"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_a_healthcheck(services: dict[str, Any], name: str) -> None:
    healthcheck = services[name].get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
    test = healthcheck.get("test")
    assert test, f"{name} has no healthcheck"
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test!r}"


@pytest.mark.parametrize("name", SCALABLE)
def test_scalable_services_have_no_fixed_name_or_ports(services: dict[str, Any], name: str) -> None:
    assert "container_name" not in services[name], f"{name} cannot scale with a container_name"
    assert not services[name].get("ports"), f"{name} cannot scale with published ports"


def test_processes_run_the_right_commands(services: dict[str, Any]) -> None:
    assert command_of(services["migrate"])[-3:] == ["distributor", "db", "upgrade"]
    assert command_of(services["worker"])[-2:] == ["distributor", "worker"]
    assert command_of(services["notice-worker"])[:2] == ["distributor", "worker"]
    assert "--notices-only" in command_of(services["notice-worker"])
    assert command_of(services["scheduler"])[-2:] == ["distributor", "scheduler"]


def test_migrate_runs_once_after_postgres_is_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    # Quoted on purpose: a bare `no` is YAML for false.
    assert migrate.get("restart") == "no", f"migrate restarts: {migrate.get('restart')!r}"
    assert dependency(migrate, "postgres") == "service_healthy"


@pytest.mark.parametrize("name", SCALABLE)
def test_processes_wait_for_migrations_and_the_broker(services: dict[str, Any], name: str) -> None:
    assert dependency(services[name], "migrate") == "service_completed_successfully"
    assert dependency(services[name], "redis") == "service_healthy"


def test_app_services_share_one_environment(services: dict[str, Any]) -> None:
    first, *others = (environment_of(services[name]) for name in APP_SERVICES)
    for name, env in zip(APP_SERVICES[1:], others, strict=True):
        assert env == first, f"{name} is configured differently from {APP_SERVICES[0]}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_is_production_with_postgres_and_redis(
    services: dict[str, Any], name: str
) -> None:
    env = environment_of(services[name])
    assert env.get("DISTRIBUTOR_ENVIRONMENT") == Environment.PRODUCTION.value
    broker_url = env.get("DISTRIBUTOR_BROKER_URL")
    assert variable_default(broker_url, "DISTRIBUTOR_BROKER_URL") == REDIS_BROKER_URL, broker_url
    database_url = env.get("DISTRIBUTOR_DATABASE_URL") or ""
    assert database_url.startswith("postgresql+psycopg://"), database_url
    assert "@postgres:5432/" in database_url, database_url
    assert "mailpit:1025" in (env.get("DISTRIBUTOR_SMTP_URL") or "")


def required_variable(value: str | None, variable: str) -> bool:
    """Whether `value` is exactly `${variable:?message}`: taken from the environment, or fail."""
    return bool(value) and re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", value or "") is not None


@pytest.mark.parametrize("name", APP_SERVICES)
def test_secrets_are_not_hard_coded(services: dict[str, Any], name: str) -> None:
    env = environment_of(services[name])
    assert required_variable(env.get("DISTRIBUTOR_SECRET_KEY"), "DISTRIBUTOR_SECRET_KEY"), env.get(
        "DISTRIBUTOR_SECRET_KEY"
    )
    database_url = env.get("DISTRIBUTOR_DATABASE_URL") or ""
    password = re.search(r"^[^:]+://[^:@/]+:(.*)@[^@]+$", database_url)
    assert password, f"the database URL has no password: {database_url}"
    assert required_variable(password.group(1), "POSTGRES_PASSWORD"), database_url


def test_postgres_password_is_not_hard_coded(services: dict[str, Any]) -> None:
    env = environment_of(services["postgres"])
    assert required_variable(env.get("POSTGRES_PASSWORD"), "POSTGRES_PASSWORD"), env


def test_development_secret_is_nowhere_in_the_file() -> None:
    assert DEVELOPMENT_SECRET not in COMPOSE_FILE.read_text(encoding="utf-8")


def test_postgres_keeps_its_data_in_a_named_volume(compose: dict[str, Any]) -> None:
    named = set((compose.get("volumes") or {}).keys())
    mounts = compose["services"]["postgres"].get("volumes") or []
    sources = {str(m).split(":", 1)[0] if isinstance(m, str) else m.get("source") for m in mounts}
    assert sources & named, f"postgres mounts {mounts!r}, named volumes are {sorted(named)}"


# --- RabbitMQ, the alternative broker behind a profile --------------------------------------


@pytest.fixture(scope="module")
def rabbitmq(services: dict[str, Any]) -> dict[str, Any]:
    found = services.get("rabbitmq")
    assert isinstance(found, dict), "no rabbitmq service"
    return found


def test_rabbitmq_runs_only_under_its_profile(services: dict[str, Any]) -> None:
    assert {name: profiles_of(s) for name, s in services.items() if profiles_of(s)} == {
        name: {profile} for name, profile in PROFILED.items()
    }
    assert active_services(services) == SERVICES
    assert active_services(services, RABBITMQ_PROFILE) == SERVICES | {"rabbitmq"}
    assert active_services(services, MONITORING_PROFILE) == SERVICES | MONITORING_SERVICES


def test_default_services_do_not_wait_for_profiled_ones(services: dict[str, Any]) -> None:
    # Waiting on a service of a profile that is not started makes compose refuse to start.
    waiting = sorted(name for name in SERVICES if set(PROFILED) & depends_on_names(services[name]))
    assert waiting == [], f"these would not start without their profile: {waiting}"


def test_rabbitmq_image_is_pinned_to_a_major_version(rabbitmq: dict[str, Any]) -> None:
    image = str(rabbitmq.get("image", ""))
    assert re.fullmatch(r"rabbitmq:\d+(\.\d+)*(-management)?(-alpine)?", image), image


def test_rabbitmq_healthcheck_pings_the_node(rabbitmq: dict[str, Any]) -> None:
    test = (rabbitmq.get("healthcheck") or {}).get("test") or []
    words = shlex.split(test) if isinstance(test, str) else [str(w) for w in test]
    assert "rabbitmq-diagnostics" in words and "ping" in words, test


def test_rabbitmq_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], rabbitmq: dict[str, Any]
) -> None:
    named = set((compose.get("volumes") or {}).keys())
    mounts = [str(m) for m in rabbitmq.get("volumes") or []]
    assert any(
        m.split(":", 1)[0] in named and m.split(":")[1] == "/var/lib/rabbitmq" for m in mounts
    ), mounts
    # The node's data directory is named after the host, so it must not change between runs.
    assert rabbitmq.get("hostname"), "without a fixed hostname a new container loses the queues"


def test_rabbitmq_publishes_no_amqp_port_and_only_on_loopback(rabbitmq: dict[str, Any]) -> None:
    ports = [str(p) for p in rabbitmq.get("ports") or []]
    assert all(p.startswith("127.0.0.1:") for p in ports), ports
    assert not any(re.search(r"(^|:)5672(/tcp)?$", p) for p in ports), ports


def test_rabbitmq_password_comes_from_the_environment(rabbitmq: dict[str, Any]) -> None:
    env = environment_of(rabbitmq)
    assert variable_default(env.get("RABBITMQ_DEFAULT_PASS"), "RABBITMQ_PASSWORD") == "", env
    # An unset password must stop the broker rather than leave it with a default account.
    entrypoint = rabbitmq.get("entrypoint") or []
    script = entrypoint if isinstance(entrypoint, str) else " ".join(map(str, entrypoint))
    assert 'test -n "$$RABBITMQ_DEFAULT_PASS"' in script, script
    assert "docker-entrypoint.sh rabbitmq-server" in script, script


def test_documented_broker_url_matches_the_rabbitmq_account(rabbitmq: dict[str, Any]) -> None:
    env = environment_of(rabbitmq)
    expected = (
        f"amqp://{env['RABBITMQ_DEFAULT_USER']}:$RABBITMQ_PASSWORD@{rabbitmq['hostname']}:5672/"
        f"{env['RABBITMQ_DEFAULT_VHOST']}"
    )
    for document in (COMPOSE_FILE, DEPLOYMENT_DOC):
        assert expected in document.read_text(encoding="utf-8"), f"{document.name}: {expected}"


def test_mailpit_publishes_its_web_ui(services: dict[str, Any]) -> None:
    mailpit = services["mailpit"]
    assert str(mailpit.get("image", "")).startswith("axllent/mailpit")
    ports = [str(p) for p in mailpit.get("ports") or []]
    assert any(re.search(r"(^|:)8025$", p) for p in ports), f"8025 is not published: {ports}"


# --- the file as docker-compose reads it ---------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    path = shutil.which("docker-compose")
    require(path is not None, "docker-compose")
    assert path is not None
    return path


def run_compose(
    executable: str,
    tmp_path: Path,
    variables: dict[str, str],
    *args: str,
    profiles: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `variables` set: no stray .env, no inherited values."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.touch()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DISTRIBUTOR_", "POSTGRES_", "RABBITMQ_", "COMPOSE_"))
    }
    env.update(variables)
    return subprocess.run(
        [
            executable,
            "--env-file",
            str(empty_env_file),
            "-f",
            str(COMPOSE_FILE),
            *(option for profile in profiles for option in ("--profile", profile)),
            "config",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def failure_message(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr or result.stdout).strip()


def test_docker_compose_accepts_the_file(docker_compose: str, tmp_path: Path) -> None:
    result = run_compose(
        docker_compose,
        tmp_path,
        {"DISTRIBUTOR_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": PASSWORD},
        "-q",
    )
    if result.returncode != 0:
        pytest.fail(f"docker-compose rejects {COMPOSE_FILE.name}:\n{failure_message(result)}")


@pytest.fixture(scope="module")
def resolved(docker_compose: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Read once for the module: the tests only read what docker-compose resolved.
    result = run_compose(
        docker_compose,
        tmp_path_factory.mktemp("resolved"),
        {
            "DISTRIBUTOR_SECRET_KEY": SECRET,
            "POSTGRES_PASSWORD": PASSWORD,
            "DISTRIBUTOR_SMTP_URL": "smtp://relay.example.org:587?starttls=true",
        },
    )
    if result.returncode != 0:
        pytest.fail(f"docker-compose rejects {COMPOSE_FILE.name}:\n{failure_message(result)}")
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize("name", APP_SERVICES)
def test_variables_reach_every_process(resolved: dict[str, Any], name: str) -> None:
    env = environment_of(resolved["services"][name])
    assert env["DISTRIBUTOR_SECRET_KEY"] == SECRET
    assert env["DISTRIBUTOR_BROKER_URL"] == REDIS_BROKER_URL
    assert f":{PASSWORD}@postgres:" in (env["DISTRIBUTOR_DATABASE_URL"] or "")
    assert env["DISTRIBUTOR_SMTP_URL"] == "smtp://relay.example.org:587?starttls=true"
    assert environment_of(resolved["services"]["postgres"])["POSTGRES_PASSWORD"] == PASSWORD


def test_production_settings_accept_the_environment(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("DISTRIBUTOR_"):
            monkeypatch.delenv(key)
    for key, value in environment_of(resolved["services"]["worker"]).items():
        if value is not None:
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert settings.secret_key == SECRET


@pytest.mark.parametrize("missing", REQUIRED_VARIABLES)
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_missing_required_variable_is_refused_by_name(
    docker_compose: str, tmp_path: Path, missing: str, value: str | None
) -> None:
    variables = {"DISTRIBUTOR_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": PASSWORD}
    if value is None:
        del variables[missing]
    else:
        variables[missing] = value
    result = run_compose(docker_compose, tmp_path, variables, "-q")
    assert result.returncode != 0, f"docker-compose accepted the file without {missing}"
    # The tool prints the whole environment it was interpolating; the user's message is last.
    message = failure_message(result).splitlines()[-1].rsplit(": ", 1)[-1]
    assert missing in message, f"the error does not name {missing}: {failure_message(result)}"


def test_docker_compose_accepts_the_rabbitmq_profile(docker_compose: str, tmp_path: Path) -> None:
    variables = {
        "DISTRIBUTOR_SECRET_KEY": SECRET,
        "POSTGRES_PASSWORD": PASSWORD,
        "RABBITMQ_PASSWORD": RABBITMQ_PASSWORD,
        "DISTRIBUTOR_BROKER_URL": RABBITMQ_BROKER_URL,
    }
    result = run_compose(docker_compose, tmp_path, variables, "-q", profiles=(RABBITMQ_PROFILE,))
    if result.returncode != 0:
        pytest.fail(f"docker-compose rejects the rabbitmq profile:\n{failure_message(result)}")


@pytest.fixture(scope="module")
def resolved_with_rabbitmq(
    docker_compose: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    # Read once for the module: the tests only read what docker-compose resolved.
    result = run_compose(
        docker_compose,
        tmp_path_factory.mktemp("resolved_with_rabbitmq"),
        {
            "DISTRIBUTOR_SECRET_KEY": SECRET,
            "POSTGRES_PASSWORD": PASSWORD,
            "RABBITMQ_PASSWORD": RABBITMQ_PASSWORD,
            "DISTRIBUTOR_BROKER_URL": RABBITMQ_BROKER_URL,
        },
        profiles=(RABBITMQ_PROFILE,),
    )
    if result.returncode != 0:
        pytest.fail(f"docker-compose rejects the rabbitmq profile:\n{failure_message(result)}")
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize("name", APP_SERVICES)
def test_broker_url_reaches_every_process(
    resolved_with_rabbitmq: dict[str, Any], name: str
) -> None:
    services = resolved_with_rabbitmq["services"]
    assert environment_of(services[name])["DISTRIBUTOR_BROKER_URL"] == RABBITMQ_BROKER_URL
    rabbitmq_env = environment_of(services["rabbitmq"])
    assert rabbitmq_env["RABBITMQ_DEFAULT_PASS"] == RABBITMQ_PASSWORD


def test_production_settings_accept_rabbitmq(
    resolved_with_rabbitmq: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("DISTRIBUTOR_"):
            monkeypatch.delenv(key)
    for key, value in environment_of(resolved_with_rabbitmq["services"]["worker"]).items():
        if value is not None:
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert settings.broker_url == RABBITMQ_BROKER_URL


# --- health checks that ask the processes themselves ------------------------------------------


def healthcheck_words(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test") or []
    return shlex.split(test) if isinstance(test, str) else [str(word) for word in test]


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("worker", ["distributor", "health", "worker", "--this-host"]),
        ("notice-worker", ["distributor", "health", "worker", "--this-host"]),
        ("scheduler", ["distributor", "health", "scheduler", "--this-host"]),
    ],
)
def test_process_health_checks_ask_the_database_and_the_broker(
    services: dict[str, Any], name: str, command: list[str]
) -> None:
    assert healthcheck_words(services[name]) == ["CMD", *command]
    # The command loads the whole CLI (a second or two) and a worker's waits a second for
    # the broker's answers: a 5 s timeout would fail a healthy container on a busy machine.
    timeout = str(services[name]["healthcheck"]["timeout"])
    assert int(timeout.removesuffix("s")) >= 10, timeout


@pytest.mark.parametrize("name", APP_SERVICES)
def test_health_check_commands_are_ones_the_cli_knows(services: dict[str, Any], name: str) -> None:
    words = healthcheck_words(services[name])
    if words[1:2] != ["distributor"]:
        return
    result = CliRunner().invoke(cli_app, [*words[2:], "--help"])
    assert result.exit_code == 0, f"{name}: {' '.join(words[1:])} is refused:\n{result.output}"


def test_the_web_app_is_healthy_when_ready(services: dict[str, Any]) -> None:
    words = healthcheck_words(services["web"])
    assert any("http://127.0.0.1:8000/readyz" in word for word in words), words


# --- Flower, Prometheus and Grafana -----------------------------------------------------------


def test_flower_watches_the_installations_broker_on_this_host_only(
    services: dict[str, Any],
) -> None:
    flower = services["flower"]
    assert re.fullmatch(r"mher/flower:\d+\.\d+(\.\d+)?", str(flower.get("image"))), flower
    env = environment_of(flower)
    broker_url = env.get("CELERY_BROKER_URL")
    assert variable_default(broker_url, "DISTRIBUTOR_BROKER_URL") == REDIS_BROKER_URL, broker_url
    # Passed through when set; Flower then asks for a login.
    assert "FLOWER_BASIC_AUTH" in env and env["FLOWER_BASIC_AUTH"] is None
    assert dependency(flower, "redis") == "service_healthy"
    assert [str(p) for p in flower.get("ports") or []] == ["127.0.0.1:5555:5555"]
    assert any("/healthcheck" in word for word in healthcheck_words(flower))


@pytest.mark.parametrize("name", sorted(MONITORING_SERVICES))
def test_monitoring_ui_is_published_on_this_host_only(services: dict[str, Any], name: str) -> None:
    ports = [str(p) for p in services[name].get("ports") or []]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), ports
    assert re.fullmatch(r"[a-z/-]+:v?\d+\.\d+\.\d+", str(services[name]["image"]))


def mounts_of(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (source, mode) of the service's bind mounts and volumes."""
    found = {}
    for mount in service.get("volumes") or []:
        source, target, *mode = str(mount).split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def test_prometheus_loads_the_configuration_and_rules_kept_in_the_repository(
    services: dict[str, Any],
) -> None:
    prometheus = services["prometheus"]
    assert mounts_of(prometheus)["/etc/prometheus"] == ("./deploy/prometheus", "ro")
    assert "--config.file=/etc/prometheus/prometheus.yml" in command_of(prometheus)
    assert PROMETHEUS_CONFIG.is_file()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file(), rule_file
    # It scrapes the web service on the port the web app listens on.
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "distributor"]
    web = command_of(services["web"])
    assert job["static_configs"] == [{"targets": [f"web:{web[web.index('--port') + 1]}"]}]


def test_grafana_loads_the_provisioning_and_dashboard_kept_in_the_repository(
    services: dict[str, Any],
) -> None:
    mounts = mounts_of(services["grafana"])
    assert mounts["/etc/grafana/provisioning"] == ("./deploy/grafana/provisioning", "ro")
    assert mounts["/etc/grafana/dashboards"] == ("./deploy/grafana/dashboards", "ro")
    root = COMPOSE_FILE.parent
    assert (root / "deploy/grafana/provisioning/datasources").is_dir()
    assert list((root / "deploy/grafana/dashboards").glob("*.json"))
    assert dependency(services["grafana"], "prometheus") == "service_healthy"


def test_grafana_refuses_to_start_without_a_password(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    env = environment_of(grafana)
    password = env.get("GF_SECURITY_ADMIN_PASSWORD")
    assert variable_default(password, "GRAFANA_ADMIN_PASSWORD") == "", password
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    entrypoint = grafana.get("entrypoint") or []
    script = entrypoint if isinstance(entrypoint, str) else " ".join(map(str, entrypoint))
    assert 'test -n "$$GF_SECURITY_ADMIN_PASSWORD"' in script, script
    assert "exec /run.sh" in script, script


def test_the_monitoring_doc_says_how_to_start_the_profile() -> None:
    text = MONITORING_DOC.read_text(encoding="utf-8")
    assert f"--profile {MONITORING_PROFILE}" in text
    assert "GRAFANA_ADMIN_PASSWORD" in text


def test_docker_compose_accepts_the_monitoring_profile(docker_compose: str, tmp_path: Path) -> None:
    variables = {
        "DISTRIBUTOR_SECRET_KEY": SECRET,
        "POSTGRES_PASSWORD": PASSWORD,
        "GRAFANA_ADMIN_PASSWORD": GRAFANA_PASSWORD,
    }
    result = run_compose(docker_compose, tmp_path, variables, profiles=(MONITORING_PROFILE,))
    if result.returncode != 0:
        pytest.fail(f"docker-compose rejects the monitoring profile:\n{failure_message(result)}")
    config = yaml.safe_load(result.stdout)
    resolved = config["services"]
    assert environment_of(resolved["grafana"])["GF_SECURITY_ADMIN_PASSWORD"] == GRAFANA_PASSWORD
    # Every bind mount resolves to a folder of the repository.
    for name in MONITORING_SERVICES:
        for source, _ in mounts_of(resolved[name]).values():
            if source.startswith("/"):
                assert Path(source).is_dir(), f"{name} mounts {source}, which does not exist"


# --- every command and variable is one the application knows --------------------------------


def parsed_by_the_cli(words: list[str]) -> dict[str, Any]:
    """The options `distributor WORDS` would run with, parsed and converted as the CLI does,
    without running it; a usage error names what the CLI refuses."""
    command: Any = typer.main.get_command(cli_app)
    context = command.make_context("distributor", list(words))
    while hasattr(command, "resolve_command"):  # a group: on to its subcommand
        remaining = [*context._protected_args, *context.args]
        name, command, rest = command.resolve_command(context, remaining)
        context = command.make_context(name, rest, parent=context)
    params: dict[str, Any] = context.params
    return params


def distributor_commands(services: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Every `distributor ...` a service runs: its command and its health check."""
    found = []
    for name, service in services.items():
        for words in (command_of(service), healthcheck_words(service)[1:]):
            if words[:1] == ["distributor"]:
                found.append((name, words[1:]))
    return found


def test_every_distributor_command_in_the_file_parses_with_its_options(
    services: dict[str, Any],
) -> None:
    commands = distributor_commands(services)
    # migrate, worker, notice-worker, scheduler and web: each a command, most a health check
    assert len(commands) >= 8, commands
    for name, words in commands:
        try:
            parsed_by_the_cli(words)
        except Exception as exc:
            pytest.fail(f"{name}: `distributor {' '.join(words)}` is refused: {exc}")
    notices = parsed_by_the_cli(command_of(services["notice-worker"])[1:])
    assert (notices["notices_only"], notices["concurrency"]) == (True, 1)


def test_the_image_holds_what_every_app_health_check_runs(services: dict[str, Any]) -> None:
    # The image is python:3.11-slim with distributor installed: nothing else is on its path.
    for name in APP_SERVICES:
        words = healthcheck_words(services[name])
        if words:
            assert words[1] in ("distributor", "python"), f"{name} runs {words[1]!r}"


def test_every_distributor_variable_passed_in_is_a_setting(compose: dict[str, Any]) -> None:
    env = compose["x-distributor-env"]
    names = {f"DISTRIBUTOR_{field.upper()}" for field in Settings.model_fields}
    unknown = sorted(v for v in env if v.startswith("DISTRIBUTOR_") and v not in names)
    assert unknown == [], f"docker-compose.yml passes variables no setting reads: {unknown}"
    for monitoring in ("METRICS_TOKEN", "ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET"):
        assert f"DISTRIBUTOR_{monitoring}" in env, monitoring


def test_the_web_app_posts_alerts_when_the_webhook_is_given(
    docker_compose: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhook = {
        "DISTRIBUTOR_ALERT_WEBHOOK_URL": "https://alerts.example.org/hook",
        "DISTRIBUTOR_ALERT_WEBHOOK_SECRET": "a-long-shared-secret-0123456789",
    }
    result = run_compose(
        docker_compose,
        tmp_path,
        {"DISTRIBUTOR_SECRET_KEY": SECRET, "POSTGRES_PASSWORD": PASSWORD, **webhook},
    )
    assert result.returncode == 0, failure_message(result)
    web = environment_of(yaml.safe_load(result.stdout)["services"]["web"])
    assert {name: web[name] for name in webhook} == webhook
    for key in list(os.environ):
        if key.startswith("DISTRIBUTOR_"):
            monkeypatch.delenv(key)
    for key, value in web.items():
        if value is not None:
            monkeypatch.setenv(key, value)
    assert Settings().alert_webhook_url == webhook["DISTRIBUTOR_ALERT_WEBHOOK_URL"]
