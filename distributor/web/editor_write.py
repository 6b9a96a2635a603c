"""Writing and editing a release, and a test copy to oneself, from the editor's form.

Saving calls the core as `release create` and `release edit` do; every problem it finds is
shown next to its field, with the form as it was typed.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from distributor.errors import DistributorError, TransportError, page_words
from distributor.models import Organisation
from distributor.preview import send_test_copies
from distributor.releases import InvalidReleaseError, create_release, get_release
from distributor.releases.content import draft_of
from distributor.releases.draft import ReleaseDraft
from distributor.releases.editing import edit_release
from distributor.releases.overview import ReleaseSummary, release_summaries
from distributor.releases.store import draft_problems
from distributor.web.auth import Caller, Changer
from distributor.web.editor_form import (
    GENERAL,
    EditorForm,
    draft_of_form,
    editor_form_from,
    form_of,
    read_upload,
)
from distributor.web.editor_page import render_editor_page
from distributor.web.editor_preview import PostedForm, form_preview, test_builder
from distributor.web.editor_problems import place_problems
from distributor.web.params import ReleaseId
from distributor.web.problems import status_of
from distributor.web.sessions import flash

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

NEW_PATH = "/editor/new"


def edit_path(release_id: int) -> str:
    return f"/releases/{release_id}/edit"


def _summary(caller: Caller, release_id: int) -> ReleaseSummary:
    with caller.session() as session:
        get_release(session, release_id)  # a missing release: 404, naming it
        (summary,) = release_summaries(session, release_id)
    return summary


def editor_page(
    request: Request,
    caller: Caller,
    form: EditorForm,
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    summary = _summary(caller, form.release_id) if form.release_id else None
    with caller.session() as session:
        organisations = session.scalars(select(Organisation.name).order_by(Organisation.name))
        organisation_names = list(organisations)
    return render_editor_page(
        request,
        caller,
        "editor.html.j2",
        {
            "form": form,
            "summary": summary,
            "action": edit_path(form.release_id) if form.release_id else NEW_PATH,
            "organisations": organisation_names,
            "max_file_bytes": caller.runtime.settings.max_attachment_bytes,
            "notice": notice,
            "general": GENERAL,
        },
        status_code=status,
    )


@router.get(NEW_PATH)
def new_release_form(request: Request, caller: Changer) -> Response:
    return editor_page(request, caller, EditorForm())


def _checked_draft(
    form: EditorForm, posted: FormData, *, stored: ReleaseDraft | None, limit: int
) -> ReleaseDraft | None:
    """The draft to save; or None, with every problem on the form, when the chosen file is
    refused (the rest is checked too, so that the officer sees everything at once)."""
    try:
        return draft_of_form(form, stored=stored, upload=read_upload(posted, limit=limit))
    except DistributorError as exc:
        form.error("new_file", page_words(exc))
    without_file = draft_of_form(form, stored=stored)
    place_problems(form, draft_problems(without_file, max_asset_bytes=limit))
    return None


@router.post(NEW_PATH)
def create_from_form(request: Request, caller: Changer, posted: PostedForm) -> Response:
    form = editor_form_from(posted)
    form.release_id = None
    warnings: list[str] = []
    limit = caller.runtime.settings.max_attachment_bytes
    draft = _checked_draft(form, posted, stored=None, limit=limit)
    if draft is None:
        return editor_page(request, caller, form, status=422)
    try:
        with caller.transaction() as session:
            release = create_release(
                session,
                draft,
                now=caller.now(),
                max_asset_bytes=limit,
                on_warning=warnings.append,
            )
            release_id = release.id
    except DistributorError as exc:
        return _refused(request, caller, form, exc)
    log.info("release created from the editor", extra={"release_id": release_id})
    flash(request, _saved_message("Saved as a new release.", warnings))
    return RedirectResponse(edit_path(release_id), status_code=303)


@router.get("/releases/{release_id}/edit")
def edit_release_form(request: Request, caller: Changer, release_id: ReleaseId) -> Response:
    with caller.session() as session:
        form = form_of(draft_of(get_release(session, release_id)), release_id=release_id)
    return editor_page(request, caller, form)


@router.post("/releases/{release_id}/edit")
def save_edit(
    request: Request, caller: Changer, release_id: ReleaseId, posted: PostedForm
) -> Response:
    form = editor_form_from(posted)
    form.release_id = release_id
    warnings: list[str] = []
    limit = caller.runtime.settings.max_attachment_bytes
    try:
        with caller.transaction() as session:
            stored = draft_of(get_release(session, release_id))
            draft = _checked_draft(form, posted, stored=stored, limit=limit)
            if draft is not None:
                edit_release(
                    session,
                    release_id,
                    draft,
                    now=caller.now(),
                    max_asset_bytes=limit,
                    on_warning=warnings.append,
                )
    except DistributorError as exc:
        return _refused(request, caller, form, exc)
    if draft is None:
        return editor_page(request, caller, form, status=422)
    log.info("release edited from the editor", extra={"release_id": release_id})
    flash(request, _saved_message("Saved.", warnings))
    return RedirectResponse(edit_path(release_id), status_code=303)


def _refused(request: Request, caller: Caller, form: EditorForm, exc: DistributorError) -> Response:
    """The form again, as typed, with each problem next to its field."""
    problems = exc.problems if isinstance(exc, InvalidReleaseError) else [page_words(exc)]
    place_problems(form, problems, upload_name=form.new_file_name)
    return editor_page(request, caller, form, status=status_of(exc))


def _saved_message(saved: str, warnings: list[str]) -> str:
    if not warnings:
        return saved
    return f"{saved} Warnings: " + " ".join(warnings)


@router.post("/editor/test-send")
def test_send(request: Request, caller: Changer, posted: PostedForm) -> Response:
    """A test copy of the release as the form stands (saved or not) to the officer's own
    address, personalised as the chosen contact, as `release test-send --to ME` sends it."""
    form = editor_form_from(posted)
    with caller.session() as session:
        prepared = form_preview(session, form, caller=caller)
    if prepared.problems:
        place_problems(form, prepared.problems)
    if form.has_errors:
        form.error("test_send", "Fix the problems marked above before sending a test copy.")
        return editor_page(request, caller, form, status=422)
    address = caller.account.email
    try:
        builder = test_builder(caller, prepared)
        transport = caller.runtime.open_transport()
        try:
            ((_, reply),) = send_test_copies(
                builder,
                addresses=[address],
                personalise_as=prepared.recipient,
                transport=transport,
            )
        finally:
            transport.close()
    except TransportError as exc:
        log.warning("test copy refused by the relay", extra={"release_id": form.release_id})
        form.error("test_send", f"The mail relay did not take the test copy: {exc}")
        return editor_page(request, caller, form, status=502)
    except DistributorError as exc:
        form.error("test_send", page_words(exc))
        return editor_page(request, caller, form, status=status_of(exc))
    log.info("test copy sent from the editor", extra={"release_id": form.release_id})
    notice = f"A test copy went to {address} (the relay answered: {reply})."
    if form.preview_as:
        notice += f" It is personalised as {form.preview_as}."
    return editor_page(request, caller, form, notice=notice)
