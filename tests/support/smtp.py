"""An aiosmtpd server in-process that records what arrived and when."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from distributor.demo import free_port


@dataclass(frozen=True)
class Received:
    arrived: float
    mail_from: str
    recipient: str
    data: bytes

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.SMTP)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class RecordingHandler:
    refuse_marker: str = "refuse"
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_marker in address:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrived = time.time()
        with self.changed:
            for rcpt in envelope.rcpt_tos:
                self.received.append(
                    Received(arrived, envelope.mail_from, rcpt, envelope.original_content)
                )
            self.changed.notify_all()
        return "250 2.0.0 Accepted"


class RecordingSMTPServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self._port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self._port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.changed:
            return list(self.handler.received)

    def wait_for(self, count: int, *, timeout: float) -> list[Received]:
        """Wait until at least `count` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        with self.handler.changed:
            while len(self.handler.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"only {len(self.handler.received)} of {count} messages arrived "
                        f"within {timeout} s"
                    )
                self.handler.changed.wait(remaining)
            return list(self.handler.received)
