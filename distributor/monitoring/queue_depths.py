"""How many batch messages wait on the broker, per queue: work handed on that no worker has
taken yet. Read from the broker itself, for the admin page and `status --watch`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from distributor.engine.dispatch import notice_queue_name
from distributor.settings import EMBEDDED_BROKER, Settings

REDIS_TIMEOUT_SECONDS = 0.5
# What kombu's Redis transport names a queue's priority lists and the messages workers took.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
REDIS_UNACKED_KEY = "unacked"


@dataclass(frozen=True, slots=True)
class QueueDepth:
    name: str
    # None when this broker cannot say.
    messages: int | None
    note: str = ""


def queue_depths(settings: Settings) -> list[QueueDepth]:
    """Messages waiting on the broker per queue: batches not yet taken by a worker.

    Redis keeps each queue as lists (one per priority step) and the messages workers took
    but have not finished in one hash; the embedded broker keeps one file per message.
    RabbitMQ tells its own management page (and Flower), not a client of the queue.
    """
    names = [settings.queue_name, notice_queue_name(settings.queue_name)]
    if settings.broker_url == EMBEDDED_BROKER:
        return _folder_depths(settings.broker_dir / "queue", names)
    if urlsplit(settings.broker_url).scheme in ("redis", "rediss"):
        return _redis_depths(settings.broker_url, names)
    return [
        QueueDepth(name, None, "this broker's queues are shown by its own tools and Flower")
        for name in names
    ]


def _folder_depths(folder: Path, names: list[str]) -> list[QueueDepth]:
    try:
        files = [entry.name for entry in folder.iterdir()]
    except FileNotFoundError:
        files = []
    # kombu names each message "<time>_<uuid>.<queue>.msg".
    return [
        QueueDepth(name, sum(1 for f in files if f.partition(".")[2] == f"{name}.msg"))
        for name in names
    ]


def _redis_depths(url: str, names: list[str]) -> list[QueueDepth]:
    import redis

    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{name}{REDIS_PRIORITY_SEPARATOR}{step}")
        pipe.hlen(REDIS_UNACKED_KEY)
        lengths = [int(n) for n in pipe.execute()]
    except redis.RedisError as exc:
        return [QueueDepth(name, None, f"Redis did not answer: {exc}") for name in names]
    finally:
        client.close()
    per_queue = len(REDIS_PRIORITY_STEPS) + 1
    depths = [
        QueueDepth(name, sum(lengths[i * per_queue : (i + 1) * per_queue]))
        for i, name in enumerate(names)
    ]
    depths.append(QueueDepth("taken by workers, not finished", lengths[-1], "every queue together"))
    return depths
