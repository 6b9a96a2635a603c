"""Uploaded files (release images and attachments, organisation logos): what a file really is,
judged by its first bytes, not its name.

Shared by `distributor.releases` and `distributor.organisations`, so it depends on neither.
"""

from __future__ import annotations

import io
import os
import posixpath
import stat
import unicodedata
import warnings
from pathlib import Path

from PIL import Image

from distributor.errors import DistributorError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
ATTACHMENT_TYPES = ("application/pdf", *IMAGE_TYPES)
MAX_FILENAME = 255
# Pillow's names for the image formats releases may carry; cameras write JPEGs that Pillow
# reads as MPO (a JPEG with a second picture in it).
DECODED_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


def sniff_content_type(data: bytes) -> str | None:
    """The content type the bytes themselves declare, for the types releases and logos may carry."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_filename(name: str) -> str:
    """The last part of a path, on one line: what the journalist's mail program will show."""
    base = posixpath.basename(name.replace("\\", "/"))
    cleaned = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    cleaned = " ".join(cleaned.split())
    if not cleaned or cleaned in (".", ".."):
        raise DistributorError(f"the file name {name!r} is empty once cleaned; rename the file")
    return cleaned[-MAX_FILENAME:]


def checked_content_type(filename: str, data: bytes, *, allowed: tuple[str, ...]) -> str:
    """The file's real type, refused unless it is one of `allowed`."""
    if not data:
        raise DistributorError(f"{filename} is empty; attach the real file")
    found = sniff_content_type(data)
    if found not in allowed:
        kinds = ", ".join(t.split("/")[1].upper() for t in allowed)
        what = "of an unknown type" if found is None else f"a {found} file"
        raise DistributorError(f"{filename} is {what}; releases can carry {kinds} here")
    return found


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height in pixels of a PNG, GIF or JPEG; None when they cannot be read."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith((b"GIF87a", b"GIF89a")) and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        # Start-of-frame markers carry the size; C4, C8 and CC are other tables.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return width, height
        position += 2 + length
    return None


class FileRefusedError(DistributorError):
    """A file that is not read: not a regular file, or larger than allowed."""


def read_regular_file(path: Path, *, limit: int, shown_as: str, over_limit: str) -> bytes:
    """The bytes of the regular file at `path`, refused if it is anything else or holds more
    than `limit` bytes; `over_limit` says what to do instead.

    A device such as /dev/zero never ends and a pipe may never open, so the kind of file is
    checked before it is opened, and again on the open file in case it was swapped between
    the two. The size is checked before reading and the read stops one byte past the limit,
    since a file can grow while it is read.
    """
    try:
        _require_regular(os.stat(path).st_mode, shown_as)
        # Non-blocking: if a pipe took the file's place after the check, opening it returns
        # at once instead of waiting for a writer.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        raise FileRefusedError(f"cannot read {shown_as}: {_reason(exc)}") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        _require_regular(status.st_mode, shown_as)
        if status.st_size > limit:
            raise FileRefusedError(
                f"{shown_as} is {status.st_size:,} bytes, more than the {limit:,} allowed; "
                f"{over_limit}"
            )
        try:
            data = file.read(limit + 1)
        except OSError as exc:
            raise FileRefusedError(f"cannot read {shown_as}: {_reason(exc)}") from None
    if len(data) > limit:
        raise FileRefusedError(
            f"{shown_as} holds more than the {limit:,} bytes allowed; {over_limit}"
        )
    return data


def _require_regular(mode: int, shown_as: str) -> None:
    if stat.S_ISREG(mode):
        return
    kind = "a folder" if stat.S_ISDIR(mode) else "a device or a pipe, not a file"
    raise FileRefusedError(f"{shown_as} is {kind}; give the path of an ordinary file")


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "the path cannot be used (it holds a character no file name can)"


def checked_image(filename: str, data: bytes, *, content_type: str) -> None:
    """Refuse data that starts like an image but does not decode as the same kind of image.

    Pillow reads the header and checks the structure without decoding every pixel; an image
    whose pixel count could exhaust the memory of whoever opens it (a decompression bomb) is
    refused, not merely warned about.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(DECODED_TYPES)) as image:
                found = DECODED_TYPES.get(image.format or "")
                width, height = image.size
                image.verify()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise DistributorError(
            f"{filename} declares more pixels than an image may have "
            f"({Image.MAX_IMAGE_PIXELS:,}); save it at a smaller size"
        ) from None
    except Exception as exc:  # Pillow raises many kinds for broken data; each means the same.
        raise DistributorError(
            f"{filename} is not a readable image ({type(exc).__name__}: {exc}); "
            "export it again as PNG, JPEG, GIF or WebP"
        ) from None
    if found != content_type:
        raise DistributorError(
            f"{filename} starts like {content_type} but decodes as {found or 'something else'}; "
            "export it again as PNG, JPEG, GIF or WebP"
        )
    if width <= 0 or height <= 0:
        raise DistributorError(f"{filename} has no pixels; attach the real image")
