"""Logging for every process of the product: one event, one line, readable or JSON.

Two formats, chosen by the `log_format` setting:

- `human` (the default), for a terminal or `docker logs`::

      2026-11-29T22:53:12.123Z INFO  distributor.engine.batch send=12 batch=3 batch started

  The ids of the event (send, batch, delivery, worker) come before the message, its
  details (attempt, SMTP code, error kind, SMTP reply) after it. Every event starts on a
  line of its own with its timestamp; a traceback, or a message of several lines, follows
  on indented lines.

- `json`, for a log collector: one JSON object per line, with `ts`, `level`, `logger`,
  `message`, `process`, every id and detail attached to the event, `exc_info` (the
  traceback) and `stack_info`.

Ids are attached with `extra=`, most simply through `log_ids`::

    log.info("batch started: %d deliveries", count, extra=log_ids(send_id=12, batch_no=3))

or once for many lines with `IdsAdapter`. Callers never put email addresses in ids or
messages; an address inside an attached value (a remote server's SMTP reply may quote
one) is masked in both formats.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "DETAIL_FIELDS",
    "ID_FIELDS",
    "IdsAdapter",
    "LogFormat",
    "configure_logging",
    "formatter_for",
    "install_celery_logging",
    "log_ids",
]


class LogFormat(enum.StrEnum):
    HUMAN = "human"
    JSON = "json"


# Attribute name on the record -> label in the human format.
ID_FIELDS: Mapping[str, str] = {
    "send_id": "send",
    "batch_no": "batch",
    "delivery_id": "delivery",
    "worker": "worker",
}
DETAIL_FIELDS: Mapping[str, str] = {
    "attempt": "attempt",
    "smtp_code": "smtp",
    "error_kind": "error",
    "reply": "reply",
}

# Libraries that report every connection or message at INFO; their warnings still show.
NOISY_LOGGERS = ("kombu", "amqp", "celery.worker.strategy", "mail.log", "urllib3")
# Celery announces a started worker with "<hostname> ready." on this logger; process
# supervision (and the tests) wait for that line, so it is never hidden.
CELERY_READY_LOGGER = "celery.apps.worker"

_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_BARE_VALUE = re.compile(r"^[\w.:/+@-]+$")
_LEVELS = logging.getLevelNamesMapping()


def log_ids(
    *,
    send_id: int | None = None,
    batch_no: int | None = None,
    delivery_id: int | None = None,
    worker: str | None = None,
    attempt: int | None = None,
    smtp_code: int | None = None,
    error_kind: str | None = None,
    reply: str | None = None,
) -> dict[str, object]:
    """The `extra=` of a log call: the given ids and details, leaving out those not given."""
    given = {
        "send_id": send_id,
        "batch_no": batch_no,
        "delivery_id": delivery_id,
        "worker": worker,
        "attempt": attempt,
        "smtp_code": smtp_code,
        "error_kind": error_kind,
        "reply": reply,
    }
    return {name: value for name, value in given.items() if value is not None}


class IdsAdapter(logging.LoggerAdapter[logging.Logger]):
    """A logger that attaches the same ids to every line; a call's own `extra=` adds to them.

    `IdsAdapter(log, log_ids(send_id=12, batch_no=3)).info("batch started")`, and
    `.bind(delivery_id=456)` for a narrower one.
    """

    def __init__(self, logger: logging.Logger, ids: Mapping[str, object] | None = None) -> None:
        super().__init__(logger, dict(ids or {}))

    def bind(self, **ids: object) -> IdsAdapter:
        """A new adapter with these ids added (None values are left out)."""
        more = {name: value for name, value in ids.items() if value is not None}
        return IdsAdapter(self.logger, {**(self.extra or {}), **more})

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _masked(text: str) -> str:
    return _ADDRESS.sub("[address]", text)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """Everything attached to the record beyond what `logging` sets, addresses masked.

    Ids are the product's own numbers and names; any other text attached (an SMTP reply,
    an error) may come from outside and quote a recipient.
    """
    extras: dict[str, object] = {}
    for name, value in record.__dict__.items():
        if name in _STANDARD_ATTRIBUTES or name.startswith("_") or value is None:
            continue
        extras[name] = _masked(value) if isinstance(value, str) and name not in ID_FIELDS else value
    return extras


class _ProductFormatter(logging.Formatter):
    def traceback(self, record: logging.LogRecord) -> str | None:
        """The record's traceback, addresses masked; None when it has none."""
        if record.exc_info:
            return _masked(self.formatException(record.exc_info))
        return _masked(record.exc_text) if record.exc_text else None

    def stack(self, record: logging.LogRecord) -> str | None:
        """The stack logged with `stack_info=True`, addresses masked."""
        return _masked(self.formatStack(record.stack_info)) if record.stack_info else None


