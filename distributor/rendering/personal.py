"""Personalisation without rendering per recipient: placeholders, skeletons and a proof.

A release is rendered once per *variant*, the shape of what differs between recipients
(has a name or not, has an outlet or not, sees the embargo in a zone of their own or not),
with a placeholder for each personal value. The output is cut at the placeholders into a
`Skeleton`; a message for one recipient then only joins strings.

That is only right if the template shows personal values exactly as given. So each variant
is also rendered once with real-looking probe values, and the skeleton filled with the same
values must give the same text; a template that runs a personal value through a filter
(`{{ recipient.name | upper }}`) fails this proof and is refused with a clear message when
the release is saved, long before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from markupsafe import escape

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters no release contains
NAME = "recipient.name"
OUTLET = "recipient.outlet"
EMAIL = "recipient.email"
LOCAL_EMBARGO = "embargo.local"
UNSUBSCRIBE_URL = "unsubscribe_url"
SLOTS = (NAME, OUTLET, EMAIL, LOCAL_EMBARGO, UNSUBSCRIBE_URL)
PLACEHOLDER = re.compile(f"{OPEN}([a-z_.]+){CLOSE}")

# Values that escape differently in HTML and text, and are not ASCII, for the proof.
PROBE_VALUES = {
    NAME: 'Zoë O\'Brien & <Co> "Ed"',
    OUTLET: "Bäcker & Söhne <Zeitung>",
    EMAIL: "zoë.o'brien+probe@example.com",
    LOCAL_EMBARGO: "19:01 EST, Monday 13 November 2017",
    UNSUBSCRIBE_URL: "https://example.org/unsubscribe/probe?a=1&b=<2>",
}


def placeholder(slot: str) -> str:
    return f"{OPEN}{slot}{CLOSE}"


@dataclass(frozen=True, slots=True)
class Variant:
    """What a recipient's message depends on besides plain substitution."""

    embargoed: bool  # built before the embargo lifts: banner and subject prefix
    local_embargo: bool  # the recipient's zone differs from the release's and UTC
    named: bool
    with_outlet: bool

    def present(self, slot: str) -> bool:
        if slot == NAME:
            return self.named
        if slot == OUTLET:
            return self.with_outlet
        if slot == LOCAL_EMBARGO:
            return self.local_embargo
        return True


ADVICE = (
    "write them as they are, e.g. {{ recipient.name }}, and test for them with "
    "{% if recipient.name %}"
)


class PersonalisationError(ValueError):
    """The template changes a personal value instead of showing it as it is."""


@dataclass(frozen=True, slots=True)
class Skeleton:
    """Text cut at personal placeholders: literals[0] slot[0] literals[1] ... literals[-1]."""

    literals: tuple[str, ...]
    slots: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Skeleton:
        pieces = PLACEHOLDER.split(text)
        literals, slots = tuple(pieces[0::2]), tuple(pieces[1::2])
        unknown = sorted(set(slots) - set(SLOTS))
        stray = any(OPEN in piece or CLOSE in piece for piece in literals)
        if unknown or stray:
            found = ", ".join(unknown) or "a filter or method applied to one"
            raise PersonalisationError(
                f"it changes a recipient's details before showing them ({found}); {ADVICE}"
            )
        return cls(literals, slots)

    def fill(self, value: Callable[[str], str]) -> str:
        parts = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            parts.append(value(slot))
            parts.append(literal)
        return "".join(parts)

    def without_placeholders(self) -> str:
        return "".join(self.literals)


def prove(skeleton: Skeleton, expected: str, *, html: bool) -> None:
    """Raise PersonalisationError unless filling the skeleton with the probe values gives
    `expected`, the same template rendered with those values."""

    def probe(slot: str) -> str:
        value = PROBE_VALUES[slot]
        return str(escape(value)) if html else value

    if skeleton.fill(probe) != expected:
        used = ", ".join(dict.fromkeys(skeleton.slots)) or "none"
        raise PersonalisationError(
            f"it changes a recipient's details before showing them (personal values used: "
            f"{used}); {ADVICE}"
        )


def values_for(variant: Variant, value: Mapping[str, str]) -> dict[str, str]:
    """The context values of every slot in a variant: `value[slot]`, or empty if absent."""
    return {slot: value[slot] if variant.present(slot) else "" for slot in SLOTS}
