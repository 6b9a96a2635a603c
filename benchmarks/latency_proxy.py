"""A loopback TCP proxy that adds a round-trip time, to run the send engine as if far away.

Each direction holds every chunk until its arrival time plus half the RTT, so the delay
applies to each chunk without queueing behind the others: throughput is not reduced,
only latency is added, and byte order is kept. The chaos tests and the benchmark use it
in front of an SMTP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from types import TracebackType

from distributor.demo import free_port

HOST = "127.0.0.1"
CHUNK = 256 * 1024
# Chunks in flight per direction before reading pauses (back-pressure on a slow side).
QUEUE_DEPTH = 256


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction, each chunk leaving `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    if delay <= 0:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    else:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUE_DEPTH)

        async def receive() -> None:
            while chunk := await reader.read(CHUNK):
                await queue.put((loop.time() + delay, chunk))
            await queue.put((loop.time() + delay, b""))

        receiving = asyncio.create_task(receive())
        try:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving
    # Pass the half-close on, so the far side sees the end of this direction.
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


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
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()

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
                asyncio.start_server(
                    self._on_connection, host=HOST, port=self._port, reuse_address=True, limit=CHUNK
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
            loop.run_until_complete(self._shutdown(server))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self, server: asyncio.Server) -> None:
        server.close()
        # Let connections accepted just before the listener closed finish being set up
        # (cancelling that step makes asyncio log an error in debug mode), then cut and
        # cancel until nothing is left.
        for _ in range(3):
            await asyncio.sleep(0)
        while True:
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    def _on_connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        # A plain callback that starts the task itself: given a coroutine function,
        # Python 3.11's start_server logs "Exception in callback" for every relay task that
        # stop() cancels.
        with self._lock:
            self._accepted += 1
        self._writers.add(client_writer)
        _nodelay(client_writer)
        task = asyncio.get_running_loop().create_task(self._relay(client_reader, client_writer))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._forward(client_reader, client_writer)
        finally:
            self._writers.discard(client_writer)
            client_writer.close()

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(
                self.target_host, self.target_port, limit=CHUNK
            )
        except OSError:
            # The target is down: reset the client, the nearest thing to a refusal once
            # its connection to the proxy has been accepted.
            client_writer.transport.abort()
            return
        self._writers.add(target_writer)
        _nodelay(target_writer)
        delay = self.rtt_ms / 2000
        try:
            # One direction ending cleanly leaves the other running (half-close);
            # a broken connection cancels both.
            async with asyncio.TaskGroup() as directions:
                directions.create_task(_pump(client_reader, target_writer, delay))
                directions.create_task(_pump(target_reader, client_writer, delay))
        except* OSError:
            pass
        finally:
            self._writers.discard(target_writer)
            target_writer.close()
