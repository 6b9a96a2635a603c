"""Logging: one line per event, readable or JSON, with the ids of the send, batch and delivery."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from distributor.logs import (
    CELERY_READY_LOGGER,
    NOISY_LOGGERS,
    IdsAdapter,
    LogFormat,
    configure_logging,
    log_ids,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TOUCHED_LOGGERS = ("celery", CELERY_READY_LOGGER, *NOISY_LOGGERS)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in TOUCHED_LOGGERS}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def events(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines(capsys)]


def message_of(line: str) -> str:
    """A human line without its time, level and logger."""
    return re.sub(TIMESTAMP + r" \S+ +\S+ ", "", line, count=1)


log = logging.getLogger("distributor.engine.batch")


def test_the_human_line_has_time_level_logger_ids_and_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    log.info("batch started: %d deliveries", 500, extra=log_ids(send_id=12, batch_no=3))
    log.warning("slow server", extra=log_ids(send_id=12, batch_no=3, delivery_id=456))

    first, second = lines(capsys)
    assert re.fullmatch(
        TIMESTAMP
        + r" INFO  distributor\.engine\.batch send=12 batch=3 batch started: 500 deliveries",
        first,
    ), first
    assert re.fullmatch(
        TIMESTAMP + r" WARNING distributor\.engine\.batch send=12 batch=3 delivery=456 slow server",
        second,
    ), second


def test_the_human_line_puts_details_after_the_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    log.warning(
        "delivery deferred",
        extra=log_ids(
            delivery_id=456,
            worker="celery@mail-1",
            attempt=2,
            smtp_code=451,
            error_kind="transient",
            reply="4.7.1 try again later",
        ),
    )

    (line,) = lines(capsys)
    assert line.endswith(
        "delivery=456 worker=celery@mail-1 delivery deferred "
        'attempt=2 smtp=451 error=transient reply="4.7.1 try again later"'
    ), line


def test_human_lines_without_ids_have_none(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    logging.getLogger("distributor.cli").error("no database")

    (line,) = lines(capsys)
    assert re.fullmatch(TIMESTAMP + r" ERROR distributor\.cli no database", line), line


def test_json_has_one_object_per_line_with_every_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.JSON)
    log.info("batch started: %d deliveries", 500, extra=log_ids(send_id=12, batch_no=3))
    log.warning(
        "deferred",
        extra={
            **log_ids(delivery_id=456, worker="celery@mail-1", attempt=2, smtp_code=451),
            **log_ids(error_kind="transient", reply="4.7.1 try again later"),
            "queue": "distributor",
        },
    )

    started, deferred = events(capsys)
    assert started == {
        "ts": started["ts"],
        "level": "INFO",
        "logger": "distributor.engine.batch",
        "message": "batch started: 500 deliveries",
        "process": os.getpid(),
        "send_id": 12,
        "batch_no": 3,
    }
    assert re.fullmatch(TIMESTAMP, str(started["ts"]))
    assert deferred["level"] == "WARNING"
    assert {k: deferred[k] for k in ("delivery_id", "worker", "attempt", "smtp_code")} == {
        "delivery_id": 456,
        "worker": "celery@mail-1",
        "attempt": 2,
        "smtp_code": 451,
    }
    assert deferred["error_kind"] == "transient"
    assert deferred["reply"] == "4.7.1 try again later"
    assert deferred["queue"] == "distributor"


def test_json_keeps_what_it_can_hold(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.JSON)
    log.info("odd extras", extra={"send_id": Path("12"), "handle": object(), "data": {"n": 1}})

    (event,) = events(capsys)
    assert event["send_id"] == "12"  # a known id is written as text
    assert "handle" not in event  # an unknown value JSON cannot hold is left out
    assert event["data"] == {"n": 1}


def test_the_timestamp_is_utc_with_milliseconds(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.JSON)
    record = log.makeRecord(log.name, logging.INFO, __file__, 1, "fixed", (), None)
    record.created = 1795992792.1239  # 2026-11-29T22:53:12.123Z
    log.handle(record)

    (event,) = events(capsys)
    assert event["ts"] == "2026-11-29T22:53:12.123Z"


def test_configuring_twice_does_not_double_the_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    configure_logging(log_format=LogFormat.HUMAN)
    configure_logging(log_format=LogFormat.HUMAN)
    configure_logging(log_format=LogFormat.JSON, level="info")
    assert len(root.handlers) == before + 1

    log.info("once")
    (line,) = lines(capsys)
    assert json.loads(line)["message"] == "once"  # the last call's format wins


def test_handlers_installed_by_others_are_left_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        configure_logging(log_format=LogFormat.HUMAN)
        configure_logging(log_format=LogFormat.HUMAN)
        log.info("both")
    finally:
        logging.getLogger().removeHandler(keep)
    assert [r.getMessage() for r in seen] == ["both"]
    assert len(lines(capsys)) == 1


def test_the_level_is_applied(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.HUMAN, level="warning")
    log.info("hidden")
    log.warning("shown")
    assert [message_of(line) for line in lines(capsys)] == ["shown"]

    configure_logging(log_format=LogFormat.HUMAN, level=logging.DEBUG)
    log.debug("shown too")
    assert len(lines(capsys)) == 1

    with pytest.raises(ValueError, match="unknown log level 'chatty'"):
        configure_logging(log_format=LogFormat.HUMAN, level="chatty")


def test_noisy_libraries_are_quieter_but_celery_is_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    logging.getLogger("kombu.connection").info("connected")
    logging.getLogger("celery.worker.strategy").info("task received")
    logging.getLogger("celery.app.trace").info("task succeeded")
    logging.getLogger("kombu.connection").warning("reconnecting")
    assert [message_of(line) for line in lines(capsys)] == [
        "task succeeded",
        "reconnecting",
    ]

    configure_logging(log_format=LogFormat.HUMAN, level="DEBUG")  # debugging shows all
    logging.getLogger("kombu.connection").debug("frame")
    assert len(lines(capsys)) == 1


def test_the_worker_ready_line_survives_a_quiet_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.HUMAN, level="WARNING")
    logging.getLogger(CELERY_READY_LOGGER).info("%s ready.", "celery@mail-1")
    (line,) = lines(capsys)
    assert line.endswith(" celery.apps.worker celery@mail-1 ready.")


def test_exceptions_follow_on_indented_lines_in_human(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    try:
        raise RuntimeError("server went away")
    except RuntimeError:
        log.exception("batch failed", extra=log_ids(send_id=12, batch_no=3))
    log.info("next")

    output = lines(capsys)
    assert output[0].endswith("distributor.engine.batch send=12 batch=3 batch failed")
    assert output[1] == "  Traceback (most recent call last):"
    assert output[-2] == "  RuntimeError: server went away"
    # Every event starts with its timestamp; nothing else does.
    starts = [line for line in output if re.match(TIMESTAMP, line)]
    assert len(starts) == 2
    assert all(line.startswith("  ") for line in output if line not in starts)


def test_exceptions_stay_on_the_line_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.JSON)
    try:
        raise RuntimeError("server went away")
    except RuntimeError:
        log.exception("batch failed", extra=log_ids(send_id=12))

    log.info("where am I", stack_info=True)

    event, located = events(capsys)
    assert event["message"] == "batch failed"
    assert "stack_info" not in event
    assert "exc_info" not in located
    assert "test_exceptions_stay_on_the_line_in_json" in str(located["stack_info"])
    exc_info = str(event["exc_info"])
    assert exc_info.startswith("Traceback (most recent call last):")
    assert exc_info.endswith("RuntimeError: server went away")


def test_messages_of_several_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    log.error("the release was not saved:\n  the headline is empty")
    assert lines(capsys)[1] == "    the headline is empty"

    configure_logging(log_format=LogFormat.JSON)
    log.error("first\nsecond")
    (event,) = events(capsys)
    assert event["message"] == "first\nsecond"


def test_unicode(capsys: pytest.CaptureFixture[str]) -> None:
    text = "Zürich, 東京 🎉 «embargo»"
    configure_logging(log_format=LogFormat.HUMAN)
    log.info(text, extra=log_ids(send_id=1, reply="4.2.0 boîte pleine"))
    (line,) = lines(capsys)
    assert text in line
    assert 'reply="4.2.0 boîte pleine"' in line

    configure_logging(log_format=LogFormat.JSON)
    log.info(text, extra=log_ids(reply="4.2.0 boîte pleine"))
    (raw,) = lines(capsys)
    assert raw.isascii()  # parses whatever the encoding of the stream
    event = json.loads(raw)
    assert event["message"] == text
    assert event["reply"] == "4.2.0 boîte pleine"


def test_no_address_reaches_the_log_through_attached_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reply = "5.1.1 <jane.doe+press@example.co.uk>: Recipient address rejected"
    for log_format in LogFormat:
        configure_logging(log_format=log_format)
        log.warning("delivery refused", extra=log_ids(delivery_id=456, smtp_code=550, reply=reply))
        try:
            raise ValueError("refused jane.doe+press@example.co.uk")
        except ValueError:
            log.exception("batch failed")
        output = capsys.readouterr().err
        assert "@" not in output, output
        assert "Recipient address rejected" in output
        assert "[address]" in output


def test_the_message_itself_is_not_changed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.HUMAN)
    log.info("test send to %s", "editor@example.org")
    assert lines(capsys)[0].endswith("test send to editor@example.org")


def test_log_ids_leaves_out_what_is_not_given() -> None:
    assert log_ids(send_id=12, batch_no=None, delivery_id=0) == {"send_id": 12, "delivery_id": 0}
    assert log_ids() == {}


def test_the_adapter_attaches_its_ids_and_adds_the_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(log_format=LogFormat.JSON)
    batch_log = IdsAdapter(log, log_ids(send_id=12, batch_no=3))
    batch_log.info("batch started")
    delivery_log = batch_log.bind(delivery_id=456, worker=None)
    delivery_log.warning("deferred", extra=log_ids(attempt=2))
    batch_log.info("batch finished")

    started, deferred, finished = events(capsys)
    assert (started["send_id"], started["batch_no"]) == (12, 3)
    assert "delivery_id" not in started
    assert (deferred["send_id"], deferred["delivery_id"], deferred["attempt"]) == (12, 456, 2)
    assert "worker" not in deferred
    assert "delivery_id" not in finished  # bind made a new adapter


def test_python_warnings_are_logged(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_format=LogFormat.JSON)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("the old option is deprecated", DeprecationWarning, stacklevel=1)
    (event,) = events(capsys)
    assert event["logger"] == "py.warnings"
    assert "the old option is deprecated" in str(event["message"])


WORKER_SCRIPT = """
import sys

