"""Who may read /metrics: anyone who can reach it, or, with DISTRIBUTOR_METRICS_TOKEN set,
only a scraper that sends it as a bearer token.

The figures hold no address or name (send ids, counts and timings only), so the route needs
no login; but they tell an outsider when releases go out. Keep the route off the public
reverse proxy, or set the token and give it to Prometheus (`authorization` in its scrape
configuration). The token's length is checked with the other settings, at start-up.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from distributor.settings import Settings


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    token: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAccess:
        return cls(settings.metrics_token.strip() or None)

    def allows(self, authorization: str | None) -> bool:
        """Whether a request with this Authorization header may read the metrics."""
        if self.token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
