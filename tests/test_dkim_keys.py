"""`distributor dkim keygen` and `dkim check`, run as a press office's admin runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from distributor.dkim_keys import (
    KeyType,
    generate_key,
    record_text,
    text_of_published,
    zone_file_record,
)
from tests.support.dns_server import closed_port, dns_server

DOMAIN = "charity.example.org"
NAME = f"news2031._domainkey.{DOMAIN}"


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "distributor", *args],
        cwd=cwd,
        env={**clean, "DISTRIBUTOR_DATA_DIR": str(cwd / "var"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def made_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """A key made by `dkim keygen --json`, and what it printed."""
    folder = tmp_path_factory.mktemp("keygen")
    result = run(folder, "dkim", "keygen", "--selector", "news2031", "--domain", DOMAIN, "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    return folder, printed


def test_keygen_writes_a_private_key_only_its_owner_can_read(
    made_key: tuple[Path, dict[str, object]],
) -> None:
    folder, printed = made_key
    key = Path(str(printed["private_key"]))

    assert key.parent == folder and key.name == f"news2031.{DOMAIN}.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert printed["record_name"] == NAME
    assert str(printed["record_text"]).startswith("v=DKIM1; k=rsa; p=MII")
    assert printed["settings"] == {
        "DISTRIBUTOR_DKIM_PRIVATE_KEY_PATH": str(key),
        "DISTRIBUTOR_DKIM_SELECTOR": "news2031",
        "DISTRIBUTOR_DKIM_DOMAIN": DOMAIN,
    }


def test_keygen_prints_the_record_ready_to_paste_and_never_overwrites(tmp_path: Path) -> None:
    result = run(
        tmp_path, "dkim", "keygen", "--selector", "ed2031", "--domain", DOMAIN, "--type", "ed25519"
    )

    assert result.returncode == 0, result.stderr
    line = next(
        x for x in result.stdout.splitlines() if x.startswith(f"ed2031._domainkey.{DOMAIN}.")
    )
    assert line.startswith(f'ed2031._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=ed25519; p=')
    assert "DISTRIBUTOR_DKIM_ED25519_PRIVATE_KEY_PATH=" in result.stdout
    assert "DISTRIBUTOR_DKIM_ED25519_SELECTOR=ed2031" in result.stdout
    before = (tmp_path / f"ed2031.{DOMAIN}.pem").read_bytes()

    again = run(tmp_path, "dkim", "keygen", "--selector", "ed2031", "--domain", DOMAIN)

    assert again.returncode == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert (tmp_path / f"ed2031.{DOMAIN}.pem").read_bytes() == before


def test_check_against_a_record_file_accepts_the_printed_record_and_refuses_another(
    made_key: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    folder, printed = made_key
    record = tmp_path / "record.txt"
    record.write_text(str(printed["zone_file"]) + "\n")
    args = ("dkim", "check", "--selector", "news2031", "--domain", DOMAIN)

    good = run(folder, *args, "--key", str(printed["private_key"]), "--txt", str(record))

    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok: the published key matches, and a signed message verifies" in good.stdout

    record.write_text(zone_file_record(NAME, record_text(generate_key(KeyType.RSA))))
    bad = run(folder, *args, "--key", str(printed["private_key"]), "--txt", str(record))

    assert bad.returncode == 1
    assert "is not this key's" in bad.stdout
    assert str(printed["zone_file"]) in bad.stdout  # what to publish instead


def test_check_reads_the_record_through_dns_with_the_configured_key(
    made_key: tuple[Path, dict[str, object]],
) -> None:
    folder, printed = made_key
    configured = {k: str(v) for k, v in dict(printed["settings"]).items()}  # type: ignore[call-overload]
    args = ("dkim", "check", "--selector", "news2031", "--domain", DOMAIN, "--timeout", "1")

    with dns_server({(NAME, "TXT"): [str(printed["record_text"])]}) as nameserver:
        published = run(folder, *args, "--nameserver", nameserver, env=configured)
    with dns_server({}) as nameserver:
        missing = run(folder, *args, "--nameserver", nameserver, env=configured)
    offline = run(folder, *args, "--nameserver", closed_port(), env=configured)

    assert published.returncode == 0, published.stdout + published.stderr
    assert f"{NAME} (DNS):" in published.stdout
    assert missing.returncode == 1
    assert f"no DKIM record is published at {NAME}" in missing.stdout
    assert offline.returncode == 1
    assert offline.stderr.startswith("error: could not read")
    assert "--txt FILE" in offline.stderr


def test_check_without_a_key_for_the_selector_says_how_to_give_one(tmp_path: Path) -> None:
    result = run(tmp_path, "dkim", "check", "--selector", "other", "--domain", DOMAIN)

    assert result.returncode == 1
    assert "no configured DKIM key has the selector other" in result.stderr
    assert "--key FILE" in result.stderr


@pytest.mark.parametrize(
    ("pasted", "text"),
    [
        ('s._domainkey.x. IN TXT ( "v=DKIM1; k=rsa; " "p=AB" "CD" )', "v=DKIM1; k=rsa; p=ABCD"),
        ("v=DKIM1; k=ed25519; p=XYZ=\n", "v=DKIM1; k=ed25519; p=XYZ="),
        ('"v=DKIM1; p=\\"q\\""', 'v=DKIM1; p="q"'),
    ],
    ids=["zone file, split", "bare text", "escaped quote"],
)
def test_a_pasted_record_is_read_as_receivers_join_it(pasted: str, text: str) -> None:
    assert text_of_published(pasted) == text
