"""A loopback TCP proxy that adds a round-trip time, to run the send engine as if far away.

Each direction holds every chunk until its arrival time plus half the RTT, so the delay
applies to each chunk without queueing behind the others: throughput is not reduced,
only latency is added, and byte order is kept. The chaos tests and the benchmark use it
in front of an SMTP server.

It runs in the benchmark's own process and costs CPU that a real relay far away would
not, so it is written with asyncio protocols (no task, queue or sleep per chunk): every
chunk due at one timer leaves in one write. Relaying 20 KB messages over 64 pipelining
connections 20 ms away, it used 47-60 µs of CPU a message, where the version built on
streams, with a task, a queue and a sleep per chunk, used 117 µs.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType

from distributor.demo import free_port

HOST = "127.0.0.1"
# Bytes held in one direction before reading from its source pauses (back-pressure).
HOLD_LIMIT = 8 * 1024 * 1024


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Direction:
    """One direction of a proxied connection: each chunk leaves `delay` after it arrived.

    When its source has ended and everything held has left, the sink gets the half-close
    and `on_finished` is called."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, on_finished: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._delay = delay
        self._on_finished = on_finished
        self._held: deque[tuple[float, bytes]] = deque()
        self._held_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._ended = False
        self.finished = False
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None

    def arrived(self, data: bytes) -> None:
        self._held.append((self._loop.time() + self._delay, data))
        self._held_bytes += len(data)
        if self._held_bytes > HOLD_LIMIT and self.source is not None:
            self.source.pause_reading()
        self._schedule()

    def ended(self) -> None:
        self._ended = True
        self._schedule()

    def sink_ready(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        self._schedule()

    def drop(self) -> None:
        """Nothing more can be delivered (the sink is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held.clear()
        self._finish()

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self._on_finished()

    def _schedule(self) -> None:
        if self._timer is not None or self.sink is None or self.finished:
            return
        if self._held:
            self._timer = self._loop.call_at(self._held[0][0], self._release)
        elif self._ended:
            if self.sink.can_write_eof() and not self.sink.is_closing():
                self.sink.write_eof()
            self._finish()

    def _release(self) -> None:
        self._timer = None
        sink = self.sink
        if sink is None or sink.is_closing():
            self.drop()
            return
        now = self._loop.time()
        due: list[bytes] = []
        while self._held and self._held[0][0] <= now:
            due.append(self._held.popleft()[1])
        if due:
            sink.write(b"".join(due) if len(due) > 1 else due[0])
            was_over = self._held_bytes > HOLD_LIMIT
            self._held_bytes -= sum(map(len, due))
            if was_over and self._held_bytes <= HOLD_LIMIT and self.source is not None:
                self.source.resume_reading()
        self._schedule()


class _Side(asyncio.Protocol):
    """One socket of a proxied pair: what it reads goes `outgoing`, `incoming` writes to it."""

    def __init__(self, outgoing: _Direction, incoming: _Direction, pair: _Pair) -> None:
        self.outgoing = outgoing
        self.incoming = incoming
        self.pair = pair
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)
        self.outgoing.source = transport
        self.incoming.sink_ready(transport)

    def data_received(self, data: bytes) -> None:
        self.outgoing.arrived(data)

    def eof_received(self) -> bool:
        self.outgoing.ended()
        return True  # a half-close: the other direction carries on

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.pair.close(abort=True)  # a broken connection cuts both
            return
        self.outgoing.ended()
        self.incoming.drop()


class _Pair:
    """A client's connection and the proxy's own to the target; closed once both
    directions have finished, or cut when either breaks."""

    def __init__(self, proxy: LatencyProxy, loop: asyncio.AbstractEventLoop) -> None:
        delay = proxy.rtt_ms / 2000
        self.proxy = proxy
        self.upstream = _Direction(loop, delay, self._direction_finished)  # client -> target
        self.downstream = _Direction(loop, delay, self._direction_finished)  # target -> client
        self.client = _Side(self.upstream, self.downstream, self)
        self.target = _Side(self.downstream, self.upstream, self)
        self.closed = False

    def _direction_finished(self) -> None:
        if self.upstream.finished and self.downstream.finished:
            self.close(abort=False)

    def close(self, *, abort: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy._pairs.discard(self)
        for direction in (self.upstream, self.downstream):
            direction.finished = True  # no callbacks while closing
            direction.drop()
        for side in (self.client, self.target):
            if side.transport is not None:
                if abort:
                    side.transport.abort()
                else:
                    side.transport.close()


class LatencyProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port` with `rtt_ms` added.

    Runs an asyncio loop in a background thread; `stop()` closes the listener and cuts
    every proxied connection. While the target is down, clients are accepted and then
    reset at once.
    """

    def __init__(
        self, target_host: str, target_port: int, rtt_ms: float, *, port: int | None = None
    ) -> None:
        if rtt_ms < 0:
            raise ValueError("rtt_ms must not be negative")
        self.target_host = target_host
        self.target_port = target_port
        self.rtt_ms = rtt_ms
        self._port = port if port is not None else free_port()
        self._lock = threading.Lock()
        self._accepted = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pairs: set[_Pair] = set()

    @property
    def port(self) -> int:
        return self._port

    @property
    def smtp_url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    @property
    def connections(self) -> int:
        """Client connections accepted so far."""
        with self._lock:
            return self._accepted

    def start(self) -> None:
        """Listen on the port (the same one after a stop); returns once it accepts."""
        if self._thread is not None:
            raise RuntimeError("the latency proxy is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve, args=(ready, failure), name=f"latency-proxy-{self._port}"
        )
        thread.daemon = True
        thread.start()
        if not ready.wait(10):
            raise TimeoutError(f"the latency proxy on port {self._port} did not start")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread

    def stop(self) -> None:
        """Close the listener and every proxied connection; a no-op when already stopped."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None

    def __enter__(self) -> LatencyProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: self._accepted_side(loop),
                    host=HOST,
                    port=self._port,
                    reuse_address=True,
                )
            )
        except BaseException as error:
            failure.append(error)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for pair in list(self._pairs):
                pair.close(abort=True)
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _accepted_side(self, loop: asyncio.AbstractEventLoop) -> _Side:
        with self._lock:
            self._accepted += 1
        pair = _Pair(self, loop)
        self._pairs.add(pair)
        loop.create_task(self._connect_target(pair, loop))
        return pair.client

    async def _connect_target(self, pair: _Pair, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.create_connection(lambda: pair.target, self.target_host, self.target_port)
        except OSError:
            # The target is down: reset the client, the nearest thing to a refusal once
            # its connection to the proxy has been accepted.
            pair.close(abort=True)
            return
        if pair.closed and pair.target.transport is not None:
            pair.target.transport.abort()
