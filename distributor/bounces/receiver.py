"""The SMTP server for the bounce domain's MX: bounces come back to the VERP address of
their delivery, over SMTP, from anywhere on the internet.

Only valid VERP addresses of ours are accepted (550 at RCPT for anything else, a forged MAC
included), so strangers cannot make it store mail. Whatever arrives in DATA is processed
and answered 250, whether or not it could be matched: an unmatched message is kept for an
admin. Only when the database cannot take it is the answer 451, so that the sending server
keeps the message and tries again. No message, however malformed, stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from aiosmtpd.controller import Controller

from distributor.bounces.processing import Processed
from distributor.errors import DistributorError
from distributor.mail.verp import VerpAddresses

log = logging.getLogger(__name__)

# A release with its attachments, returned whole, fits with room to spare.
LARGEST_MESSAGE = 32 * 1024 * 1024
ACCEPTED = "250 2.0.0 Report received"
NOT_OURS = "550 5.1.1 Not a bounce address of this sender"
TRY_LATER = "451 4.3.0 The report could not be recorded now; try again later"


class Processes(Protocol):
    def process(
        self, data: bytes, *, source: str, envelope_recipients: tuple[str, ...] = ()
    ) -> Processed: ...


@dataclass
class BounceHandler:
    processor: Processes
    verp: VerpAddresses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.verp.parse(address) is None:
            log.info("refused a recipient that is not a bounce address of ours")
            return NOT_OURS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            for recipient in envelope.rcpt_tos:
                await asyncio.to_thread(
                    self.processor.process,
                    data,
                    source=f"smtp from {peer}",
                    envelope_recipients=(recipient,),
                )
        except Exception:
            log.exception("a report could not be recorded; the sender was asked to try again")
            return TRY_LATER
        return ACCEPTED


def start_receiver(
    processor: Processes,
    verp: VerpAddresses,
    *,
    host: str,
    port: int,
    server_name: str | None = None,
    largest_message: int = LARGEST_MESSAGE,
) -> Controller:
    """Listen in a background thread; call .stop() on the result to end it."""
    controller = Controller(
        BounceHandler(processor, verp),
        hostname=host,
        port=port,
        server_hostname=server_name,
        data_size_limit=largest_message,
    )
    try:
        controller.start()
    except Exception as exc:
        raise DistributorError(f"cannot receive bounces on {host}:{port}: {exc}") from None
    return controller
