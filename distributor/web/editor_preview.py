"""The live preview: the release as the editor's form stands, built exactly as a send would
build it for a chosen contact (`distributor.preview`, as `release preview` does), marked TEST.

The HTML is served on its own, into a sandboxed iframe, under a policy that allows no script
at all: a release's HTML is sanitised, and this keeps it inert even if it were not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, JSONResponse, Response

from distributor.errors import DistributorError, NotFoundError, page_words
from distributor.mail.builder import MessageBuilder, Recipient
from distributor.organisations import get_organisation
from distributor.preview import (
    SAMPLE_RECIPIENT,
    Preview,
    make_preview,
    preview_notice,
    recipient_for,
)
from distributor.releases import content_of, get_release
from distributor.releases.content import ReleaseContent, draft_of, profile_of
from distributor.releases.store import draft_problems
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.web.auth import Caller, Changer, Reader
from distributor.web.editor_form import EditorForm, draft_of_form, editor_form_from
from distributor.web.editor_page import policy_header
from distributor.web.editor_problems import problem_lines
from distributor.web.pages import pages_of
from distributor.web.params import ReleaseId

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# The preview's own policy: the message's inline styles and its pictures (embedded as data:
# URLs, or remote https ones as in a mail program), nothing else; and the frame may sit only
# in this site's pages.
FRAME_POLICY = {
    "default-src": "'none'",
    "style-src": "'unsafe-inline'",
    "img-src": "data: https:",
    "font-src": "data:",
    "form-action": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'self'",
    "sandbox": "",
}
FRAME_HEADERS = {
    "Content-Security-Policy": policy_header(FRAME_POLICY),
    "X-Frame-Options": "SAMEORIGIN",
}


async def posted_form(request: Request) -> FormData:
    """The posted form (already read, and cached, by the CSRF check)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


@dataclass
class FormPreview:
    """The release as the form describes it, ready to build, and what stops it being saved."""

    content: ReleaseContent
    notice: EmbargoNotice | None
    recipient: Recipient
    problems: list[str] = field(default_factory=list)


def form_preview(session: Session, form: EditorForm, *, caller: Caller) -> FormPreview:
    """Read what the form names (the stored release's files, the organisation, the contact
    to personalise as); a name that is not found is put on its field, not raised."""
    stored = draft_of(get_release(session, form.release_id)) if form.release_id else None
    draft = draft_of_form(form, stored=stored)
    max_bytes = caller.runtime.settings.max_attachment_bytes
    problems = problem_lines(draft_problems(draft, max_asset_bytes=max_bytes))
    profile = None
    if draft.organisation:
        try:
            profile = profile_of(get_organisation(session, draft.organisation))
        except NotFoundError as exc:
            form.error("organisation", page_words(exc))
    try:
        recipient = recipient_for(session, form.preview_as or None)
    except NotFoundError as exc:
        form.error("preview_as", page_words(exc))
        recipient = SAMPLE_RECIPIENT
    notice = None
    if form.release_id:
        notice = preview_notice(
            session, release_id=form.release_id, embargo=None, zone=None, now=caller.now()
        )
    return FormPreview(
        content=ReleaseContent(draft, profile),
        notice=notice,
        recipient=recipient,
        problems=problems,
    )


def test_builder(caller: Caller, prepared: FormPreview) -> MessageBuilder:
    return caller.runtime.message_builder(
        prepared.content, send_id=0, notice=prepared.notice, test=True
    )


def _built(caller: Caller, prepared: FormPreview) -> tuple[Preview | None, str]:
    try:
        return make_preview(test_builder(caller, prepared), prepared.recipient), ""
    except DistributorError as exc:
        return None, page_words(exc)


@router.post("/editor/preview")
def preview_facts(caller: Changer, posted: PostedForm) -> Response:
    """The subject, the plain-text part, the warnings and what stops saving, as JSON."""
    form = editor_form_from(posted)
    with caller.session() as session:
        prepared = form_preview(session, form, caller=caller)
    preview, failure = _built(caller, prepared)
    body: dict[str, Any] = {
        "subject": preview.subject if preview else "",
        "text": preview.text.replace("\r\n", "\n") if preview else "",
        "warnings": preview.warnings if preview else [],
        "problems": prepared.problems + ([failure] if failure else []),
        "errors": {key: " ".join(messages) for key, messages in form.errors.items()},
    }
    return JSONResponse(body)


@router.post("/editor/preview/html")
def preview_html(request: Request, caller: Changer, posted: PostedForm) -> Response:
    """The HTML part as the form stands, for the preview frame (`view=text`: the text part)."""
    form = editor_form_from(posted)
    with caller.session() as session:
        prepared = form_preview(session, form, caller=caller)
    preview, failure = _built(caller, prepared)
    if preview is None:
        return _frame_message(request, "The preview cannot be built yet", failure)
    if posted.get("view") == "text":
        return _frame_text(request, preview)
    return HTMLResponse(preview.html, headers=FRAME_HEADERS)


@router.get("/releases/{release_id}/preview")
def stored_preview(
    request: Request, caller: Reader, release_id: ReleaseId, contact: str = ""
) -> Response:
    """The saved release as `release preview` builds it (for a contact, or a sample)."""
    with caller.session() as session:
        notice = preview_notice(
            session, release_id=release_id, embargo=None, zone=None, now=caller.now()
        )
        content = content_of(get_release(session, release_id))
        try:
            recipient = recipient_for(session, contact.strip() or None)
        except NotFoundError as exc:
            return _frame_message(request, "No such contact", page_words(exc))
    builder = caller.runtime.message_builder(content, send_id=0, notice=notice, test=True)
    try:
        preview = make_preview(builder, recipient)
    except DistributorError as exc:
        return _frame_message(request, "The preview cannot be built", page_words(exc))
    return HTMLResponse(preview.html, headers=FRAME_HEADERS)


def _frame_message(request: Request, title: str, message: str) -> Response:
    return pages_of(request).templates.TemplateResponse(
        request,
        "editor_frame.html.j2",
        {"title": title, "message": message, "text": None},
        headers=FRAME_HEADERS,
    )


def _frame_text(request: Request, preview: Preview) -> Response:
    return pages_of(request).templates.TemplateResponse(
        request,
        "editor_frame.html.j2",
        {"title": preview.subject, "message": "", "text": preview.text},
        headers=FRAME_HEADERS,
    )
