"""A throwaway redis-server of a test's own, so broker crashes can be staged safely.

Restarting the machine's shared Redis would disturb every other test; this one lives on
a free loopback port, keeps nothing on disk, and loses all its data when restarted.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from distributor.demo import free_port

HOST = "127.0.0.1"
REDIS_SERVER = "/usr/bin/redis-server"
SHARED_REDIS_PORT = 6379


class PrivateRedis:
    """A `redis-server` subprocess on 127.0.0.1 with persistence off; same port across restarts."""

    def __init__(self, *, port: int | None = None, start_timeout: float = 10.0) -> None:
        self._port = port if port is not None else free_port()
        if self._port == SHARED_REDIS_PORT:
            raise ValueError("PrivateRedis must not use the shared Redis port 6379")
        self._start_timeout = start_timeout
        self._workdir = tempfile.TemporaryDirectory(prefix="private-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def _log(self) -> Path:
        return Path(self._workdir.name) / "redis.log"

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """A new client of this server (the caller closes it)."""
        return redis.Redis.from_url(
            self.url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def ping(self) -> bool:
        try:
            with self.client(timeout=0.5) as probe:
                return bool(probe.ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Launch the server and return once it answers PING."""
        if self.running:
            raise RuntimeError("the private Redis is already running")
        command = [
            REDIS_SERVER,
            "--port", str(self._port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", self._workdir.name,
            "--logfile", str(self._log),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + self._start_timeout
        while not self.ping():
            if self._process.poll() is not None:
                self._fail(f"redis-server exited with status {self._process.returncode}")
            if time.monotonic() >= deadline:
                self.stop()
                self._fail(f"redis-server did not answer PING within {self._start_timeout} s")
            time.sleep(0.01)

    def _fail(self, why: str) -> None:
        process, self._process = self._process, None
        stderr = b""
        if process is not None and process.stderr is not None:
            if process.poll() is not None:
                stderr = process.stderr.read()
            process.stderr.close()
        log = self._log.read_text(errors="replace") if self._log.exists() else ""
        detail = (stderr.decode(errors="replace") + log).strip().splitlines()[-10:]
        raise RuntimeError(f"{why} (port {self._port}): " + "\n".join(detail))

    def stop(self, *, timeout: float = 5.0) -> None:
        """Shut the server down (SIGTERM, then SIGKILL); a no-op when it is not running."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port: every key is gone, as after a broker crash."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the working directory."""
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