from celery import Celery
from celery.signals import setup_logging

from distributor.logs import LogFormat, configure_logging, install_celery_logging

log_format = LogFormat(sys.argv[1])
configure_logging(log_format=log_format)  # as the command line does for every command


@setup_logging.connect
def _setup_logging(loglevel=None, **_):
    install_celery_logging(log_format, loglevel)


app = Celery("logcheck", broker="memory://")
app.conf.worker_hijack_root_logger = False
app.worker_main(
    ["worker", "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle",
     "--without-heartbeat"]
)
"""


def run_worker_until_ready(tmp_path: Path, log_format: LogFormat) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT, encoding="utf-8")
    stderr_path = tmp_path / f"worker-{log_format}.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), str(log_format)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while " ready." not in stderr_path.read_text(encoding="utf-8"):
                assert process.poll() is None, stderr_path.read_text(encoding="utf-8")
                assert time.monotonic() < deadline, stderr_path.read_text(encoding="utf-8")
                time.sleep(0.05)
        finally:
            process.kill()  # only its start is of interest; a warm shutdown takes seconds
            process.wait()
    return stderr_path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_celery_worker_lines_use_the_human_format(tmp_path: Path) -> None:
    output = run_worker_until_ready(tmp_path, LogFormat.HUMAN)
    ready = [line for line in output if " ready." in line]
    assert ready, output
    assert re.fullmatch(TIMESTAMP + r" INFO  celery\.apps\.worker \S+ ready\.", ready[0])
    events = [line for line in output if re.match(TIMESTAMP, line)]
    assert events[0] == output[0], output  # nothing Celery prints goes around the formatter


@pytest.mark.slow
def test_celery_worker_lines_use_the_json_format(tmp_path: Path) -> None:
    output = run_worker_until_ready(tmp_path, LogFormat.JSON)
    parsed = [json.loads(line) for line in output]  # every line, even Celery's warnings
    ready = [e for e in parsed if " ready." in str(e["message"])]
    assert ready, output
    assert ready[0]["logger"] == CELERY_READY_LOGGER
    assert ready[0]["level"] == "INFO"
