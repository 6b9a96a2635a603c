from __future__ import annotations

import typer

from distributor.cli.context import load_settings
from distributor.migrate import upgrade as upgrade_schema

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = load_settings()
    upgrade_schema(settings.effective_database_url)
    typer.echo("database schema is up to date")
