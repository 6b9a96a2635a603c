"""Reading a release file from disk: plain text or Markdown with front matter, and the
images and attachments it names (relative to the file).

Every file is read with a limit and only if it is an ordinary file, so that a path to a
device, a pipe or a huge file is refused with a message instead of exhausting the machine.
"""

from __future__ import annotations

from pathlib import Path

from distributor.cli.context import load_settings
from distributor.errors import DistributorError
from distributor.files import FileRefusedError, read_regular_file
from distributor.releases import (
    ReleaseDraft,
    is_structured,
    parse_release_markdown,
    parse_release_text,
)

# A press release is a few KB of text; a megabyte is a short book. Not a setting: no one
# needs more, and images and attachments have their own limit (max_attachment_bytes).
MAX_RELEASE_FILE_BYTES = 1_000_000
ALLOW_OUTSIDE_OPTION = "--allow-outside-folder"


class AttachedFiles:
    """Reads the files a release names, inside its folder, within one budget for all of them
    (every recipient's message carries them all)."""

    def __init__(self, folder: Path, *, budget: int, allow_outside_folder: bool) -> None:
        self._folder = folder
        self._budget = budget
        self._remaining = budget
        self._allow_outside_folder = allow_outside_folder

    def __call__(self, name: str) -> bytes:
        target = self._resolve(name)
        data = read_regular_file(
            target,
            limit=self._remaining,
            shown_as=f"{name} ({target})" if str(target) != name else name,
            over_limit=(
                f"a release's images and attachments may come to {self._budget:,} bytes in all "
                "(DISTRIBUTOR_MAX_ATTACHMENT_BYTES) and every recipient's message carries "
                "them, so link to large files instead"
            ),
        )
        self._remaining -= len(data)
        return data

    def _resolve(self, name: str) -> Path:
        try:
            # Symbolic links are followed first, so that the checks apply to the real file.
            target = (self._folder / name).resolve()
        except (OSError, ValueError, RuntimeError):
            raise FileRefusedError(
                f"cannot use the path {name!r}; paths are relative to the release file"
            ) from None
        if not self._allow_outside_folder and not target.is_relative_to(self._folder):
            raise FileRefusedError(
                f"{name} is outside the release file's folder {self._folder} (it is {target}); "
                "paths are relative to the release file: move the file into its folder, or "
                f"pass {ALLOW_OUTSIDE_OPTION} if it really belongs elsewhere"
            )
        return target


def read_release(
    path: Path,
    *,
    allow_outside_folder: bool = False,
    max_attachment_bytes: int | None = None,
) -> ReleaseDraft:
    """The draft in the file at `path`; images and attachments are read from its folder
    (anywhere with `allow_outside_folder`), within `max_attachment_bytes` in all (default:
    the setting)."""
    data = read_regular_file(
        path,
        limit=MAX_RELEASE_FILE_BYTES,
        shown_as=str(path),
        over_limit="a press release is a few KB of text: link to long documents instead",
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DistributorError(
            f"cannot read {path}: it is not UTF-8 text (byte {exc.start + 1}); save it as "
            "UTF-8 text"
        ) from None
    if not is_structured(text):
        return parse_release_text(text)
    if max_attachment_bytes is None:
        max_attachment_bytes = load_settings().max_attachment_bytes
    files = AttachedFiles(
        path.resolve().parent,
        budget=max_attachment_bytes,
        allow_outside_folder=allow_outside_folder,
    )
    return parse_release_markdown(text, read_file=files)
