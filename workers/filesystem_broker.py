"""The embedded filesystem broker, made safe for a consumer that reads while a message is
being written.

kombu's filesystem transport (5.7.0) creates a message's file under its final name and then
writes it, while a consumer moves and reads any file with that name: a worker polling at the
wrong instant reads an empty or partial file, fails to decode it, and the worker stops
(seen under load: "JSONDecodeError: Expecting value"). Here each message is written under a
name no consumer looks at and then renamed, which is atomic within one folder, so a consumer
sees a whole message or none. (A message lost that way would not lose a delivery, since the
scheduler queues again what no worker holds, but a stopped worker sends nothing.)
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem

# kombu's consumer takes only names of the form "<stamp>_<uuid>.<queue>.msg".
PARTIAL_PREFIX = ".partial-"


def _put_whole(self: Any, queue: str, payload: Any, **kwargs: Any) -> None:
    name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
    final = os.path.join(self.data_folder_out, name)
    partial = os.path.join(self.data_folder_out, f"{PARTIAL_PREFIX}{uuid.uuid4()}")
    try:
        # The transport's own serialiser, looked up at each call as kombu's _put does.
        body: str = filesystem.dumps(payload)  # type: ignore[attr-defined,no-untyped-call]
        with open(partial, "wb") as file:
            file.write(body.encode())
        os.replace(partial, final)
    except OSError as exc:
        raise ChannelError(f"Cannot add file {final!r} to directory") from exc


def write_messages_whole() -> None:
    filesystem.Channel._put = _put_whole  # type: ignore[method-assign]
