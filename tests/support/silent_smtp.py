"""A listener that accepts connections and never says a word, like a relay that hangs.

The send engine must give up on such a relay through its own timeouts; this server lets a
test prove that without waiting for a real network to misbehave.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from types import TracebackType

from distributor.demo import free_port

HOST = "127.0.0.1"


class SilentServer:
    """Accepts TCP connections on a free loopback port, never writes, holds them until stop()."""

    def __init__(self, *, port: int | None = None) -> None:
        self._port = port if port is not None else free_port()
        self._changed = threading.Condition()
        self._accepted = 0
        self._thread: threading.Thread | None = None
        self._wake: socket.socket | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the silent server is already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((HOST, self._port))
            listener.listen(128)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        # Writing to `wake` interrupts the selector so stop() does not have to poll.
        wake, woken = socket.socketpair()
        self._wake = wake
        self._thread = threading.Thread(
            target=self._serve, args=(listener, woken), name=f"silent-smtp-{self._port}"
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every held connection; a no-op when already stopped."""
        thread, wake = self._thread, self._wake
        if thread is None or wake is None:
            return
        wake.send(b"x")
        thread.join()
        wake.close()
        self._thread = None
        self._wake = None

    def __enter__(self) -> SilentServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, listener: socket.socket, woken: socket.socket) -> None:
        held: set[socket.socket] = set()
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(woken, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        if sock is woken:
                            return
                        if sock is listener:
                            self._accept(listener, selector, held)
                        else:
                            self._drain(sock, selector, held)
            finally:
                for conn in held:
                    conn.close()
                listener.close()
                woken.close()

    def _accept(
        self, listener: socket.socket, selector: selectors.BaseSelector, held: set[socket.socket]
    ) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        held.add(conn)
        selector.register(conn, selectors.EVENT_READ)
        with self._changed:
            self._accepted += 1
            self._changed.notify_all()

    @staticmethod
    def _drain(
        conn: socket.socket, selector: selectors.BaseSelector, held: set[socket.socket]
    ) -> None:
        """Swallow whatever the client sends; let go of it once it hangs up."""
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            selector.unregister(conn)
            held.discard(conn)
            conn.close()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._changed:
            return self._accepted

    def wait_for_connections(self, count: int, *, timeout: float) -> int:
        """Wait until at least `count` connections were accepted; returns how many were."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._accepted < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"only {self._accepted} of {count} connections arrived within {timeout} s"
                    )
                self._changed.wait(remaining)
            return self._accepted
