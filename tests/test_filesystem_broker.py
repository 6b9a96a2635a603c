"""The embedded filesystem broker: a worker reading while the scheduler writes never sees a
message half written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import filesystem

from workers.filesystem_broker import PARTIAL_PREFIX, write_messages_whole


def test_a_message_being_written_is_not_there_to_read_until_it_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the embedded broker as the workers and the scheduler configure it, a producer
    # and a consumer of one queue
    monkeypatch.setattr(filesystem.Channel, "_put", filesystem.Channel._put)
    write_messages_whole()
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"),
    }
    with (
        Connection("filesystem://", transport_options=options) as producing,
        Connection("filesystem://", transport_options=options) as consuming,
    ):
        outbox, inbox = producing.SimpleQueue("batches"), consuming.SimpleQueue("batches")
        read_meanwhile: list[Any] = []
        serialise = filesystem.dumps

        def serialise_while_a_worker_reads(payload: Any) -> Any:
            try:
                read_meanwhile.append(inbox.get(block=False).payload)
            except inbox.Empty:
                read_meanwhile.append(None)
            return serialise(payload)

        # When a worker polls the queue in the middle of a message's writing
        monkeypatch.setattr(filesystem, "dumps", serialise_while_a_worker_reads)
        outbox.put({"batch": 7})
        monkeypatch.setattr(filesystem, "dumps", serialise)

        # Then it found nothing then, and the whole message afterwards, with no partial
        # file left behind
        assert read_meanwhile == [None]
        message = inbox.get(timeout=5)
        assert message.payload == {"batch": 7}
        message.ack()
        assert not [p for p in folder.iterdir() if p.name.startswith(PARTIAL_PREFIX)]
        outbox.close()
        inbox.close()
