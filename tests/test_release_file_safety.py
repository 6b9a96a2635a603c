"""`release create --from FILE` with hostile or careless files: a device, a pipe, a huge file,
a path outside the release's folder, a broken or oversized image, hidden characters, deep
nesting. Each is refused with a message that says what to do, and nothing is stored.

The commands run as real processes under a 1 GB address-space limit, so that a regression
(reading /dev/zero to the end, say) fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from distributor.cli import app
from distributor.cli.release_files import MAX_RELEASE_FILE_BYTES
from distributor.errors import DistributorError
from distributor.migrate import upgrade
from distributor.releases.draft import MAX_TEXT_CHARACTERS
from distributor.releases.structured import FIELDS, MAX_FRONT_MATTER_CHARACTERS, MAX_NESTING
from distributor.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MEMORY_LIMIT = 1024 * 1024 * 1024
RLO = "\u202e"
ZERO_WIDTH_SPACE = "\u200b"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m distributor ARGS` under the memory limit; never a traceback."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    environment["DISTRIBUTOR_DATA_DIR"] = str(data_dir)
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-m", "distributor", *args],
        cwd=data_dir.parent,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        preexec_fn=_limit_memory,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "MemoryError" not in result.stderr, result.stderr
    return result


def releases_stored(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "distributor.sqlite3") as db:
        count: int = db.execute("SELECT count(*) FROM releases").fetchone()[0]
    return count


def refused(data_dir: Path, release: Path, *options: str, **env: str) -> str:
    """The error of a `release create` that must fail cleanly and store nothing."""
    result = run(data_dir, "release", "create", "--from", str(release), *options, **env)
    assert result.returncode != 0, result.stdout
    assert result.stderr.startswith("error: "), result.stderr
    assert releases_stored(data_dir) == 0
    return result.stderr


def created(data_dir: Path, release: Path, *options: str) -> str:
    result = run(data_dir, "release", "create", "--from", str(release), *options)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    upgrade(Settings(data_dir=data).effective_database_url)
    return data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The release's folder, with a real image and PDF in it."""
    path = tmp_path / "release"
    path.mkdir()
    shutil.copy(FIXTURES / "refuge.png", path / "refuge.png")
    shutil.copy(FIXTURES / "report.pdf", path / "report.pdf")
    return path


def markdown(folder: Path, front: str, body: str = "The body.", name: str = "release.md") -> Path:
    path = folder / name
    path.write_text(f"+++\n{front}\n+++\n\n{body}\n", encoding="utf-8")
    return path


def attaching(folder: Path, file: str, *, image: bool = False) -> Path:
    if image:
        table = f'[[images]]\nfile = {json.dumps(file)}\nalt = "A picture"'
    else:
        table = f"[[attachments]]\nfile = {json.dumps(file)}"
    return markdown(folder, f'headline = "Charity opens refuge"\n{table}')


# --- where files come from --------------------------------------------------------------


def test_an_absolute_path_to_dev_zero_is_refused_as_outside_the_folder(
    data_dir: Path, folder: Path
) -> None:
    message = refused(data_dir, attaching(folder, "/dev/zero"))

    assert "/dev/zero is outside the release file's folder" in message
    assert "paths are relative to the release file" in message
    assert "--allow-outside-folder" in message


def test_dev_zero_is_refused_as_a_device_even_when_outside_files_are_allowed(
    data_dir: Path, folder: Path
) -> None:
    message = refused(data_dir, attaching(folder, "/dev/zero"), "--allow-outside-folder")

    assert "/dev/zero is a device or a pipe, not a file" in message


def test_a_parent_folder_path_is_refused_unless_allowed(data_dir: Path, folder: Path) -> None:
    shutil.copy(FIXTURES / "report.pdf", folder.parent / "elsewhere.pdf")
    release = attaching(folder, "../elsewhere.pdf")

    message = refused(data_dir, release)
    assert "../elsewhere.pdf is outside the release file's folder" in message

    assert "created release 1" in created(data_dir, release, "--allow-outside-folder")


