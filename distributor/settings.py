"""One typed settings object, read from DISTRIBUTOR_* variables at the edge and passed in."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")
EMBEDDED_BROKER = "filesystem://"
DEVELOPMENT_SECRET = "development-only-secret"  # noqa: S105 - refused outside development


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"  # embedded defaults allowed
    PRODUCTION = "production"  # insecure or embedded defaults refused


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISTRIBUTOR_", extra="ignore")

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
    smtp_timeout_seconds: float = 30.0
    outbox_dir: Path | None = Field(
        None, description="Where the local catcher writes .eml files; default data_dir/outbox."
    )
    from_address: str = "press@example.org"
    from_name: str = "Press Office"
    message_id_domain: str = Field("distributor.local", description="Right side of Message-IDs.")
    secret_key: str = DEVELOPMENT_SECRET
    batch_size: int = Field(500, ge=1, description="Deliveries per worker task.")
    claim_chunk: int = Field(
        100, ge=1, description="Deliveries claimed per conditional UPDATE inside a batch."
    )
    scheduler_interval_seconds: float = Field(1.0, gt=0, description="Time between ticks.")
    arm_lead_seconds: float = Field(
        10.0, gt=0, le=300, description="How long before the embargo batches reach workers."
    )
    redispatch_after_seconds: float = Field(
        60.0, gt=0, description="Re-send a batch's work to the broker when it lies idle this long."
    )
    worker_concurrency: int = Field(0, ge=0, description="Worker processes; 0 means one per CPU.")
    templates_dir: Path | None = Field(
        None, description="Email templates; default the bundled ones."
    )

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
            if problems:
                raise ValueError("refusing to run in production with: " + "; ".join(problems))
        return self

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