class HumanFormatter(_ProductFormatter):
    """`<ts> <LEVEL> <logger> <ids> <message> <details>`, continuation lines indented."""

    def format(self, record: logging.LogRecord) -> str:
        extras = _extras(record)
        parts = [_timestamp(record), f"{record.levelname:<5}", record.name]
        parts += [*_pairs(extras, ID_FIELDS), record.getMessage(), *_pairs(extras, DETAIL_FIELDS)]
        lines = [" ".join(part for part in parts if part)]
        lines += [text for text in (self.traceback(record), self.stack(record)) if text]
        return "\n".join(lines).rstrip().replace("\n", "\n  ")


def _pairs(extras: Mapping[str, object], fields: Mapping[str, str]) -> list[str]:
    pairs = []
    for name, label in fields.items():
        if name in extras:
            value = str(extras[name])
            if not _BARE_VALUE.match(value):
                value = json.dumps(value, ensure_ascii=False)
            pairs.append(f"{label}={value}")
    return pairs


class JsonFormatter(_ProductFormatter):
    """One JSON object per event, ASCII only so the line parses whatever the stream's encoding.

    Attached values that JSON cannot hold are left out, except the known ids and details,
    which are written as text.
    """

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name, value in _extras(record).items():
            if name in event:
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                if name in ID_FIELDS or name in DETAIL_FIELDS:
                    event[name] = str(value)
                continue
            event[name] = value
        for name, text in (
            ("exc_info", self.traceback(record)),
            ("stack_info", self.stack(record)),
        ):
            if text:
                event[name] = text
        return json.dumps(event, ensure_ascii=True)


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    """The formatter of `log_format`, for a handler of one's own."""
    return JsonFormatter() if LogFormat(log_format) is LogFormat.JSON else HumanFormatter()


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when the event happens."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def flush(self) -> None:
        self.stream = sys.stderr
        super().flush()


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name.isdigit():
        return int(name)
    if name not in _LEVELS:
        known = ", ".join(n for n in _LEVELS if n not in ("NOTSET", "WARN", "FATAL"))
        raise ValueError(f"unknown log level {level!r}; use one of {known}")
    return _LEVELS[name]


def configure_logging(*, log_format: LogFormat, level: str | int = "INFO") -> None:
    """Send every logger's events to stderr in `log_format`, from `level` up.

    Calling it again replaces the handler it installed before (never adds a second one) and
    leaves handlers that others installed on the root logger alone. Python's warnings are
    logged too (logger `py.warnings`).
    """
    number = _level_number(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter_for(log_format))
    root.addHandler(handler)
    root.setLevel(number)
    # At DEBUG the operator asked for everything.
    noisy = logging.NOTSET if number <= logging.DEBUG else max(number, logging.WARNING)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(noisy)
    logging.getLogger("celery").setLevel(logging.NOTSET)
    logging.getLogger(CELERY_READY_LOGGER).setLevel(min(number, logging.INFO))
    # Python's warnings are events too: through the handler, on one line in JSON.
    logging.captureWarnings(True)


def install_celery_logging(log_format: LogFormat, level: str | int | None = None) -> None:
    """Celery's own lines (worker ready, task results and failures) in the product's format.

    Call it from a receiver of `celery.signals.setup_logging`: once a receiver is connected,
    Celery leaves logging to it instead of installing its own handlers. `level` is the
    `loglevel` the signal passes (the worker's `--loglevel`); None means INFO.
    """
    from celery.utils.log import get_multiprocessing_logger

    configure_logging(log_format=log_format, level=level or logging.INFO)
    # The pool's own logger does not pass its lines on by default; Celery shows its errors.
    pool = get_multiprocessing_logger()
    if pool is not None:
        pool.propagate = True
        pool.setLevel(logging.ERROR)