def test_a_symbolic_link_is_judged_by_what_it_points_to(data_dir: Path, folder: Path) -> None:
    (folder / "zero.pdf").symlink_to("/dev/zero")
    release = attaching(folder, "zero.pdf")

    assert "it is /dev/zero" in refused(data_dir, release)
    assert "is a device or a pipe" in refused(data_dir, release, "--allow-outside-folder")


def test_a_link_inside_the_folder_to_a_file_inside_it_is_read(data_dir: Path, folder: Path) -> None:
    (folder / "latest.pdf").symlink_to(folder / "report.pdf")

    assert "created release 1" in created(data_dir, attaching(folder, "latest.pdf"))


def test_a_pipe_is_refused_without_waiting_for_a_writer(data_dir: Path, folder: Path) -> None:
    os.mkfifo(folder / "pipe.pdf")

    assert "pipe.pdf" in refused(data_dir, attaching(folder, "pipe.pdf"))


def test_a_folder_is_refused(data_dir: Path, folder: Path) -> None:
    (folder / "photos").mkdir()

    assert "is a folder" in refused(data_dir, attaching(folder, "photos", image=True))


def test_the_release_file_itself_must_be_an_ordinary_file(data_dir: Path, folder: Path) -> None:
    os.mkfifo(folder / "release.md")

    assert "/dev/zero is a device" in refused(data_dir, Path("/dev/zero"))
    assert "is a device or a pipe" in refused(data_dir, folder / "release.md")
    assert "is a folder" in refused(data_dir, folder)


# --- how much is read ----------------------------------------------------------------------


