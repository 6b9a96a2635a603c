"""The Celery app, configured from the same typed settings as everything else."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from distributor.logs import install_celery_logging
from distributor.settings import EMBEDDED_BROKER, TIME_LIMIT_GRACE_SECONDS, Settings
from workers.broker_quirks import tolerate_redis_restarts
from workers.filesystem_broker import write_messages_whole
from workers.heartbeat import heartbeat_step
from workers.shutdown import HandBackOnShutdown


def broker_options(settings: Settings) -> dict[str, object]:
    if settings.broker_url == EMBEDDED_BROKER:
        queue_dir = settings.broker_dir / "queue"
        processed_dir = settings.broker_dir / "processed"
        control_dir = settings.broker_dir / "control"
        for folder in (queue_dir, processed_dir, control_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "control_folder": str(control_dir),
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed_dir),
            "store_processed": False,
            "polling_interval": 0.05,
        }
    if settings.broker_is_amqp:
        # RabbitMQ has no visibility timeout: an unacknowledged batch goes back to the queue
        # when its consumer's channel closes, or after the server's consumer_timeout. Publisher
        # confirms make the scheduler's send fail, rather than lose a batch silently, when
        # RabbitMQ did not take it.
        return {"confirm_publish": True}
    # Batches carry an ETA of at most the arming lead, and a batch's time limit is checked
    # against this at start-up (Settings), so a running batch is never handed out twice.
    return {"visibility_timeout": settings.broker_visibility_timeout_seconds}


def create_app(settings: Settings) -> Celery:
    app = Celery("distributor", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue_name,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # The batch ends itself cleanly before the soft limit (BatchJob.deadline); the hard
        # limit ends a process that hangs, whose lease then expires and is taken over.
        task_soft_time_limit=settings.task_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds + TIME_LIMIT_GRACE_SECONDS,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
    )
    if settings.broker_url == EMBEDDED_BROKER:
        # The filesystem transport has no fanout exchange, which remote control needs.
        app.conf.worker_enable_remote_control = False
        write_messages_whole()
    app.steps["worker"].add(HandBackOnShutdown)
    app.steps["worker"].add(heartbeat_step(settings))
    if settings.broker_has_visibility_timeout:
        tolerate_redis_restarts()
    return app


_settings = Settings()
app = create_app(_settings)


@setup_logging.connect  # type: ignore[untyped-decorator]
def _log_like_the_rest(loglevel: Any = None, **_kwargs: Any) -> None:
    """Celery's lines and the engine's in one format (DISTRIBUTOR_LOG_FORMAT)."""
    install_celery_logging(_settings.log_format, loglevel)
