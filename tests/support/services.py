"""Real local services for the tests: skipped on a laptop without them, a failure under CI."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu.connection
import kombu.entity
import psycopg
import pytest
import redis
from kombu.exceptions import OperationalError

POSTGRES_ADMIN_URL = os.environ.get(
    "DISTRIBUTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DISTRIBUTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get(
    "DISTRIBUTOR_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"
)


def require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is not reachable, and CI must run every test")
    pytest.skip(f"{what} is not reachable")


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping())
    except redis.RedisError:
        return False


def rabbitmq_connection(url: str, *, timeout: float = 10.0) -> Any:
    """A kombu connection, used untyped: kombu's type hints are partial."""
    connection_class: Any = kombu.connection.Connection
    return connection_class(url, connect_timeout=timeout)


def rabbitmq_available() -> bool:
    connection = rabbitmq_connection(RABBITMQ_URL, timeout=3)
    try:
        connection.ensure_connection(max_retries=0)
        return True
    except (OSError, OperationalError, *connection.connection_errors, *connection.channel_errors):
        return False
    finally:
        connection.release()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new empty database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    require(postgres_available(), "PostgreSQL")
    name = f"distributor_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_redis_queue() -> tuple[str, str]:
    """The broker URL and a queue name no other test uses."""
    require(redis_available(), "Redis")
    return REDIS_URL, f"distributor-test-{uuid.uuid4().hex[:12]}"


def fresh_rabbitmq_queue() -> tuple[str, str]:
    """The broker URL and a queue name no other test uses; delete it with delete_rabbitmq_queue."""
    require(rabbitmq_available(), "RabbitMQ")
    return RABBITMQ_URL, f"distributor-test-{uuid.uuid4().hex[:12]}"


def rabbitmq_queue(name: str) -> Any:
    """The queue as Celery declares its default queue: a direct exchange of the same name."""
    queue_class: Any = kombu.entity.Queue
    exchange_class: Any = kombu.entity.Exchange
    return queue_class(name, exchange_class(name, type="direct"), routing_key=name)


def purge_rabbitmq_queue(url: str, name: str, *, timeout: float = 10.0) -> int:
    """Drop every message waiting on the queue; returns how many there were.

    Publishing is asynchronous on AMQP, so this first waits until the queue holds a message.
    """
    with rabbitmq_connection(url) as connection:
        queue = rabbitmq_queue(name)(connection.default_channel)
        deadline = time.monotonic() + timeout
        while queue.queue_declare(passive=True).message_count == 0:
            assert time.monotonic() < deadline, f"no message reached {name} in {timeout:g} s"
            time.sleep(0.05)
        return int(queue.purge() or 0)


def delete_rabbitmq_queue(url: str, name: str) -> None:
    """Delete the queue and its exchange, if they exist; nothing else on the broker is touched."""
    with rabbitmq_connection(url) as connection:
        queue = rabbitmq_queue(name)(connection.default_channel)
        queue.delete()
        queue.exchange.delete()
