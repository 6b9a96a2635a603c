"""Timings that cannot work together are refused at start-up, naming the settings to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from distributor.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


def refusal(tmp_path: Path, **values: object) -> str:
    with pytest.raises(ValidationError) as refused:
        settings(tmp_path, **values)
    message = str(refused.value)
    assert "settings that contradict each other" in message
    return message


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(
            {"arm_lead_seconds": 60.0, "redispatch_after_seconds": 62.0},
            ("DISTRIBUTOR_REDISPATCH_AFTER_SECONDS (62)", "DISTRIBUTOR_ARM_LEAD_SECONDS (60)"),
            id="redispatch-within-arming-lead",
        ),
        pytest.param(
            {"lease_seconds": 5.0, "scheduler_interval_seconds": 2.0},
            ("DISTRIBUTOR_LEASE_SECONDS (5)", "DISTRIBUTOR_SCHEDULER_INTERVAL_SECONDS"),
            id="lease-shorter-than-three-ticks",
        ),
        pytest.param(
            {"task_time_limit_seconds": 100.0, "smtp_timeout_seconds": 30.0},
            (
                "DISTRIBUTOR_TASK_TIME_LIMIT_SECONDS (100)",
                "DISTRIBUTOR_SMTP_TIMEOUT_SECONDS = 30",
            ),
            id="task-limit-under-four-relay-timeouts",
        ),
        pytest.param(
            {
                "broker_url": REDIS,
                "broker_visibility_timeout_seconds": 1000.0,
                "task_time_limit_seconds": 600.0,
            },
            (
                "DISTRIBUTOR_BROKER_VISIBILITY_TIMEOUT_SECONDS (1000)",
                "DISTRIBUTOR_TASK_TIME_LIMIT_SECONDS",
            ),
            id="visibility-timeout-under-two-batch-lives",
        ),
        pytest.param(
            {"retry_window_seconds": 20.0, "retry_initial_seconds": 30.0},
            ("DISTRIBUTOR_RETRY_WINDOW_SECONDS", "DISTRIBUTOR_RETRY_INITIAL_SECONDS"),
            id="retry-window-shorter-than-first-wait",
        ),
    ],
)
def test_each_contradiction_is_refused_naming_both_settings(
    tmp_path: Path, values: dict[str, object], named: tuple[str, str]
) -> None:
    message = refusal(tmp_path, **values)
    for name in named:
        assert name in message


def test_the_defaults_and_values_just_inside_each_limit_are_accepted(tmp_path: Path) -> None:
    settings(tmp_path)
    settings(tmp_path, broker_url=REDIS)
    settings(
        tmp_path,
        arm_lead_seconds=60.0,
        redispatch_after_seconds=62.5,
        lease_seconds=6.0,
        scheduler_interval_seconds=2.0,
        task_time_limit_seconds=120.0,
        smtp_timeout_seconds=30.0,
        retry_window_seconds=30.0,
        retry_initial_seconds=30.0,
        broker_url=REDIS,
        broker_visibility_timeout_seconds=2 * (120.0 + 30 + 60.0),
    )


def test_the_visibility_timeout_matters_only_for_a_broker_that_redelivers_after_it(
    tmp_path: Path,
) -> None:
    # The embedded broker and RabbitMQ never hand a running batch to a second worker.
    settings(tmp_path, broker_visibility_timeout_seconds=10.0)
    settings(
        tmp_path,
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
        broker_visibility_timeout_seconds=10.0,
    )
    message = refusal(
        tmp_path,
        broker_url="rediss://redis.example.org:6380/0",
        broker_visibility_timeout_seconds=10.0,
    )
    assert "DISTRIBUTOR_BROKER_VISIBILITY_TIMEOUT_SECONDS (10)" in message


def test_every_contradiction_is_reported_at_once(tmp_path: Path) -> None:
    message = refusal(
        tmp_path,
        arm_lead_seconds=60.0,
        redispatch_after_seconds=30.0,
        retry_window_seconds=10.0,
        retry_initial_seconds=30.0,
    )
    assert "DISTRIBUTOR_REDISPATCH_AFTER_SECONDS (30)" in message
    assert "DISTRIBUTOR_RETRY_WINDOW_SECONDS is shorter" in message
