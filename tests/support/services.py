"""Real local services for the tests: skipped on a laptop without them, a failure under CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "DISTRIBUTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DISTRIBUTOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
