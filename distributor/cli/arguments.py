"""Command-line parameters that are checked as they are read: ids, counts and durations.

A number the database cannot hold, or a count that would ask it for more rows than anyone
could read, is a usage error naming the parameter, before any work starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import typer

# Ids are INTEGER columns: 32-bit signed on PostgreSQL (SQLite would take more, but an id
# the production database cannot hold is a mistake on either).
MAX_RECORD_ID = 2**31 - 1
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
LONGEST_NUMBER = 40
BEYOND_ANY_RANGE: int = 10**LONGEST_NUMBER


def _whole_number(text: str | int) -> int | None:
    """The number written in `text`, or None when it is not a plain whole number."""
    if isinstance(text, int):  # a default value, passed through the parser as it is
        return text
    cleaned = text.strip()
    if not WHOLE_NUMBER.fullmatch(cleaned):
        return None
    if len(cleaned) > LONGEST_NUMBER:
        # Python refuses to read numbers of thousands of digits; this is out of range anyway.
        return -BEYOND_ANY_RANGE if cleaned.startswith("-") else BEYOND_ANY_RANGE
    return int(cleaned)


def record_id_parser(what: str) -> Callable[[str | int], int]:
    """A parser for the id of a `what` (a send, a release): a whole number from 1 up."""

    def parse(value: str | int) -> int:
        number = _whole_number(value)
        text = str(value)
        if number is None:
            raise typer.BadParameter(f"{text!r} is not a {what} id: give its number, such as 1")
        if number > MAX_RECORD_ID:
            raise typer.BadParameter(
                f"{text.strip()} is too large for a {what} id: ids are whole numbers from 1 "
                f"to {MAX_RECORD_ID}"
            )
        if number < 1:
            raise typer.BadParameter(
                f"{text.strip()} is not a {what} id: ids are whole numbers from 1 up"
            )
        return number

    return parse


def id_argument(what: str, *, optional: bool = False, help: str | None = None) -> Any:
    """A positional id of a `what`; `optional` makes it default to None (all of them)."""
    return typer.Argument(
        None if optional else ...,
        parser=record_id_parser(what),
        metavar=f"{what.upper().replace(' ', '_')}_ID",
        help=help,
        show_default=False,
    )


def id_option(what: str, *names: str, required: bool = False, help: str | None = None) -> Any:
    """An --option carrying the id of a `what`."""
    return typer.Option(
        ... if required else None,
        *names,
        parser=record_id_parser(what),
        metavar=f"{what.upper().replace(' ', '_')}_ID",
        help=help,
        show_default=False,
    )


def count_parser(*, minimum: int, maximum: int) -> Callable[[str | int], int]:
    """A parser for a whole number from `minimum` to `maximum`."""

    def parse(value: str | int) -> int:
        number = _whole_number(value)
        text = str(value)
        if number is None:
            raise typer.BadParameter(f"{text!r} is not a whole number")
        if number > maximum:
            raise typer.BadParameter(f"{text.strip()} is too large: give {minimum} to {maximum}")
        if number < minimum:
            raise typer.BadParameter(f"{text.strip()} is too small: give {minimum} to {maximum}")
        return number

    return parse


def count_option(
    default: int | None, *names: str, minimum: int = 0, maximum: int, help: str | None = None
) -> Any:
    """An --option taking a whole number from `minimum` to `maximum`."""
    return typer.Option(
        default,
        *names,
        parser=count_parser(minimum=minimum, maximum=maximum),
        metavar="N",
        help=help,
    )


def seconds_parser(*, minimum: float, maximum: float) -> Callable[[str | float], float]:
    """A parser for a duration in seconds: a finite number between the bounds."""

    def parse(value: str | float) -> float:
        text = str(value)
        try:
            seconds = float(text.strip())
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or not minimum <= seconds <= maximum:
            raise typer.BadParameter(
                f"{text.strip()} is out of range: give {minimum:g} to {maximum:g} seconds"
            )
        return seconds

    return parse


def seconds_option(
    default: float, *names: str, minimum: float, maximum: float, help: str | None = None
) -> Any:
    """An --option giving a duration in seconds between `minimum` and `maximum`."""
    return typer.Option(
        default,
        *names,
        parser=seconds_parser(minimum=minimum, maximum=maximum),
        metavar="SECONDS",
        help=help,
    )
