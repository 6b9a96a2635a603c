"""The release editor's form: what the officer typed, kept exactly as typed, and the draft
it makes.

Nothing here checks a release: the core does (`distributor.releases`), and its problems are
placed back next to the field they name, so that the form can be shown again with every
value the officer typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from starlette.datastructures import FormData, UploadFile

from distributor.errors import DistributorError
from distributor.files import (
    ATTACHMENT_TYPES,
    IMAGE_TYPES,
    checked_content_type,
    checked_image,
    clean_filename,
)
from distributor.releases.draft import (
    AttachmentFile,
    BodyFormat,
    ImageFile,
    Link,
    PressContact,
    Quote,
    ReleaseDraft,
)
from distributor.releases.plain_text import clean_pasted_text
from distributor.web.params import MAX_ID

QUOTE_FIELDS = ("text", "name", "role")
CONTACT_FIELDS = ("name", "role", "email", "phone")
LINK_FIELDS = ("label", "url")
FILE_KINDS = ("image", "attachment")
GENERAL = "form"  # problems that name no one field

Row = dict[str, str]


class UploadTooLargeError(DistributorError):
    """An uploaded file larger than a release's files may be in all."""


@dataclass(frozen=True, slots=True)
class KeptFile:
    """A file the release already has, with what the form says of it."""

    filename: str
    kind: str
    size: int
    alt: str = ""
    caption: str = ""
    remove: bool = False


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes


@dataclass
class EditorForm:
    """Every value of the editor, as strings, in the shape the template shows them."""

    release_id: int | None = None
    headline: str = ""
    dateline: str = ""
    standfirst: str = ""
    body_format: str = BodyFormat.TEXT.value
    body: str = ""
    notes_to_editors: str = ""
    boilerplate: str = ""
    organisation: str = ""
    template: str = "release"
    quotes: list[Row] = field(default_factory=list)
    contacts: list[Row] = field(default_factory=list)
    links: list[Row] = field(default_factory=list)
    files: list[KeptFile] = field(default_factory=list)
    new_file_kind: str = "image"
    new_file_alt: str = ""
    new_file_caption: str = ""
    # The name of a file chosen but not stored (the form failed): it must be chosen again.
    new_file_name: str = ""
    preview_as: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def errors_for(self, key: str) -> list[str]:
        return self.errors.get(key, [])

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)


def _text(form: FormData, name: str) -> str:
    """The field's text with the line endings browsers send (CRLF) made plain, as a release
    file's are."""
    value = form.get(name)
    return clean_pasted_text(value) if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [clean_pasted_text(v) if isinstance(v, str) else "" for v in form.getlist(name)]


def _rows(form: FormData, prefix: str, names: Sequence[str]) -> list[Row]:
    """Rows of repeated fields (quote_text, quote_name, ...), in order; blank rows dropped."""
    columns = {name: _texts(form, f"{prefix}_{name}") for name in names}
    count = max((len(values) for values in columns.values()), default=0)
    rows = []
    for index in range(count):
        row = {
            name: (values[index] if index < len(values) else "") for name, values in columns.items()
        }
        if any(value.strip() for value in row.values()):
            rows.append(row)
    return rows


def _release_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_ID else None


def editor_form_from(form: FormData) -> EditorForm:
    """What was posted, as typed (a field left out reads as empty)."""
    names = _texts(form, "file_name")
    kinds = _texts(form, "file_kind")
    sizes = _texts(form, "file_size")
    alts = _texts(form, "file_alt")
    captions = _texts(form, "file_caption")
    removed = set(_texts(form, "file_remove"))
    files = [
        KeptFile(
            filename=name,
            kind=kinds[i] if i < len(kinds) else "",
            size=int(sizes[i]) if i < len(sizes) and sizes[i].isdigit() else 0,
            alt=alts[i] if i < len(alts) else "",
            caption=captions[i] if i < len(captions) else "",
            remove=name in removed,
        )
        for i, name in enumerate(names)
    ]
    upload = form.get("new_file")
    body_format = _text(form, "body_format")
    kind = _text(form, "new_file_kind")
    return EditorForm(
        release_id=_release_id(_text(form, "release_id")),
        headline=_text(form, "headline"),
        dateline=_text(form, "dateline"),
        standfirst=_text(form, "standfirst"),
        body_format=body_format if body_format in set(BodyFormat) else BodyFormat.TEXT.value,
        body=_text(form, "body"),
        notes_to_editors=_text(form, "notes_to_editors"),
        boilerplate=_text(form, "boilerplate"),
        organisation=_text(form, "organisation"),
        template=_text(form, "template") or "release",
        quotes=_rows(form, "quote", QUOTE_FIELDS),
        contacts=_rows(form, "contact", CONTACT_FIELDS),
        links=_rows(form, "link", LINK_FIELDS),
        files=files,
        new_file_kind=kind if kind in FILE_KINDS else "image",
        new_file_alt=_text(form, "new_file_alt"),
        new_file_caption=_text(form, "new_file_caption"),
        new_file_name=(upload.filename or "") if isinstance(upload, UploadFile) else "",
        preview_as=_text(form, "preview_as").strip(),
    )


