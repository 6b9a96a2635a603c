"""`distributor dkim keygen` and `distributor dkim check`: a key, and the DNS record for it."""

from __future__ import annotations

from pathlib import Path

import typer

from distributor.cli.context import load_settings
from distributor.cli.output import JSON_HELP, emit_json
from distributor.dkim_keys import (
    RSA_BITS,
    DkimKeyError,
    KeyType,
    SigningKey,
    checked_domain,
    checked_selector,
    generate_key,
    read_private_key,
    record_name,
    record_text,
    text_of_published,
    write_private_key,
    zone_file_record,
)
from distributor.dkim_records import check_record
from distributor.dns_lookup import DEFAULT_TIMEOUT_SECONDS, DnsResolver, DnsUnavailable
from distributor.errors import DistributorError

app = typer.Typer(
    help="DKIM keys and the DNS records that publish them.",
    no_args_is_help=True,
)

SELECTOR_OPTION = typer.Option(
    ..., "--selector", help="Selector the key is published under (s=), e.g. news2031."
)
DOMAIN_OPTION = typer.Option(..., "--domain", help="Signing domain (d=), e.g. charity.example.org.")
NAMESERVER_HELP = (
    "Ask this DNS server (IP or IP:PORT), e.g. the domain's authoritative one, instead of "
    "the system's."
)
SETTINGS = {
    KeyType.RSA: ("DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH", "DISTRIBUTOR_DKIM_SELECTOR"),
    KeyType.ED25519: (
        "DISTRIBUTOR_DKIM_ED25519_PRIVATE_KEY_PATH",
        "DISTRIBUTOR_DKIM_ED25519_SELECTOR",
    ),
}


@app.command()
def keygen(
    selector: str = SELECTOR_OPTION,
    domain: str = DOMAIN_OPTION,
    kind: KeyType = typer.Option(
        KeyType.RSA,
        "--type",
        help="rsa (every receiver verifies it) or ed25519 (faster; sign with both keys).",
    ),
    bits: int = typer.Option(RSA_BITS, min=1024, max=4096, help="RSA key size."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the private key; default SELECTOR.DOMAIN.pem here."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a key file that exists."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Make a private key (written with mode 0600) and print the DNS TXT record to publish."""
    selector = checked_selector(selector)
    domain = checked_domain(domain)
    path = (out or Path(f"{selector}.{domain}.pem")).absolute()
    key = generate_key(kind, bits=bits)
    write_private_key(key, path, replace=force)
    name = record_name(selector, domain)
    text = record_text(key)
    path_setting, selector_setting = SETTINGS[kind]
    settings = {
        path_setting: str(path),
        selector_setting: selector,
        "DISTRIBUTOR_DKIM_DOMAIN": domain,
    }
    if as_json:
        emit_json(
            {
                "private_key": str(path),
                "type": kind.value,
                "record_name": name,
                "record_text": text,
                "zone_file": zone_file_record(name, text),
                "settings": settings,
            }
        )
        return
    typer.echo(f"wrote the {kind.value} private key to {path} (readable by you only)")
    typer.echo(f"\nPublish this TXT record at {name}:\n")
    typer.echo(zone_file_record(name, text))
    typer.echo("\nOr, in a DNS host's form, the name and the text (paste it whole):\n")
    typer.echo(f"  {name.removesuffix('.' + domain)}  (in the zone {domain})")
    typer.echo(f"  {text}")
    typer.echo("\nThen set:\n")
    for setting, value in settings.items():
        typer.echo(f"  {setting}={value}")
    typer.echo(
        f"\nand, once the record is published: distributor dkim check --selector {selector} "
        f"--domain {domain}"
    )


def _configured_key(selector: str) -> SigningKey | None:
    settings = load_settings()
    candidates = [
        (settings.dkim_private_key_path, settings.dkim_selector, SETTINGS[KeyType.RSA][0]),
        (
            settings.dkim_ed25519_private_key_path,
            settings.dkim_ed25519_selector,
            SETTINGS[KeyType.ED25519][0],
        ),
    ]
    for path, configured, setting in candidates:
        if path is not None and configured.lower() == selector:
            return read_private_key(path, setting=setting)
    return None


@app.command()
def check(
    selector: str = SELECTOR_OPTION,
    domain: str = DOMAIN_OPTION,
    key_file: Path | None = typer.Option(
        None, "--key", help="The private key; default the configured key with this selector."
    ),
    txt: Path | None = typer.Option(
        None,
        "--txt",
        help="Read the record from this file (its text, or the zone file line) instead of DNS.",
    ),
    nameserver: str | None = typer.Option(None, "--nameserver", help=NAMESERVER_HELP),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_SECONDS, min=0.1, max=60, help="DNS timeout."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check a key against its published DNS record (exit status 1 when they do not match)."""
    selector = checked_selector(selector)
    domain = checked_domain(domain)
    name = record_name(selector, domain)
    if key_file is not None:
        key = read_private_key(key_file, setting="--key")
    else:
        configured = _configured_key(selector)
        if configured is None:
            raise DkimKeyError(
                f"no configured DKIM key has the selector {selector}: give the key with --key FILE"
            )
        key = configured
    published: str | None
    if txt is not None:
        try:
            published = text_of_published(txt.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DistributorError(f"cannot read the record file {txt}: {exc}") from None
        source = str(txt)
    else:
        try:
            found = DnsResolver(nameserver=nameserver, timeout=timeout).txt(name)
        except (DnsUnavailable, ValueError) as exc:
            raise DistributorError(
                f"could not read {name} through DNS: {exc}; give the record with --txt FILE"
            ) from None
        records = [t for t in found if "p=" in t or t.startswith("v=DKIM1")]
        if len(records) > 1:
            raise DistributorError(
                f"{len(records)} DKIM records are published at {name}; receivers need exactly "
                "one: remove all but the one `distributor dkim keygen` printed"
            )
        published = records[0] if records else None
        source = "DNS"
    result = check_record(key, selector=selector, domain=domain, published=published)
    if as_json:
        emit_json({"ok": result.ok, "source": source, **vars_of(result)})
    else:
        typer.echo(f"{name} ({source}):")
        if result.ok:
            typer.echo("  ok: the published key matches, and a signed message verifies")
        for problem in result.problems:
            typer.echo(f"  problem: {problem}")
        for note in result.notes:
            typer.echo(f"  note: {note}")
        if not result.ok:
            typer.echo(f"\nPublish:\n\n{zone_file_record(name, result.expected)}")
    if not result.ok:
        raise typer.Exit(1)


def vars_of(result: object) -> dict[str, object]:
    names = ("name", "expected", "published", "problems", "notes")
    return {name: getattr(result, name) for name in names}
