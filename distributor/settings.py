"""One typed settings object, read from DISTRIBUTOR_* variables at the edge and passed in."""

from __future__ import annotations

import enum
import os
import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from distributor.database import check_database_url
from distributor.engine.domain_limits import read_domain_limits
from distributor.errors import ConfigurationError
from distributor.logs import LogFormat
from distributor.transport.smtp import relay_address_from_url

DEFAULT_DATA_DIR = Path("var")
EMBEDDED_BROKER = "filesystem://"
DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 - refused outside development
# Where unsubscribe links point while developing, when no public address is configured.
DEVELOPMENT_BASE_URL = "http://localhost:8000"
HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 - a name, not a bind
# Batches reach workers this long before the embargo (see engine.tick.SchedulerPolicy).
PREPARE_AHEAD_SECONDS = 2
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
# Shorter than this, a token or a signing secret can be guessed by a patient caller.
MINIMUM_SECRET_CHARS = 16
# The hard time limit of a batch task is its soft limit plus this.
TIME_LIMIT_GRACE_SECONDS = 30
# Bounds of the durations: beyond them a value is a typing mistake (and past what a
# timedelta holds, for an absurd one).
HOUR = 3600
DAY = 24 * HOUR


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"  # embedded defaults allowed
    PRODUCTION = "production"  # insecure or embedded defaults refused


