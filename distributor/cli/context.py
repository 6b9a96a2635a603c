"""Building the runtime for one CLI invocation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from distributor.errors import ConfigurationError
from distributor.runtime import Runtime
from distributor.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            (f"DISTRIBUTOR_{'_'.join(str(p) for p in e['loc']).upper()}: " if e["loc"] else "")
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


@contextmanager
def runtime() -> Iterator[Runtime]:
    rt = Runtime(load_settings())
    try:
        yield rt
    finally:
        rt.close()
