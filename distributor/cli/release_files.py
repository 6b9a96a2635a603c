"""Reading a release file from disk: plain text or Markdown with front matter, and the
images and attachments it names (relative to the file)."""

from __future__ import annotations

from pathlib import Path

from distributor.errors import DistributorError
from distributor.releases import (
    ReleaseDraft,
    is_structured,
    parse_release_markdown,
    parse_release_text,
)


def read_release(path: Path) -> ReleaseDraft:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DistributorError(f"cannot read {path}: {exc}") from exc
    if not is_structured(text):
        return parse_release_text(text)
    base = path.resolve().parent

    def read_file(name: str) -> bytes:
        target = (base / name).resolve()
        try:
            return target.read_bytes()
        except OSError as exc:
            raise DistributorError(
                f"cannot read {name} (looked for {target}): {exc.strerror}; paths are "
                "relative to the release file"
            ) from None

    return parse_release_markdown(text, read_file=read_file)
