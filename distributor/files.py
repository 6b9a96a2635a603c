"""Uploaded files (release images and attachments, organisation logos): what a file really is,
judged by its first bytes, not its name.

Shared by `distributor.releases` and `distributor.organisations`, so it depends on neither.
"""

from __future__ import annotations

import posixpath
import unicodedata

from distributor.errors import DistributorError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
ATTACHMENT_TYPES = ("application/pdf", *IMAGE_TYPES)
MAX_FILENAME = 255


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