def test_an_attachment_over_the_limit_is_refused_before_it_is_read(
    data_dir: Path, folder: Path
) -> None:
    (folder / "big.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * 5_000)

    message = refused(
        data_dir, attaching(folder, "big.pdf"), DISTRIBUTOR_MAX_ATTACHMENT_BYTES="1000"
    )

    assert "big.pdf" in message
    assert "more than the 1,000 allowed" in message
    assert "DISTRIBUTOR_MAX_ATTACHMENT_BYTES" in message


def test_the_limit_counts_every_file_of_the_release_together(data_dir: Path, folder: Path) -> None:
    for name in ("one.pdf", "two.pdf"):
        (folder / name).write_bytes(b"%PDF-1.4\n" + b"0" * 500)
    release = markdown(
        folder,
        'headline = "Two reports"\n[[attachments]]\nfile = "one.pdf"\n'
        '[[attachments]]\nfile = "two.pdf"',
    )

    message = refused(data_dir, release, DISTRIBUTOR_MAX_ATTACHMENT_BYTES="1000")

    assert "two.pdf" in message
    assert "may come to 1,000 bytes in all" in message


def test_a_50_mb_release_file_is_refused(data_dir: Path, folder: Path) -> None:
    huge = folder / "huge.txt"
    with huge.open("w", encoding="utf-8") as file:
        file.write("A headline\n\n")
        for _ in range(50):
            file.write("word " * 200_000 + "\n")

    message = refused(data_dir, huge)

    assert f"huge.txt is {huge.stat().st_size:,} bytes" in message
    assert f"more than the {MAX_RELEASE_FILE_BYTES:,} allowed" in message
    assert "link to long documents" in message


def test_a_body_too_long_for_an_email_is_refused_naming_the_body(
    data_dir: Path, folder: Path
) -> None:
    release = folder / "long.txt"
    release.write_text("A headline\n\n" + "word " * (MAX_TEXT_CHARACTERS // 5 + 10), "utf-8")
    assert release.stat().st_size < MAX_RELEASE_FILE_BYTES

    message = refused(data_dir, release)

    assert re.search(r"the body is [\d,]+ characters long", message), message
    assert f"more than the {MAX_TEXT_CHARACTERS:,}" in message


# --- what an image must be -----------------------------------------------------------------


def png(width: int, height: int, pixels: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def test_a_file_that_only_starts_like_a_png_is_refused(data_dir: Path, folder: Path) -> None:
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 50)

    message = refused(data_dir, attaching(folder, "photo.png", image=True))

    assert "photo.png is not a readable image" in message
    assert "export it again" in message


def test_an_attached_image_is_decoded_too(data_dir: Path, folder: Path) -> None:
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)

    assert "photo.png is not a readable image" in refused(data_dir, attaching(folder, "photo.png"))


def test_an_image_that_would_decompress_to_gigabytes_is_refused(
    data_dir: Path, folder: Path
) -> None:
    (folder / "bomb.png").write_bytes(png(100_000, 100_000))
    assert (folder / "bomb.png").stat().st_size < 200

    message = refused(data_dir, attaching(folder, "bomb.png", image=True))

    assert "bomb.png declares more pixels than an image may have" in message
    assert "save it at a smaller size" in message


def test_a_real_image_and_pdf_are_stored(data_dir: Path, folder: Path) -> None:
    (folder / "small.png").write_bytes(png(2, 1, b"\0" + b"\xff\0\0" * 2))
    release = markdown(
        folder,
        'headline = "Charity opens refuge"\n'
        '[[images]]\nfile = "small.png"\nalt = "A red line"\n'
        '[[attachments]]\nfile = "report.pdf"',
    )

    assert "created release 1: Charity opens refuge" in created(data_dir, release)


# --- hidden characters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "character"),
    [
        (f"Charity opens refuge {RLO}fdp.exe\n\nThe body.\n", "headline", "U+202E"),
        (f"Charity{ZERO_WIDTH_SPACE} opens refuge\n\nThe body.\n", "headline", "U+200B"),
    ],
)
def test_hidden_characters_in_a_plain_text_headline_are_refused(
    data_dir: Path, folder: Path, text: str, field: str, character: str
) -> None:
    release = folder / "release.txt"
    release.write_text(text, encoding="utf-8")

    message = refused(data_dir, release)

    assert f"the {field} contains invisible or text-direction characters ({character}" in message
    assert "retype it without them" in message


@pytest.mark.parametrize(
    ("front", "field"),
    [
        (f'headline = "Refuge opens {RLO}"', "headline"),
        (f'headline = "Refuge"\ndateline = "4 March{ZERO_WIDTH_SPACE} 2031"', "dateline"),
        (
            f'headline = "Refuge"\n[[quotes]]\ntext = "Hi"\nname = "Diana{RLO} Barran"',
            "name in quote 1",
        ),
        (
            'headline = "Refuge"\n[[links]]\nlabel = "Report\\u2066"\nurl = "https://example.org"',
            "label of link 1",
        ),
        ('headline = "Refuge \\u001b[31m opens"', "headline"),
    ],
)
def test_hidden_characters_in_a_one_line_field_are_refused_naming_it(
    data_dir: Path, folder: Path, front: str, field: str
) -> None:
    message = refused(data_dir, markdown(folder, front))

    assert f"the {field} contains invisible or text-direction characters" in message


def test_every_field_with_hidden_characters_is_listed_at_once(data_dir: Path, folder: Path) -> None:
    front = f'headline = "Refuge{RLO}"\ndateline = "4 March{ZERO_WIDTH_SPACE} 2031"'

    message = refused(data_dir, markdown(folder, front))

    assert "the headline contains" in message
    assert "the dateline contains" in message


def test_joiners_inside_words_of_scripts_that_need_them_are_kept(
    data_dir: Path, folder: Path
) -> None:
    # ZWNJ between two Persian letters, ZWJ inside an emoji family.
    headline = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f468\u200d\U0001f469"

    output = created(data_dir, markdown(folder, f'headline = "{headline}"'))

    assert f"created release 1: {headline}" in output


def test_a_subject_never_carries_hidden_characters_of_a_release_stored_earlier(
    data_dir: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release.txt"
    release.write_text("Charity opens refuge fdp.exe\n\nThe body.\n", encoding="utf-8")
    created(data_dir, release)
    # As a release stored before such characters were refused may read.
    with sqlite3.connect(data_dir / "distributor.sqlite3") as db:
        db.execute(
            "UPDATE releases SET headline = ?",
            (f"Charity opens refuge {RLO}fdp.exe{ZERO_WIDTH_SPACE}",),
        )
    eml = tmp_path / "preview.eml"

    result = run(data_dir, "release", "preview", "1", "--eml", str(eml))

    assert result.returncode == 0, result.stderr
    subject = str(make_header(decode_header(message_from_bytes(eml.read_bytes())["Subject"])))
    assert subject == "[TEST] Charity opens refuge fdp.exe"
    assert "subject: [TEST] Charity opens refuge fdp.exe" in result.stdout


# --- the front matter's shape --------------------------------------------------------------


@pytest.mark.parametrize(
    "front",
    [
        "a = " + "[" * 5_000 + "]" * 5_000,
        "a = " + "{b = " * 5_000 + "1" + "}" * 5_000,
        "a" + ".a" * 40_000 + " = 1",
        "[a" + ".a" * 40_000 + "]",
        "[[a" + '."a"' * 10_000 + "]]",
    ],
    ids=["arrays", "inline tables", "dotted key", "table header", "quoted dotted header"],
)
def test_deep_nesting_is_refused_clearly(data_dir: Path, folder: Path, front: str) -> None:
    message = refused(data_dir, markdown(folder, 'headline = "x"\n' + front))

    assert f"nests arrays, tables or dotted keys more than {MAX_NESTING} deep (line 3)" in message


def test_brackets_and_dots_inside_strings_and_comments_do_not_count(
    data_dir: Path, folder: Path
) -> None:
    front = (
        f'headline = "{"[" * 100}"  # {"{" * 100}\n'
        f"standfirst = '{'.' * 100}'\n"
        f'boilerplate = """{"[" * 100}\\""""\n'
        "[[links]]\n"
        f'label = "{"a." * 100}"\n'
        'url = "https://example.org/a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f"'
    )

    assert "created release 1" in created(data_dir, markdown(folder, front))


def test_a_front_matter_longer_than_a_release_needs_is_refused(
    data_dir: Path, folder: Path
) -> None:
    front = 'headline = "x"\nstandfirst = "' + "a" * MAX_FRONT_MATTER_CHARACTERS + '"'

    message = refused(data_dir, markdown(folder, front))

    assert "put the text in the body, after the closing +++" in message


def test_a_value_of_the_wrong_kind_is_shown_briefly(data_dir: Path, folder: Path) -> None:
    front = "headline = [" + ", ".join(["[1, 2, [3, [4, [5]]]]"] * 2_000) + "]"

    message = refused(data_dir, markdown(folder, front))

    assert "headline must be text in quotes, not [[1, 2, [...]], [1, 2, [...]]" in message
    assert len(message) < 300


# --- anything at all -----------------------------------------------------------------------

KNOWN_KEYS = ("headline", "dateline", "standfirst", "organisation", "template", "boilerplate")
TABLES = ("quotes", "contacts", "links", "images", "attachments")
TABLE_KEYS = ("text", "name", "role", "email", "phone", "label", "url", "file", "alt", "caption")
# Files the front matter may name; the unbounded ones (/dev/zero, pipes) are covered above,
# under the memory limit, rather than in this process.
PATHS = (
    "refuge.png",
    "report.pdf",
    "release.md",
    "missing.png",
    "photos",
    "../outside.pdf",
    "/etc/hostname",
    "",
    ".",
    "refuge.png\x00.pdf",
    "a" * 5_000,
    "outside-link.pdf",
)

texts = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(f"{RLO}\u200b\n[]{{}}"),
    max_size=40,
)
scalars = st.one_of(
    texts, st.integers(), st.floats(allow_nan=False), st.booleans(), st.sampled_from(PATHS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(TABLE_KEYS) | texts, inner, max_size=3)
    ),
    max_leaves=12,
)
plain_texts = st.sampled_from(["Charity opens refuge", "A", "Refuge\nopens", "x" * 400])
# Mostly well-formed, so that examples get past the TOML reader to the files and the store.
# (values of the wrong kind come from `anything` below).
field_texts = st.one_of(plain_texts, plain_texts, plain_texts, texts)
rows = st.dictionaries(
    st.sampled_from(TABLE_KEYS), st.one_of(st.sampled_from(PATHS), field_texts), max_size=4
)
files = st.sampled_from(PATHS)