def read_upload(form: FormData, *, limit: int) -> Upload | None:
    """The file chosen in the form, read up to `limit` bytes; None when none was chosen."""
    upload = form.get("new_file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise UploadTooLargeError(
            f"{upload.filename} is larger than the {limit:,} bytes a release's images and "
            "attachments may come to in all (every recipient's message carries them); link "
            "to large files instead"
        )
    return Upload(filename=upload.filename, data=data)


def form_of(draft: ReleaseDraft, *, release_id: int | None) -> EditorForm:
    """The form showing a stored release's content."""
    return EditorForm(
        release_id=release_id,
        headline=draft.headline,
        dateline=draft.dateline,
        standfirst=draft.standfirst,
        body_format=draft.body_format.value,
        body=draft.body,
        notes_to_editors=draft.notes_to_editors,
        boilerplate=draft.boilerplate,
        organisation=draft.organisation,
        template=draft.template,
        quotes=[{"text": q.text, "name": q.name, "role": q.role} for q in draft.quotes],
        contacts=[
            {"name": c.name, "role": c.role, "email": c.email, "phone": c.phone}
            for c in draft.press_contacts
        ],
        links=[{"label": link.label, "url": link.url} for link in draft.links],
        files=[
            *(
                KeptFile(i.filename, "image", len(i.data), alt=i.alt, caption=i.caption)
                for i in draft.images
            ),
            *(KeptFile(a.filename, "attachment", len(a.data)) for a in draft.attachments),
        ],
    )


def draft_of_form(
    form: EditorForm, *, stored: ReleaseDraft | None, upload: Upload | None = None
) -> ReleaseDraft:
    """The draft the form describes. Files come from the stored release (`stored`), with the
    alt text and captions the form gives, less those marked for removal, plus the upload."""
    images: list[ImageFile] = []
    attachments: list[AttachmentFile] = []
    if stored is not None:
        wanted = {f.filename: f for f in form.files}
        for image in stored.images:
            kept = wanted.get(image.filename)
            if kept is None or not kept.remove:
                alt, caption = (kept.alt, kept.caption) if kept else (image.alt, image.caption)
                images.append(replace(image, alt=alt, caption=caption))
        attachments = [
            a
            for a in stored.attachments
            if a.filename not in wanted or not wanted[a.filename].remove
        ]
    if upload is not None:
        added = _uploaded(form, upload)
        if isinstance(added, ImageFile):
            images.append(added)
        else:
            attachments.append(added)
    return ReleaseDraft(
        headline=form.headline,
        dateline=form.dateline.strip(),
        standfirst=form.standfirst.strip(),
        body=form.body.strip(),
        body_format=BodyFormat(form.body_format),
        notes_to_editors=form.notes_to_editors.strip(),
        boilerplate=form.boilerplate.strip(),
        organisation=" ".join(form.organisation.split()),
        template=form.template.strip() or "release",
        quotes=tuple(Quote(**_stripped(row)) for row in form.quotes),
        press_contacts=tuple(PressContact(**_stripped(row)) for row in form.contacts),
        links=tuple(Link(**_stripped(row)) for row in form.links),
        images=tuple(images),
        attachments=tuple(attachments),
    )


def _stripped(row: Row) -> Row:
    return {name: value.strip() for name, value in row.items()}


def _uploaded(form: EditorForm, upload: Upload) -> ImageFile | AttachmentFile:
    """The chosen file as the release will carry it, judged by its bytes, as a release file's
    images and attachments are."""
    filename = clean_filename(upload.filename)
    if form.new_file_kind == "image":
        content_type = checked_content_type(filename, upload.data, allowed=IMAGE_TYPES)
        checked_image(filename, upload.data, content_type=content_type)
        return ImageFile(
            filename=filename,
            content_type=content_type,
            data=upload.data,
            alt=form.new_file_alt.strip(),
            caption=form.new_file_caption.strip(),
        )
    content_type = checked_content_type(filename, upload.data, allowed=ATTACHMENT_TYPES)
    if content_type in IMAGE_TYPES:
        checked_image(filename, upload.data, content_type=content_type)
    return AttachmentFile(filename=filename, content_type=content_type, data=upload.data)
