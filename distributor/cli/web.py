"""`distributor web`: serve the dashboard, the public pages and the API with uvicorn."""

from __future__ import annotations

import threading

import typer

from distributor.cli.arguments import count_option
from distributor.cli.context import load_settings
from distributor.errors import DistributorError
from distributor.logs import configure_logging
from distributor.runtime import Runtime

MAX_PORT = 65_535


def web(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = count_option(8000, "--port", minimum=1, maximum=MAX_PORT, help="Port."),
    loglevel: str = typer.Option("INFO", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Serve the web app: the dashboard, the public unsubscribe pages and /api/v1."""
    settings = load_settings()
    try:
        configure_logging(log_format=settings.log_format, level=loglevel)
    except ValueError as exc:
        raise DistributorError(f"--loglevel: {exc}") from None
    # Imported here: the other commands need neither the web framework nor its start-up.
    import uvicorn

    from distributor.monitoring.alert_webhook import start_alert_watch
    from distributor.monitoring.alerts import thresholds_from
    from distributor.web.app import create_app

    runtime = Runtime(settings)
    # Alerts are posted from the web process: a stopped scheduler cannot report its silence.
    stop_alerts = threading.Event()
    start_alert_watch(
        runtime.sessions,
        runtime.database_clock,
        thresholds_from(settings),
        stop=stop_alerts,
        settings=settings,
    )
    try:
        uvicorn.run(
            create_app(runtime),
            host=host,
            port=port,
            # Uvicorn's access log prints paths, and an unsubscribe path carries a token:
            # distributor.web.access_log writes one line a request without it.
            access_log=False,
            log_config=None,
            server_header=False,
        )
    finally:
        stop_alerts.set()
        runtime.close()


def register(app: typer.Typer) -> None:
    app.command()(web)
