"""The local mail catcher: an SMTP server on loopback that files every message as .eml.

It also appends one JSON line per message to received.jsonl with the arrival time, so
anyone can check independently of our database when each message reached the server.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

RECEIVED_LOG = "received.jsonl"


class OutboxHandler:
    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrived = time.time()
        data: bytes = envelope.original_content or envelope.content
        headers = BytesHeaderParser().parsebytes(data)
        name = f"{arrived:.6f}-{uuid.uuid4().hex[:8]}.eml"
        (self.outbox / name).write_bytes(data)
        record = {
            "arrived": arrived,
            "file": name,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message_id": headers.get("Message-ID"),
        }
        with self._lock:
            with (self.outbox / RECEIVED_LOG).open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
            self.count += 1
        return "250 Message accepted for delivery"


@dataclass(frozen=True, slots=True)
class Arrival:
    arrived: float
    recipient: str
    message_id: str | None
    file: str


def read_arrivals(outbox: Path) -> list[Arrival]:
    log = outbox / RECEIVED_LOG
    if not log.exists():
        return []
    arrivals = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for recipient in record["rcpt_tos"]:
            arrivals.append(
                Arrival(record["arrived"], recipient, record["message_id"], record["file"])
            )
    return arrivals


def start_catcher(outbox: Path, *, host: str = "127.0.0.1", port: int = 2525) -> Controller:
    """Start the catcher in a background thread; call .stop() on the result to end it."""
    controller = Controller(
        OutboxHandler(outbox), hostname=host, port=port, data_size_limit=50 * 1024 * 1024
    )
    controller.start()
    return controller
