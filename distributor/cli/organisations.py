"""`distributor organisation`: the brand and boilerplate releases are issued under."""

from __future__ import annotations

from pathlib import Path

import typer

from distributor.actors import Role
from distributor.cli.actor import ACTOR_OPTION, ROLE_OPTION, actor_from
from distributor.cli.context import runtime
from distributor.errors import DistributorError
from distributor.organisations import LogoFile, save_organisation

app = typer.Typer(help="Organisations: brand and 'About' boilerplate.", no_args_is_help=True)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DistributorError(f"cannot read {path}: {exc.strerror}") from None


@app.command("set")
def set_organisation(
    name: str,
    website: str | None = typer.Option(None, help="https:// address, shown in the footer."),
    about: Path | None = typer.Option(None, help='Markdown file with the "About ..." boilerplate.'),
    logo: Path | None = typer.Option(None, help="PNG, JPEG, GIF or WebP logo (kept under 500 KB)."),
    logo_alt: str = typer.Option("", help="Alt text of the logo; default the name."),
    primary_colour: str | None = typer.Option(None, help="Header colour, #rrggbb."),
    accent_colour: str | None = typer.Option(
        None, help="Embargo banner and rules colour, #rrggbb."
    ),
    lift_notice: bool | None = typer.Option(
        None,
        "--lift-notice/--no-lift-notice",
        help="Whether pre-briefed journalists get a one-line 'embargo lifted' notice at the "
        "lift (they never get the release twice).",
        show_default=False,
    ),
    require_approval: bool | None = typer.Option(
        None,
        "--require-approval/--no-require-approval",
        help="Whether every send of its releases waits for a second person's approval "
        "(`release approve`) before it is armed.",
        show_default=False,
    ),
    actor_name: str | None = ACTOR_OPTION,
    role: Role = ROLE_OPTION,
) -> None:
    """Create an organisation or change the given fields; releases name it in front matter."""
    about_text = None
    if about is not None:
        try:
            about_text = _read(about).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DistributorError(f"{about} is not UTF-8 text: {exc}") from None
    logo_file = None
    if logo is not None:
        logo_file = LogoFile(filename=logo.name, data=_read(logo), alt=logo_alt or name)
    with runtime(actor_from(actor_name, role)) as rt, rt.sessions.begin() as session:
        organisation = save_organisation(
            session,
            name=name,
            now=rt.clock.now(),
            website=website,
            about=about_text,
            primary_colour=primary_colour,
            accent_colour=accent_colour,
            logo=logo_file,
            lift_notice=lift_notice,
            require_approval=require_approval,
        )
    typer.echo(f"saved organisation {organisation.id}: {organisation.name}")
