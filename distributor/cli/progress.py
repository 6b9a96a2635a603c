"""A progress bar on stderr for long imports, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import click

from distributor.contacts.importing import Progress


class FileProgress(AbstractContextManager["FileProgress"]):
    """One bar per pass over the file ("checking", then "importing"), sized in bytes."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.phase: str | None = None
        self.bar: Any = None
        self.shown = 0

    @property
    def callback(self) -> Progress | None:
        return self.update if self.enabled else None

    def update(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close_bar()
            self.phase = phase
            self.shown = 0
            self.bar = click.progressbar(length=max(total, 1), label=phase, file=sys.stderr)
            self.bar.__enter__()
        step = min(done, total) - self.shown
        if step > 0:
            self.bar.update(step)
            self.shown += step

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close_bar()
