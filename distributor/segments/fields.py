"""The fields a filter may name, how each compares, and how its values are normalised.

A value in a filter is normalised the way the importer stores it (beats and outlet names
case-folded, countries upper-cased...), so that comparing in SQL needs no case functions,
whose behaviour beyond ASCII differs between databases.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from distributor.contacts.addresses import lenient_email_key
from distributor.vocabulary import LegalBasis, MediaType

ATTRIBUTE_PREFIX = "attributes."
ATTRIBUTE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
COUNTRY = re.compile(r"[A-Z]{2}")
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")


class FieldKind(enum.StrEnum):
    TEXT = "text"  # one string, compared exactly (after tidying white space)
    FOLDED = "folded"  # one string stored normalised, so letter case does not matter
    CHOICE = "choice"  # one of a fixed set of values, or empty
    FLAG = "flag"  # true or false
    BEATS = "beats"  # a set of strings: a condition holds if any beat satisfies it


def tidy(value: str) -> str:
    """Surrounding space dropped and any run of white space inside made one space."""
    return " ".join(value.split())


def fold(value: str) -> str:
    """The case-insensitive form beats and outlet names are stored and compared in."""
    return tidy(value).casefold()


def _country(value: str) -> str:
    country = tidy(value).upper()
    if country and not COUNTRY.fullmatch(country):
        raise ValueError(f"{value!r} is not a two-letter ISO 3166 country code such as GB or DE")
    return country


def _language(value: str) -> str:
    language = tidy(value).lower().replace("_", "-")
    if language and not LANGUAGE.fullmatch(language):
        raise ValueError(f"{value!r} is not a language tag such as en, de or pt-br")
    return language


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: FieldKind
    description: str
    # Turns a value as written into the stored form; raises ValueError with a reason.
    normalise: Callable[[str], str] = tidy
    # The same for the text after `contains` (an email's needle need not be an address).
    normalise_needle: Callable[[str], str] = str
    choices: tuple[str, ...] = ()


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec(
            "email",
            FieldKind.FOLDED,
            "the address, any letter case",
            lenient_email_key,
            str.lower,
        ),
        FieldSpec("name", FieldKind.TEXT, "the journalist's name, exactly"),
        FieldSpec("outlet", FieldKind.FOLDED, "the outlet's name, any letter case", fold, fold),
        FieldSpec("role", FieldKind.TEXT, "the job title, exactly"),
        FieldSpec(
            "beat", FieldKind.BEATS, "one of the beats (topics), any letter case", fold, fold
        ),
        FieldSpec("region", FieldKind.TEXT, "the region, exactly"),
        FieldSpec("country", FieldKind.FOLDED, "two-letter country code", _country, str.upper),
        FieldSpec("language", FieldKind.FOLDED, "language tag", _language, str.lower),
        FieldSpec(
            "media_type",
            FieldKind.CHOICE,
            "the kind of media",
            str.lower,
            choices=tuple(m.value for m in MediaType),
        ),
        FieldSpec("time_zone", FieldKind.TEXT, "IANA time zone, exactly"),
        FieldSpec("source", FieldKind.TEXT, "where the data came from, exactly"),
        FieldSpec(
            "legal_basis",
            FieldKind.CHOICE,
            "why the data may be processed",
            str.lower,
            choices=tuple(b.value for b in LegalBasis),
        ),
        FieldSpec("embargo_vetted", FieldKind.FLAG, "trusted with embargoed news (or the outlet)"),
        FieldSpec("embargo_breaker", FieldKind.FLAG, "has broken an embargo (or the outlet has)"),
    )
}
ALIASES = {"beats": "beat", "topic": "beat", "topics": "beat", "attr": "attributes"}
ATTRIBUTE_SPEC = FieldSpec("attributes.*", FieldKind.TEXT, "a free-form attribute, exactly")


def field_spec(name: str) -> FieldSpec | None:
    """The spec of a field as written in a filter (attributes.NAME included), or None."""
    if name.startswith(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_SPEC if ATTRIBUTE_NAME.fullmatch(name[len(ATTRIBUTE_PREFIX) :]) else None
    return FIELDS.get(name)


def canonical_field_name(written: str) -> str:
    """The field name in canonical form: lower case, aliases resolved."""
    name = written.lower()
    head, dot, rest = name.partition(".")
    head = ALIASES.get(head, head)
    return f"{head}{dot}{rest}"
