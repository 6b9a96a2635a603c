"""Machine-readable output: every listing and show command prints this with `--json`.

One JSON document per invocation on stdout, so that scripts never parse tables. Datetimes
are ISO 8601 with their offset, enums their value, paths and other objects their text.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

JSON_HELP = "Print one JSON document instead of the table, for scripts."


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, default=_plain, ensure_ascii=False, indent=2, sort_keys=False)


def emit_json(data: Any) -> None:
    typer.echo(to_json(data))
