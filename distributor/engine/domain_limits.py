"""Limits per recipient domain, from a small TOML file, on top of the relay's own limit.

    [domains]
    "gmail.com" = 20      # messages a second to addresses @gmail.com
    "outlook.com" = 10.5

A domain matches the part of the address after the @, in any case; subdomains are domains
of their own.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from distributor.errors import ConfigurationError

MAX_DOMAIN_RATE = 100_000.0


def read_domain_limits(path: Path) -> dict[str, float]:
    """The file's limits, by lower-case domain; ConfigurationError says what is wrong."""
    where = f"DISTRIBUTOR_DOMAIN_LIMITS_PATH ({path})"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{where} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"domains"})
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown table or key {unknown[0]!r}; the file has one table, [domains]"
        )
    domains = data.get("domains", {})
    if not isinstance(domains, dict):
        raise ConfigurationError(f'{where}: [domains] must be a table of "domain" = rate')
    limits: dict[str, float] = {}
    for name, rate in domains.items():
        domain = name.strip().lower()
        if not domain or "@" in domain or any(c.isspace() for c in domain):
            raise ConfigurationError(f'{where}: {name!r} is not a domain such as "gmail.com"')
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ConfigurationError(
                f"{where}: the limit of {name!r} must be a number of messages a second"
            )
        if not 0 < rate <= MAX_DOMAIN_RATE:
            raise ConfigurationError(
                f"{where}: the limit of {name!r} must be above 0 and at most "
                f"{MAX_DOMAIN_RATE:,.0f} messages a second"
            )
        limits[domain] = float(rate)
    return limits


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()