class Settings(BaseSettings):
    # No inf or nan: a duration of either would be accepted here and fail at a lift.
    model_config = SettingsConfigDict(
        env_prefix="DISTRIBUTOR_", extra="ignore", allow_inf_nan=False
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Local state: SQLite file, broker folder.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means a SQLite file under data_dir."
    )
    broker_url: str = Field(
        EMBEDDED_BROKER, description="Celery broker; filesystem:// needs no server."
    )
    queue_name: str = Field("distributor", description="Celery queue the batches travel on.")
    smtp_url: str = Field(
        "smtp://127.0.0.1:2525", description="Mail relay; the default is the local catcher."
    )
    smtp_timeout_seconds: float = Field(30.0, gt=0, le=HOUR)
    smtp_connections: int = Field(
        # Measured (docs/benchmarks.md): on 2 CPUs with 3 processes, 16 reached 1,451 msg/s
        # to a relay 20 ms away, 32 reached 2,044 and 64 fell back to 1,632 (the event loop
        # then spends more on connections than they return).
        32,
        ge=1,
        le=500,
        description="Relay connections each worker process keeps busy at once; a relay far "
        "away needs many (each message waits a round trip or two).",
    )
    rate_per_second: float | None = Field(
        None,
        gt=0,
        le=1_000_000,
        description="Messages a second to the relay from the whole installation (every "
        "process on every machine); empty: no limit.",
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Relay connections open at once in the whole installation, on top of "
        "smtp_connections per process; empty: no cap.",
    )
    domain_limits_path: Path | None = Field(
        None,
        description='TOML file of limits per recipient domain: [domains] "gmail.com" = 20 '
        "(messages a second), on top of rate_per_second.",
    )
    daily_quota: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="Messages a UTC day from the whole installation; what is over it is held "
        "until the next day. Empty: no quota.",
    )
    outbox_dir: Path | None = Field(
        None, description="Where the local catcher writes .eml files; default data_dir/outbox."
    )
    from_address: str = "press@example.org"
    from_name: str = "Press Office"
    message_id_domain: str = Field("distributor.local", description="Right side of Message-IDs.")
    secret_key: str = DEVELOPMENT_SECRET
    batch_size: int = Field(500, ge=1, le=100_000, description="Deliveries per worker task.")
    claim_chunk: int = Field(
        250,
        ge=1,
        le=100_000,
        description="Deliveries claimed per conditional UPDATE inside a batch.",
    )
    scheduler_interval_seconds: float = Field(1.0, gt=0, le=60, description="Time between ticks.")
    arm_lead_seconds: float = Field(
        10.0, gt=0, le=300, description="How long before the embargo batches reach workers."
    )
    redispatch_after_seconds: float = Field(
        60.0,
        gt=0,
        le=DAY,
        description="Re-send a batch's work to the broker when it lies idle this long.",
    )
    lease_seconds: float = Field(
        15.0,
        ge=3,
        le=600,
        description="A worker's hold on a batch; renewed every third of it while the worker "
        "lives, taken over this long after it dies.",
    )
    retry_initial_seconds: float = Field(
        30.0, gt=0, le=DAY, description="Wait after a first temporary failure; doubles each time."
    )
    retry_window_seconds: float = Field(
        7200.0,
        gt=0,
        le=30 * DAY,
        description="How long after its first attempt a delivery is retried before it fails "
        "as expired.",
    )
    relay_backoff_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="First pause after the relay is found down; doubles, up to 5 min.",
    )
    max_lateness: float = Field(
        900.0,
        ge=0,
        le=30 * DAY,
        description="Seconds after the embargo within which a send that nothing sent still "
        "goes out on recovery; later it is held for an admin.",
    )
    task_time_limit_seconds: float = Field(
        600.0, ge=30, le=DAY, description="Longest a worker may spend on one batch."
    )
    broker_visibility_timeout_seconds: float = Field(
        3600.0,
        gt=0,
        le=30 * DAY,
        description="When Redis hands an unacknowledged batch message to another worker.",
    )
    log_format: LogFormat = Field(LogFormat.HUMAN, description="human or json.")
    worker_concurrency: int = Field(
        0, ge=0, le=1024, description="Worker processes; 0 means one per CPU plus one."
    )
    templates_dir: Path | None = Field(
        None, description="Email templates; default the bundled ones."
    )
    reply_to_address: str = Field("", description="Reply-To of every release; empty: from_address.")
    public_base_url: str = Field(
        "",
        description="Public https address of the web app, for one-click unsubscribe links; "
        "empty: http://localhost:8000 in development, no https link in production.",
    )
    unsubscribe_domain: str = Field(
        "", description="Domain of the mailto unsubscribe address; empty: from_address's domain."
    )
    bounce_domain: str = Field(
        "", description="Domain of the per-delivery (VERP) envelope sender; empty: from's domain."
    )
    list_id: str = Field("", description="List-Id; empty: releases.<message_id_domain>.")
    dkim_private_key_path: Path | None = Field(
        None, description="PEM RSA private key; messages are DKIM-signed when set."
    )
    dkim_selector: str = Field("", description="DKIM selector (s=); required with a key.")
    dkim_domain: str = Field("", description="DKIM signing domain (d=); empty: from's domain.")
    dkim_ed25519_private_key_path: Path | None = Field(
        None,
        description="PEM Ed25519 private key (RFC 8463); signs alone, or beside the RSA key "
        "under its own selector.",
    )
    dkim_ed25519_selector: str = Field(
        "", description="Selector of the Ed25519 key; required with it, not the RSA one's."
    )
    brand_primary_colour: str = Field(
        "#1d3557", pattern=HEX_COLOUR, description="Header colour when a release has no brand."
    )
    brand_accent_colour: str = Field(
        "#a4161a", pattern=HEX_COLOUR, description="Embargo banner colour without a brand."
    )
    max_attachment_bytes: int = Field(
        10_000_000,
        ge=0,
        le=1_000_000_000,
        description="Largest total of a release's images and attachments.",
    )
    max_embargo_days: int = Field(
        730,
        ge=1,
        le=3650,
        description="Furthest ahead an embargo may be set, in days: a later one is most "
        "likely a mistyped year.",
    )
    bounce_rate_limit: float = Field(
        0.05,
        gt=0,
        le=1,
        description="A send pauses itself when more than this fraction of its delivered "
        "messages bounced hard.",
    )
    complaint_rate_limit: float = Field(
        0.003,
        gt=0,
        le=1,
        description="A send pauses itself when more than this fraction of its delivered "
        "messages were reported as spam (Gmail asks for under 0.3 %).",
    )
    reputation_minimum_delivered: int = Field(
        100,
        ge=1,
        le=10_000_000,
        description="The bounce and complaint rates of a send are judged only once this many "
        "of its messages were delivered.",
    )
    metrics_token: str = Field(
        "",
        description="When set, /metrics answers only a request bearing it (Authorization: "
        "Bearer ...); at least 16 characters. Empty: /metrics needs no token.",
    )
    alert_webhook_url: str = Field(
        "",
        description="http(s) address that `distributor web` posts each alert's start and end "
        "to, as signed JSON; empty: no posts.",
    )
    alert_webhook_secret: str = Field(
        "",
        description="Shared with the webhook's receiver: the key of each post's HMAC-SHA256 "
        "signature; required with the URL, at least 16 characters.",
    )

    @model_validator(mode="after")
    def _refuse_unusable_urls(self) -> Self:
        """URLs are parsed now, so that a mistyped one stops every command at start-up
        rather than the first query, or the lift."""
        problems = []
        if self.database_url:
            try:
                check_database_url(self.database_url)
            except ConfigurationError as exc:
                problems.append(str(exc))
        try:
            relay_address_from_url(self.smtp_url, timeout=self.smtp_timeout_seconds)
        except ConfigurationError as exc:
            problems.append(f"DISTRIBUTOR_SMTP_URL: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_header_values(self) -> Self:
        """Values that end up in headers or SMTP commands: one line, no spaces, no brackets."""
        for name in (
            "from_address",
            "reply_to_address",
            "message_id_domain",
            "unsubscribe_domain",
            "bounce_domain",
            "list_id",
            "dkim_selector",
            "dkim_domain",
            "public_base_url",
        ):
            value: str = getattr(self, name)
            bad = [c for c in value if c in '<>"\\' or c.isspace() or _is_control(c)]
            if bad:
                raise ValueError(
                    f"DISTRIBUTOR_{name.upper()} contains {bad[0]!r}; it goes into mail headers, "
                    "so give it without spaces, line breaks, quotes or angle brackets"
                )
        for name in ("from_address", "reply_to_address"):
            value = getattr(self, name)
            if value and value.count("@") != 1:
                raise ValueError(f"DISTRIBUTOR_{name.upper()} must be one address, name@domain")
        if self.public_base_url:
            parts = urlsplit(self.public_base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    "DISTRIBUTOR_PUBLIC_BASE_URL must be an http(s) address such as "
                    "https://press.example.org"
                )
        if self.dkim_private_key_path is not None and not self.dkim_selector:
            raise ValueError(
                "DISTRIBUTOR_DKIM_SELECTOR is empty; a DKIM key needs the selector its public "
                "key is published under (selector._domainkey.domain)"
            )
        if self.dkim_ed25519_private_key_path is not None and (
            not self.dkim_ed25519_selector or self.dkim_ed25519_selector == self.dkim_selector
        ):
            raise ValueError(
                "DISTRIBUTOR_DKIM_ED25519_SELECTOR must be set, and differ from "
                "DISTRIBUTOR_DKIM_SELECTOR: each key is published under a selector of its own"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unusable_monitoring(self) -> Self:
        """The token and the webhook are checked at start-up: a mistyped webhook would
        otherwise be found only when the first alert could not be posted."""
        problems = []
        token = self.metrics_token.strip()
        if token and len(token) < MINIMUM_SECRET_CHARS:
            problems.append(
                f"DISTRIBUTOR_METRICS_TOKEN is {len(token)} characters long; give it at least "
                f"{MINIMUM_SECRET_CHARS} random ones (openssl rand -hex 32), or unset it"
            )
        if self.alert_webhook_url:
            parts = urlsplit(self.alert_webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(
                    "DISTRIBUTOR_ALERT_WEBHOOK_URL must be an http(s) address such as "
                    "https://alerts.example.org/hook"
                )
            secret = self.alert_webhook_secret
            if not secret:
                problems.append(
                    "DISTRIBUTOR_ALERT_WEBHOOK_URL is set without "
                    "DISTRIBUTOR_ALERT_WEBHOOK_SECRET: set a long random secret, shared with "
                    "the receiver, to sign the posts with"
                )
            elif len(secret) < MINIMUM_SECRET_CHARS:
                problems.append(
                    f"DISTRIBUTOR_ALERT_WEBHOOK_SECRET is {len(secret)} characters long; give "
                    f"it at least {MINIMUM_SECRET_CHARS} random ones (openssl rand -hex 32)"
                )
        elif self.alert_webhook_secret:
            problems.append(
                "DISTRIBUTOR_ALERT_WEBHOOK_SECRET is set without DISTRIBUTOR_ALERT_WEBHOOK_URL: "
                "set the address to post the alerts to, or unset the secret"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_contradictions(self) -> Self:
        """Timings that cannot work together, refused at start-up rather than at a lift."""
        problems = []
        if self.redispatch_after_seconds <= self.arm_lead_seconds + PREPARE_AHEAD_SECONDS:
            problems.append(
                f"DISTRIBUTOR_REDISPATCH_AFTER_SECONDS ({self.redispatch_after_seconds:g}) must "
                f"be longer than DISTRIBUTOR_ARM_LEAD_SECONDS ({self.arm_lead_seconds:g}) plus "
                f"{PREPARE_AHEAD_SECONDS} s: a batch queued ahead of its embargo would be queued "
                "again before any worker could start it"
            )
        if self.lease_seconds < 3 * self.scheduler_interval_seconds:
            problems.append(
                f"DISTRIBUTOR_LEASE_SECONDS ({self.lease_seconds:g}) must be at least three "
                f"scheduler ticks (DISTRIBUTOR_SCHEDULER_INTERVAL_SECONDS = "
                f"{self.scheduler_interval_seconds:g})"
            )
        if self.task_time_limit_seconds < 4 * self.smtp_timeout_seconds:
            problems.append(
                f"DISTRIBUTOR_TASK_TIME_LIMIT_SECONDS ({self.task_time_limit_seconds:g}) must be "
                f"at least four relay timeouts (DISTRIBUTOR_SMTP_TIMEOUT_SECONDS = "
                f"{self.smtp_timeout_seconds:g}), or a slow relay ends every batch"
            )
        limit = self.task_time_limit_seconds + TIME_LIMIT_GRACE_SECONDS + self.arm_lead_seconds
        if (
            self.broker_has_visibility_timeout
            and 2 * limit > self.broker_visibility_timeout_seconds
        ):
            problems.append(
                f"DISTRIBUTOR_BROKER_VISIBILITY_TIMEOUT_SECONDS "
                f"({self.broker_visibility_timeout_seconds:g}) must be at least twice a batch's "
                f"longest life ({limit:g} s: DISTRIBUTOR_TASK_TIME_LIMIT_SECONDS, its "
                f"{TIME_LIMIT_GRACE_SECONDS} s grace and DISTRIBUTOR_ARM_LEAD_SECONDS), or the "
                "broker hands a running batch to a second worker"
            )
        if self.retry_window_seconds < self.retry_initial_seconds:
            problems.append(
                "DISTRIBUTOR_RETRY_WINDOW_SECONDS is shorter than DISTRIBUTOR_RETRY_INITIAL_SECONDS"
                ", so nothing would ever be retried"
            )
        if problems:
            raise ValueError("settings that contradict each other: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _refuse_unusable_limits(self) -> Self:
        """Limits are shared through Redis, or a file in the embedded mode: refused where
        neither exists rather than held per process, which is no limit at all."""
        if self.domain_limits_path is not None:
            try:
                read_domain_limits(self.domain_limits_path)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        if self.has_limits and self.pacing_store_kind is None:
            raise ValueError(
                "DISTRIBUTOR_RATE_PER_SECOND, DISTRIBUTOR_MAX_CONNECTIONS, "
                "DISTRIBUTOR_DOMAIN_LIMITS_PATH and DISTRIBUTOR_DAILY_QUOTA are shared by "
                "every worker through Redis (a redis:// or rediss:// broker) or, in the "
                f"embedded mode, a file under the data folder; the broker {self.broker_url!r} "
                "offers neither, so unset them or use one of those brokers"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            problems = []
            if self.secret_key == DEVELOPMENT_SECRET:
                problems.append("DISTRIBUTOR_SECRET_KEY is the development default")
            if self.broker_url == EMBEDDED_BROKER:
                problems.append("DISTRIBUTOR_BROKER_URL is the embedded filesystem broker")
            if not self.database_url or self.database_url.startswith("sqlite"):
                problems.append("DISTRIBUTOR_DATABASE_URL is SQLite")
            if self.public_base_url:
                parts = urlsplit(self.public_base_url)
                if parts.scheme != "https" or (parts.hostname or "") in LOCAL_HOSTS:
                    problems.append(
                        "DISTRIBUTOR_PUBLIC_BASE_URL is not a public https address "
                        "(one-click unsubscribe needs https)"
                    )
            if problems:
                raise ValueError("refusing to run in production with: " + "; ".join(problems))
        return self

    @property
    def max_embargo_ahead(self) -> timedelta:
        return timedelta(days=self.max_embargo_days)

    @property
    def has_limits(self) -> bool:
        return (
            self.rate_per_second is not None
            or self.max_connections is not None
            or self.domain_limits_path is not None
            or self.daily_quota is not None
        )

    @property
    def domain_limits(self) -> dict[str, float]:
        """Messages a second by recipient domain (read from DOMAIN_LIMITS_PATH)."""
        if self.domain_limits_path is None:
            return {}
        return read_domain_limits(self.domain_limits_path)

    @property
    def pacing_store_kind(self) -> str | None:
        """Where the installation's limits are shared: "redis", "local", or None (nowhere)."""
        if self.broker_url == EMBEDDED_BROKER:
            return "local"
        if urlsplit(self.broker_url).scheme in ("redis", "rediss"):
            return "redis"
        return None

    @property
    def pacing_store_path(self) -> Path:
        """The embedded mode's pacing file."""
        return self.data_dir / "pacing.sqlite3"

    @property
    def broker_is_amqp(self) -> bool:
        return urlsplit(self.broker_url).scheme in AMQP_SCHEMES

    @property
    def broker_has_visibility_timeout(self) -> bool:
        """Redis redelivers an unacknowledged message after its visibility timeout."""
        return urlsplit(self.broker_url).scheme in ("redis", "rediss", "sentinel")

    @property
    def effective_worker_concurrency(self) -> int:
        # A sender waits on the relay and the database for about half of each message, so
        # one process more than there are CPUs keeps them busy: on 2 CPUs, 3 processes sent
        # 3,261 msg/s where 2 sent 2,828 (make bench, 10,000 recipients).
        return self.worker_concurrency or (os.cpu_count() or 1) + 1

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'distributor.sqlite3'}"

    @property
    def effective_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def effective_templates_dir(self) -> Path:
        if self.templates_dir is not None:
            return self.templates_dir
        source_tree = Path(__file__).resolve().parent.parent / "templates"
        if source_tree.is_dir():
            return source_tree
        return Path(__file__).resolve().parent / "_templates"

    @property
    def sender_domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    @property
    def effective_reply_to(self) -> str:
        return self.reply_to_address or self.from_address

    @property
    def effective_public_base_url(self) -> str | None:
        """Where unsubscribe links point; None when there is no public web address."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        if self.environment is Environment.DEVELOPMENT:
            return DEVELOPMENT_BASE_URL
        return None

    @property
    def effective_unsubscribe_domain(self) -> str:
        return self.unsubscribe_domain or self.sender_domain

    @property
    def effective_bounce_domain(self) -> str:
        return self.bounce_domain or self.sender_domain

    @property
    def effective_list_id(self) -> str:
        return self.list_id or f"releases.{self.message_id_domain}"

    @property
    def effective_dkim_domain(self) -> str:
        return self.dkim_domain or self.sender_domain


def _is_control(character: str) -> bool:
    return unicodedata.category(character) in ("Cc", "Zl", "Zp")
