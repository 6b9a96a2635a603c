"""Who may read /metrics: anyone who can reach it, or, with DISTRIBUTOR_METRICS_TOKEN set,
only a scraper that sends it as a bearer token.

The figures hold no address or name (send ids, counts and timings only), so the route needs
no login; but they tell an outsider when releases go out. Keep the route off the public
reverse proxy, or set the token and give it to Prometheus (`authorization` in its scrape
configuration).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from distributor.errors import ConfigurationError

METRICS_TOKEN_VARIABLE = "DISTRIBUTOR_METRICS_TOKEN"  # noqa: S105 - a name, not a secret
# Shorter than this, a token can be guessed by a patient scraper.
MINIMUM_TOKEN_CHARS = 16


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    token: str | None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> MetricsAccess:
        token = environ.get(METRICS_TOKEN_VARIABLE, "").strip() or None
        if token is not None and len(token) < MINIMUM_TOKEN_CHARS:
            raise ConfigurationError(
                f"{METRICS_TOKEN_VARIABLE} is {len(token)} characters long; give it at least "
                f"{MINIMUM_TOKEN_CHARS} random ones (openssl rand -hex 32), or unset it"
            )
        return cls(token)

    def allows(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may read the metrics."""
        if self.token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
