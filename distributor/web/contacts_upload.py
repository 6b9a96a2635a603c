"""Importing a contacts file from the browser: every row is checked first, and the problems
shown by line before anything is stored; only then does the press officer import it.

The file waits between the two steps under DATA_DIR/uploads, named by a random token and
the uploader's id, so that nobody else can import it; it is deleted once imported, and any
left behind (an import never confirmed) after a day.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from distributor.contacts.importing import (
    ImportOptions,
    ImportReport,
    NoValidRowError,
    import_contacts_file,
)
from distributor.errors import DistributorError, page_words
from distributor.web.auth import Caller, Changer
from distributor.web.contacts_common import render_contacts
from distributor.web.sessions import flash

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
UPLOAD_CHUNK = 1024 * 1024
FORGOTTEN_AFTER_SECONDS = 24 * 3600
SUFFIXES = {".csv", ".txt", ".tsv", ".json", ".jsonl", ".ndjson"}
TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


class UploadError(DistributorError):
    """An uploaded contacts file that cannot be taken: too large, of an unknown kind, gone."""


def _uploads(caller: Caller) -> Path:
    folder = caller.runtime.settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _clear_old(folder: Path) -> None:
    limit = time.time() - FORGOTTEN_AFTER_SECONDS
    for path in folder.glob("contacts-*"):
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)


def _held(caller: Caller, token: str) -> Path:
    """The uploaded file a token names, if this person uploaded it."""
    if len(token) != TOKEN_CHARS or not token.replace("-", "").replace("_", "").isalnum():
        raise UploadError("the uploaded file is not known; choose the file again")
    matches = list(_uploads(caller).glob(f"contacts-{caller.account.id}-{token}.*"))
    if not matches:
        raise UploadError(
            "the uploaded file is no longer here (it was imported, or left for over a day); "
            "choose the file again"
        )
    return matches[0]


async def keep_upload(caller: Caller, upload: UploadFile) -> tuple[Path, str]:
    name = upload.filename or ""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UploadError(
            f"{name or 'the file'} is not a CSV or JSON file; save it as .csv (UTF-8) or .json"
        )
    folder = _uploads(caller)
    _clear_old(folder)
    token = secrets.token_urlsafe(32)
    path = folder / f"contacts-{caller.account.id}-{token}{suffix}"
    size = 0
    with path.open("wb") as kept:
        while chunk := await upload.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                kept.close()
                path.unlink(missing_ok=True)
                raise UploadError(
                    f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB; split it and "
                    "import the parts one after the other"
                )
            kept.write(chunk)
    return path, name


def _check(caller: Caller, path: Path) -> tuple[ImportReport | None, list[str]]:
    """What importing the file would do: the rows it would store, and the problems by line.
    A dry run, in a transaction that is rolled back: nothing is stored."""
    options = ImportOptions(dry_run=True, skip_invalid=True)
    try:
        with caller.session() as session, session.begin():
            report = import_contacts_file(session, path, now=caller.now(), options=options)
            session.rollback()
    except NoValidRowError as exc:
        return None, [page_words(problem) for problem in exc.problems]
    return report, [page_words(problem) for problem in report.skipped]


@router.get("/contacts/import")
def import_form(request: Request, caller: Changer) -> Response:
    return render_contacts(request, caller, "contacts_import.html.j2", {}, tab="Import")


@router.post("/contacts/import")
async def check_upload(
    request: Request, caller: Changer, file: Annotated[UploadFile, File()]
) -> Response:
    """Keep the file and show what importing it would do; nothing is stored yet."""
    try:
        path, name = await keep_upload(caller, file)
        report, problems = _check(caller, path)
    except DistributorError as exc:
        return render_contacts(
            request,
            caller,
            "contacts_import.html.j2",
            {"error": page_words(exc)},
            tab="Import",
            status_code=400 if isinstance(exc, UploadError) else 422,
        )
    log.info("contacts file checked", extra={"problems": len(problems)})
    return render_contacts(
        request,
        caller,
        "contacts_import_check.html.j2",
        {
            "name": name,
            "token": _token_of(path),
            "report": report,
            "problems": problems,
        },
        tab="Import",
        status_code=200 if report is not None else 422,
    )


def _token_of(path: Path) -> str:
    """The token in a kept file's name, contacts-USER-TOKEN.csv."""
    return path.stem.split("-", 2)[2]


@router.post("/contacts/import/confirm")
def confirm_import(
    request: Request,
    caller: Changer,
    token: Annotated[str, Form(max_length=64)],
    skip_invalid: Annotated[bool, Form()] = False,
    name: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """The same as `distributor contacts import FILE [--skip-invalid]`."""
    path = _held(caller, token)
    source = f"import of {' '.join(name.split()) or path.name}"
    options = ImportOptions(skip_invalid=skip_invalid, source=source)
    with caller.transaction() as session:
        report = import_contacts_file(session, path, now=caller.now(), options=options)
    path.unlink(missing_ok=True)
    problems = report.problem_count
    skipped = f"; left out {problems} row(s) with problems" if problems else ""
    flash(
        request,
        f"Imported {report.created} new and updated {report.updated} contact(s){skipped}.",
    )
    return RedirectResponse("/contacts", status_code=303)
