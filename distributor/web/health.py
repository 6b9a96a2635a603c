"""Routes for machines: liveness, readiness and the Prometheus metrics. No login.

- `/healthz`: the process answers (it asks nothing else): for a restart policy.
- `/readyz`: the database answers and is migrated to this code's revision, and the broker
  answers: 200, or 503 naming what is not ready. For a load balancer or docker-compose.
- `/metrics`: the installation's figures in Prometheus' text format (see
  distributor.monitoring.metrics and docs/monitoring.md); a bearer token is required when
  DISTRIBUTOR_METRICS_TOKEN is set.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client.exposition import choose_encoder
from starlette.responses import JSONResponse, PlainTextResponse, Response

from distributor.monitoring.health_broker import broker_problem
from distributor.monitoring.health_checks import database_problem
from distributor.monitoring.metrics import metrics_registry
from distributor.monitoring.metrics_access import MetricsAccess
from distributor.web.database import runtime_of

router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
def healthz() -> dict[str, str]:
    """Alive: the process answers (it does not ask the database)."""
    return {"status": "ok"}


@router.api_route("/readyz", methods=["GET", "HEAD"])
def readyz(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    problems = {
        "database": database_problem(runtime.engine),
        "broker": broker_problem(runtime.settings),
    }
    ready = not any(problems.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {name: problem or "ok" for name, problem in problems.items()},
        },
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    access = MetricsAccess.from_settings(runtime.settings)
    if not access.allows(request.headers.get("authorization")):
        return PlainTextResponse(
            "a bearer token is required (DISTRIBUTOR_METRICS_TOKEN)",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encode(metrics_registry(runtime))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
