"""The faulty relay, also keeping when each connection opened, closed or was turned away, so
a test can read the most connections ever open at once and when the refusals stopped."""

from __future__ import annotations

import time

from tests.support.faulty_smtp import FaultyHandler, FaultySMTPServer, _Faults


class _MeteredFaults(_Faults):
    def __init__(self, max_connections: int | None) -> None:
        super().__init__(max_connections)
        self.peak = 0
        self.opened: list[float] = []  # time.time() of each session admitted
        self.refused: list[float] = []  # and of each connection turned away with 421

    def admit(self) -> str | None:
        refusal = super().admit()
        with self.lock:
            (self.refused if refusal is not None else self.opened).append(time.time())
            self.peak = max(self.peak, self.open)
        return refusal


class MeteredSMTPServer(FaultySMTPServer):
    def __init__(self, *, max_connections: int | None = None) -> None:
        super().__init__(max_connections=max_connections)
        self._metered = _MeteredFaults(max_connections)
        self._faults = self._metered
        self.handler = FaultyHandler(faults=self._metered)

    @property
    def peak_connections(self) -> int:
        """The most SMTP sessions that were ever open at once."""
        with self._metered.lock:
            return self._metered.peak

    @property
    def refusals(self) -> list[float]:
        with self._metered.lock:
            return list(self._metered.refused)

    @property
    def sessions_opened(self) -> list[float]:
        with self._metered.lock:
            return list(self._metered.opened)
