"""Building the runtime for one CLI invocation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from distributor.actors import Actor
from distributor.cli.actor import actor_from_environment
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
def runtime(actor: Actor | None = None) -> Iterator[Runtime]:
    """The runtime of a command, its sessions acting for `actor` (default: --as/--role's
    environment variables, or the login name as a press officer)."""
    rt = Runtime(load_settings())
    rt.act_as(actor if actor is not None else actor_from_environment())
    try:
        yield rt
    finally:
        rt.close()
