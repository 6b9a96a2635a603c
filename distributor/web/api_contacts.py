"""Contacts in the API: find them a page at a time, read one in full, browse the outlets,
and import a CSV or JSON file, every row checked before anything is stored, as `contacts
search`, `contacts show` and `contacts import` do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from distributor.contacts.importing import (
    ImportOptions,
    ImportReport,
    NoValidRowError,
    import_contacts_file,
)
from distributor.contacts.lookup import contact_detail, search_contacts
from distributor.contacts.outlets import find_outlets
from distributor.contacts.reading import FileFormat, csv_delimiter
from distributor.errors import ImportRejectedError
from distributor.vocabulary import LegalBasis
from distributor.web.auth import Caller, Changer, Reader
from distributor.web.contacts_common import MAX_FILTER, MAX_NAME
from distributor.web.contacts_upload import keep_upload
from distributor.web.pagination import PageModel, Paging, Slice, page_model
from distributor.web.params import EmailAddress
from distributor.web.problems import PROBLEM_RESPONSES, FieldRefusal, blaming, row_problems
from distributor.web.schemas_contacts import (
    FILE_POINTER,
    ContactOut,
    FoundContactOut,
    ImportOut,
    OutletOut,
    contact_out,
    found_contact_out,
    import_out,
    outlet_out,
)

router = APIRouter(tags=["contacts"], responses=PROBLEM_RESPONSES)

MAX_DELIMITER = 20
MAX_SOURCE = 200


@router.get("/contacts")
def find_contacts(
    caller: Reader,
    paging: Paging,
    q: Annotated[
        str, Query(max_length=MAX_NAME, description="Text in the name, address or outlet.")
    ] = "",
    matching: Annotated[
        str, Query(max_length=MAX_FILTER, description='A filter, e.g. beat = "crime".')
    ] = "",
) -> PageModel[FoundContactOut]:
    """Contacts in address order, all of them or those the text and the filter find."""
    with caller.session() as session, blaming(parameter="matching", location="query"):
        found = search_contacts(
            session,
            text=q.strip() or None,
            matching=matching.strip() or None,
            everyone=True,
            per_page=paging.per_page,
            page=paging.page,
        )
    page = Slice(
        items=found.contacts, page=paging.page, per_page=paging.per_page, total=found.total
    )
    return page_model(page, found_contact_out)


@router.get("/contacts/{email:path}")
def show_contact(caller: Reader, email: EmailAddress) -> ContactOut:
    """One contact in full: fields, outlet, lists, suppression and last deliveries."""
    with caller.session() as session:
        return contact_out(contact_detail(session, email))


@router.get("/outlets")
def find_outlets_(
    caller: Reader,
    paging: Paging,
    q: Annotated[str, Query(max_length=MAX_NAME, description="Text in the outlet's name.")] = "",
) -> PageModel[OutletOut]:
    """Outlets by name, with their embargo flags and how many journalists work there."""
    with caller.session() as session:
        found = find_outlets(session, text=q, offset=paging.offset, limit=paging.per_page)
    page = Slice(items=found.outlets, page=paging.page, per_page=paging.per_page, total=found.total)
    return page_model(page, outlet_out)


def _import(caller: Caller, path: Path, options: ImportOptions) -> ImportReport:
    try:
        with caller.transaction() as session:
            return import_contacts_file(session, path, now=caller.now(), options=options)
    except (ImportRejectedError, NoValidRowError) as exc:
        # Every bad row by its line; nothing was stored.
        head = str(exc).split("\n", 1)[0].rstrip(":")
        head = head.replace("pass --skip-invalid", "give skip_invalid=true")
        raise FieldRefusal(422, head, row_problems(exc.problems, pointer=FILE_POINTER)) from exc


@router.post("/contacts/import")
async def import_file(
    caller: Changer,
    file: Annotated[UploadFile, File(description="CSV with a header row, or JSON.")],
    dry_run: Annotated[bool, Query(description="Check and count, but store nothing.")] = False,
    skip_invalid: Annotated[
        bool, Query(description="Import the valid rows and report the rest by line.")
    ] = False,
    file_format: Annotated[
        FileFormat | None,
        Query(alias="format", description="csv or json; default from the file's name."),
    ] = None,
    delimiter: Annotated[
        str | None,
        Query(
            max_length=MAX_DELIMITER,
            description="The CSV separator: a character, or comma, semicolon or tab; "
            "default: detected from the header.",
        ),
    ] = None,
    raw: Annotated[
        bool, Query(description="Keep cells as written, without removing the ' before =.")
    ] = False,
    legal_basis: Annotated[
        LegalBasis, Query(description="For rows that name none.")
    ] = LegalBasis.LEGITIMATE_INTEREST,
    source: Annotated[
        str | None,
        Query(max_length=MAX_SOURCE, description="Where the data came from; default: the file."),
    ] = None,
) -> ImportOut:
    """Add or update contacts, keyed on the address. Every row is checked first: if any is
    bad (and skip_invalid is not given), nothing is stored and each problem is named by its
    line."""
    with blaming(parameter="delimiter", location="query"):
        separator = csv_delimiter(delimiter) if delimiter is not None else None
    with blaming(pointer=FILE_POINTER):
        path, name = await keep_upload(caller, file)
    options = ImportOptions(
        format=file_format,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        delimiter=separator,
        raw_cells=raw,
        source=source or f"import of {' '.join(name.split())}",
        legal_basis=legal_basis,
    )
    try:
        with blaming(pointer=FILE_POINTER):
            report = await run_in_threadpool(_import, caller, path, options)
    finally:
        path.unlink(missing_ok=True)
    return import_out(report)
