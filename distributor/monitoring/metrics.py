"""The Prometheus metrics of the whole installation, served by the web app at /metrics.

Workers and the scheduler expose nothing themselves. Everything they do is in the database
(deliveries, their history, batch leases, heartbeats, the relay's health) and the broker
holds the queued batches, so the web app reads the figures from there at scrape time, in a
custom collector. No process-local counter is kept: a Celery prefork child that dies takes
nothing with it, any number of web processes report the same figures, and the counters
always match the deliveries table. What is not recorded anywhere is not reported (see
docs/monitoring.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy.exc import SQLAlchemyError

from distributor.monitoring.metrics_families import database_families, queue_families
from distributor.monitoring.metrics_reading import read_database_figures
from distributor.monitoring.queue_depths import queue_depths
from distributor.runtime import Runtime

log = logging.getLogger(__name__)


def _up(name: str, documentation: str, up: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=1.0 if up else 0.0)


class InstallationCollector:
    """Reads the figures afresh at each scrape; a part that cannot be read is left out, and
    its `..._up` gauge says so."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        settings = self._runtime.settings
        figures = None
        try:
            with self._runtime.sessions() as session:
                figures = read_database_figures(self._runtime, session)
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", exc)
        yield _up(
            "distributor_database_up",
            "Whether the database answered this scrape (1) or not (0).",
            figures is not None,
        )
        if figures is not None:
            yield from database_families(figures, settings)
        depths = queue_depths(settings)
        answered = all(d.messages is not None for d in depths)
        yield _up(
            "distributor_broker_up",
            "Whether the broker answered this scrape (1) or not (0).",
            answered,
        )
        if answered:
            yield from queue_families(depths)
        yield GaugeMetricFamily(
            "distributor_metrics_collect_seconds",
            "How long reading these figures from the database and the broker took.",
            value=time.perf_counter() - started,
        )


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """A registry of the installation's figures and of this web process's own."""
    registry = CollectorRegistry()
    registry.register(InstallationCollector(runtime))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
