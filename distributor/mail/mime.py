"""The MIME body of one variant, encoded once, with gaps for the personal values.

    multipart/mixed                 only with attachments
      multipart/related             only with images shown by Content-ID
        multipart/alternative
          text/plain                first: the part shown when HTML is not
          text/html
        image/...                   Content-ID, inline
      application/pdf, image/...    attachments

Boundaries start with "=_", which neither quoted-printable nor base64 can produce, so no
line of content can ever be mistaken for one.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from functools import partial

from markupsafe import escape

from distributor.mail.headers import filename_parameter
from distributor.mail.quoted_printable import encode_piece, encode_value
from distributor.releases.draft import AttachmentFile
from distributor.rendering.personal import Skeleton
from distributor.rendering.render import RenderedVariant
from distributor.rendering.view import InlineImage

Slot = tuple[str, bool]  # (slot name, in the HTML part?)


@dataclass(frozen=True, slots=True)
class Fillable:
    """Bytes with gaps: pieces[0] gap[0] pieces[1] ... pieces[-1]."""

    pieces: tuple[bytes, ...]
    gaps: tuple[Slot, ...]

    @property
    def distinct_gaps(self) -> frozenset[Slot]:
        return frozenset(self.gaps)

    def fill(self, values: Mapping[Slot, bytes]) -> bytes:
        return self.join([values[gap] for gap in self.gaps])

    def join(self, values: Sequence[bytes]) -> bytes:
        """The bytes with `values` in the gaps, in the order of `gaps`."""
        out: list[bytes] = [b""] * (2 * len(self.gaps) + 1)
        out[0::2] = self.pieces
        out[1::2] = values
        return b"".join(out)


class _Writer:
    def __init__(self) -> None:
        self.pieces: list[bytearray] = [bytearray()]
        self.gaps: list[Slot] = []

    def bytes(self, data: bytes) -> None:
        self.pieces[-1] += data

    def line(self, text: str) -> None:
        self.pieces[-1] += text.encode("ascii") + b"\r\n"

    def gap(self, slot: str, *, html: bool) -> None:
        self.gaps.append((slot, html))
        self.pieces.append(bytearray())

    def done(self) -> Fillable:
        return Fillable(tuple(bytes(p) for p in self.pieces), tuple(self.gaps))


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


HTML_SPECIAL = frozenset("&<>\"'")


def escape_html(value: str) -> str:
    """As Jinja2's autoescape writes it (markupsafe), so the proof in rendering holds."""
    return str(escape(value)) if not HTML_SPECIAL.isdisjoint(value) else value


def encode_personal(value: str, *, html: bool) -> bytes:
    """A personal value for a gap: escaped for the HTML part, then quoted-printable."""
    return encode_value(escape_html(value) if html else value)


def _base64_lines(data: bytes, *, key: str, cache: MutableMapping[str, bytes]) -> bytes:
    encoded = cache.get(key)
    if encoded is None:
        encoded = cache[key] = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return encoded


def _quoted_printable_part(writer: _Writer, skeleton: Skeleton, *, subtype: str) -> None:
    writer.line(f'Content-Type: text/{subtype}; charset="utf-8"')
    writer.line("Content-Transfer-Encoding: quoted-printable")
    writer.line("")
    html = subtype == "html"
    writer.bytes(encode_piece(crlf(skeleton.literals[0])))
    for slot, literal in zip(skeleton.slots, skeleton.literals[1:], strict=True):
        writer.gap(slot, html=html)
        writer.bytes(encode_piece(crlf(literal)))
    writer.line("")


def _image_part(writer: _Writer, *, image: InlineImage, cache: MutableMapping[str, bytes]) -> None:
    writer.line(f"Content-Type: {image.content_type}")
    writer.line("Content-Transfer-Encoding: base64")
    writer.line(f"Content-ID: <{image.content_id}>")
    writer.line("Content-Disposition: inline;")
    writer.line(f" {filename_parameter(image.filename)}")
    writer.line("")
    writer.bytes(_base64_lines(image.data, key=image.content_id, cache=cache))


def _attachment_part(
    writer: _Writer, *, attachment: AttachmentFile, number: int, cache: MutableMapping[str, bytes]
) -> None:
    name = filename_parameter(attachment.filename)
    writer.line(f"Content-Type: {attachment.content_type};")
    writer.line(f" {name.replace('filename', 'name', 1)}")
    writer.line("Content-Transfer-Encoding: base64")
    writer.line("Content-Disposition: attachment;")
    writer.line(f" {name}")
    writer.line("")
    writer.bytes(_base64_lines(attachment.data, key=f"attachment {number}", cache=cache))


def _multipart(writer: _Writer, boundary: str, parts: Iterable[Callable[[_Writer], None]]) -> None:
    for part in parts:
        writer.line(f"--{boundary}")
        part(writer)
    writer.line(f"--{boundary}--")


@dataclass(frozen=True, slots=True)
class MimeBody:
    """The Content-Type header of the message, and its body with gaps."""

    content_type: bytes
    body: Fillable


def new_boundary_seed() -> str:
    return "=_" + secrets.token_hex(12)


def mime_body(
    variant: RenderedVariant,
    *,
    attachments: tuple[AttachmentFile, ...],
    boundary_seed: str,
    encoded_files: MutableMapping[str, bytes],
) -> MimeBody:
    """`encoded_files` keeps the base64 of images and attachments between variants."""
    alternative = f"{boundary_seed}.alt"
    related = f"{boundary_seed}.rel"
    mixed = f"{boundary_seed}.mix"

    def alternative_part(writer: _Writer) -> None:
        _multipart(
            writer,
            alternative,
            [
                lambda w: _quoted_printable_part(w, variant.text, subtype="plain"),
                lambda w: _quoted_printable_part(w, variant.html, subtype="html"),
            ],
        )

    def alternative_with_header(writer: _Writer) -> None:
        writer.line("Content-Type: multipart/alternative;")
        writer.line(f' boundary="{alternative}"')
        writer.line("")
        alternative_part(writer)

    def related_part(writer: _Writer) -> None:
        parts: list[Callable[[_Writer], None]] = [alternative_with_header]
        parts += [partial(_image_part, image=i, cache=encoded_files) for i in variant.images]
        _multipart(writer, related, parts)

    def related_with_header(writer: _Writer) -> None:
        writer.line("Content-Type: multipart/related;")
        writer.line(f' boundary="{related}"; type="multipart/alternative"')
        writer.line("")
        related_part(writer)

    writer = _Writer()
    if attachments:
        top = f'Content-Type: multipart/mixed;\r\n boundary="{mixed}"\r\n'
        first = related_with_header if variant.images else alternative_with_header
        parts: list[Callable[[_Writer], None]] = [first]
        parts += [
            partial(_attachment_part, attachment=a, number=n, cache=encoded_files)
            for n, a in enumerate(attachments)
        ]
        _multipart(writer, mixed, parts)
    elif variant.images:
        top = (
            f'Content-Type: multipart/related;\r\n boundary="{related}"; '
            'type="multipart/alternative"\r\n'
        )
        related_part(writer)
    else:
        top = f'Content-Type: multipart/alternative;\r\n boundary="{alternative}"\r\n'
        alternative_part(writer)
    return MimeBody(content_type=top.encode("ascii"), body=writer.done())
