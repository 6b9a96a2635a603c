"""Text that is what it looks like: no bidirectional overrides, no invisible characters.

A right-to-left override or a zero-width space in a headline, a name or a list name can make
the text display differently from what it says (a reversed file extension, a name that looks
like another). Such characters are refused in one-line fields, and never reach a Subject.

Zero-width joiner and non-joiner are letters' business in Persian, the Indic scripts and
emoji sequences, so they are allowed between two characters that are not ASCII.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from distributor.errors import DistributorError

# Bidirectional embeddings, overrides and isolates, and the directional marks.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_JOINERS = frozenset("\u200c\u200d")


class HiddenCharacterError(DistributorError):
    """A one-line field holds a character that changes how the text displays."""


@dataclass(frozen=True, slots=True)
class HiddenCharacter:
    position: int  # 1-based, as a person counts
    codepoint: str  # "U+202E"
    name: str  # "RIGHT-TO-LEFT OVERRIDE"

    def describe(self) -> str:
        return f"{self.codepoint} {self.name} at character {self.position}"


def _is_hidden(text: str, index: int) -> bool:
    char = text[index]
    if char in BIDI_CONTROLS:
        return True
    if char in _JOINERS:
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        return not (before and after and not before.isascii() and not after.isascii())
    category = unicodedata.category(char)
    # Cf: format characters (zero-width space, word joiner, BOM, soft hyphen...);
    # Cc: control characters, none of which belongs in a one-line field.
    return category in ("Cf", "Cc")


def hidden_characters(text: str) -> list[HiddenCharacter]:
    """Every character of `text` that would not show, or would reorder what does."""
    return [
        HiddenCharacter(
            position=i + 1,
            codepoint=f"U+{ord(ch):04X}",
            name=unicodedata.name(ch, "CONTROL CHARACTER"),
        )
        for i, ch in enumerate(text)
        if _is_hidden(text, i)
    ]


def check_visible(text: str, *, field: str) -> str:
    """Return `text` unchanged, or refuse it naming the field and the first hidden characters."""
    found = hidden_characters(text)
    if found:
        listed = ", ".join(h.describe() for h in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise HiddenCharacterError(
            f"the {field} contains invisible or text-direction characters ({listed}{more}); "
            "they can make it display differently from what it says: retype it without them"
        )
    return text


def strip_hidden(text: str) -> str:
    """`text` without the characters `hidden_characters` finds (for Subject lines)."""
    return "".join(ch for i, ch in enumerate(text) if not _is_hidden(text, i))