def table_rows(table: str) -> st.SearchStrategy[dict[str, Any]]:
    """Rows with the keys the table takes, the required ones always."""
    allowed, required = FIELDS[table]
    value = files if table in ("images", "attachments") else field_texts
    return st.fixed_dictionaries(
        {key: files if key == "file" else field_texts for key in required},
        optional={key: value for key in allowed if key not in required},
    )


well_formed = st.fixed_dictionaries(
    {"headline": field_texts},
    optional={
        **{key: field_texts for key in KNOWN_KEYS[1:]},
        **{
            table: st.lists(st.one_of(table_rows(table), table_rows(table), rows), max_size=3)
            for table in TABLES
        },
    },
)
anything = st.dictionaries(st.sampled_from(KNOWN_KEYS + TABLES) | texts, values, max_size=4)
front_matters = st.one_of(well_formed, well_formed, well_formed, anything)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON's string escapes are TOML's, but for DEL, which TOML wants escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, int | float):
        return repr(value) if abs(value) < 1e300 else "0"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


@pytest.fixture
def fuzz_folder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    data = tmp_path / "var"
    upgrade(Settings(data_dir=data).effective_database_url)
    folder = tmp_path / "release"
    folder.mkdir()
    shutil.copy(FIXTURES / "refuge.png", folder / "refuge.png")
    shutil.copy(FIXTURES / "report.pdf", folder / "report.pdf")
    (folder / "photos").mkdir()
    (folder / "outside-link.pdf").symlink_to(tmp_path / "outside.pdf")
    shutil.copy(FIXTURES / "report.pdf", tmp_path / "outside.pdf")
    yield data, folder


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    front=front_matters,
    # Now and then, a front matter that is not TOML at all.
    raw_prefix=st.sampled_from([""] * 12 + ["[", "a = [[[", '"""', "x.y.z = 1\n"]),
    body=st.sampled_from(
        ["The body.", "The body.", "", "![x](refuge.png)", "Body.\n\n# Notes to editors\n\nn"]
    ),
    outside=st.booleans(),
)
def test_any_front_matter_is_stored_or_refused_cleanly(
    fuzz_folder: tuple[Path, Path],
    front: dict[str, Any],
    raw_prefix: str,
    body: str,
    outside: bool,
) -> None:
    data, folder = fuzz_folder
    lines = [f"{toml_key(key)} = {toml_value(value)}" for key, value in front.items()]
    text = raw_prefix + "\n".join(lines)
    release = folder / "release.md"
    release.write_text(f"+++\n{text}\n+++\n\n{body}\n", encoding="utf-8")
    before = releases_stored(data)
    options = ["--allow-outside-folder"] if outside else []

    result = CliRunner().invoke(
        app,
        ["release", "create", "--from", str(release), *options],
        env={
            **{name: None for name in os.environ if name.startswith("DISTRIBUTOR_")},
            "DISTRIBUTOR_DATA_DIR": str(data),
        },
    )

    # main() turns a DistributorError into "error: ..." and a non-zero exit; anything else
    # escaping would be a traceback.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, DistributorError), repr(result.exception)
        assert str(result.exception)
    assert result.exit_code in (0, 1, 2)
    event("stored" if result.exception is None else str(result.exception)[:90])
    stored = releases_stored(data) - before
    assert stored == (1 if result.exit_code == 0 and result.exception is None else 0)
