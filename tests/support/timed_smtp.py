"""A recording relay in a process of its own, noting when each message arrived.

A relay inside the test process shares its interpreter with the test's own polling, so its
clock readings wait their turn and bunch; one in a process of its own notes each arrival as
a real relay would. It is the PIPELINING and CHUNKING relay (`chunking_smtp.py`), so a
message costs one round trip, as with a production relay. Only the envelope and the arrival
time come back to the test.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from distributor.demo import free_port
from tests.support.chunking_smtp import ChunkingSMTPServer
from tests.support.smtp import Received

HOST = "127.0.0.1"


def _serve(port: int, commands: Connection) -> None:
    relay = ChunkingSMTPServer(port=port)
    relay.start()
    commands.send("ready")
    try:
        while True:
            command = commands.recv()
            if command == "report":
                commands.send([(r.arrived, r.mail_from, r.recipient) for r in relay.received])
            elif command == "stop":
                break
    finally:
        relay.stop()


class TimedSMTPServer:
    def __init__(self) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self._commands, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.port, theirs), daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    def start(self) -> None:
        self._process.start()
        if not self._commands.poll(30) or self._commands.recv() != "ready":
            raise TimeoutError("the timed SMTP server did not start")

    def stop(self) -> None:
        if self._process.is_alive():
            self._commands.send("stop")
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()

    @property
    def received(self) -> list[Received]:
        """What arrived so far (without the messages' bytes)."""
        self._commands.send("report")
        return [Received(at, sender, to, b"") for at, sender, to in self._commands.recv()]
