"""One contact as a file gives it, checked and normalised the way the database stores it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError
from sqlalchemy import String, Table

from distributor.contacts.addresses import email_key, normalise_email
from distributor.models import Contact, ContactBeat, Outlet
from distributor.models.base import Base
from distributor.segments.fields import ATTRIBUTE_NAME, ATTRIBUTE_PREFIX, fold, tidy
from distributor.segments.fields import FIELDS as FILTER_FIELDS
from distributor.visible_text import HiddenCharacterError, check_visible
from distributor.vocabulary import LegalBasis, MediaType


def column_width(model: type[Base], column: str) -> int:
    """The length of a String column, so that a value is refused before the database sees it."""
    kind = cast(Table, model.__table__).c[column].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{model.__name__}.{column} is not a String column with a length")
    return kind.length


# Column widths in the database, read from the models so that the two cannot drift apart.
MAX_NAME_LENGTH = column_width(Contact, "name")
MAX_OUTLET_LENGTH = min(column_width(Outlet, "name"), column_width(Outlet, "name_key"))
MAX_ROLE_LENGTH = column_width(Contact, "role")
MAX_SOURCE_LENGTH = column_width(Contact, "source")
MAX_REGION_LENGTH = column_width(Contact, "region")
MAX_LANGUAGE_LENGTH = column_width(Contact, "language")
MAX_TIME_ZONE_LENGTH = column_width(Contact, "time_zone")
MAX_BEAT_LENGTH = column_width(ContactBeat, "beat")
MAX_EMAIL_LENGTH = min(column_width(Contact, "email"), column_width(Contact, "email_key"))
MAX_ATTRIBUTE_LENGTH = 1000
BEAT_SEPARATOR = ";"
# Unicode category Cc, exactly: C0 controls, DEL and the C1 controls.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Half of a UTF-16 pair on its own is no character: no database can store it as text. Bytes of
# a file that are not UTF-8 arrive as U+DC80..U+DCFF, and a JSON escape can make any of these.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# One-line fields a person reads (in lists, in the To: header): nothing invisible in them.
VISIBLE_COLUMNS = frozenset({"name", "outlet", "role", "region", "beat"})

# Every column a contacts file may have (attributes.NAME columns besides).
COLUMNS = (
    "email",
    "name",
    "outlet",
    "role",
    "beats",
    "region",
    "country",
    "language",
    "media_type",
    "time_zone",
    "legal_basis",
    "source",
    "embargo_vetted",
    "embargo_breaker",
    "attributes",
)
COLUMN_ALIASES = {"beat": "beats", "topics": "beats", "topic": "beats", "e-mail": "email"}
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", ""})


Choice = TypeVar("Choice", MediaType, LegalBasis)


class RowProblem(ValueError):
    """Why one row cannot be imported; the message names the column and what to do."""


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A valid contact from line `line` of a file, every value in its stored form."""

    line: int
    email: str
    name: str = ""
    outlet: str = ""
    role: str = ""
    beats: tuple[str, ...] = ()
    region: str = ""
    country: str = ""
    language: str = ""
    media_type: MediaType | None = None
    time_zone: str | None = None
    legal_basis: LegalBasis = LegalBasis.LEGITIMATE_INTEREST
    source: str = ""
    embargo_vetted: bool = False
    embargo_breaker: bool = False
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return email_key(self.email)


def canonical_column(name: str) -> str | None:
    """The column a header names, or None if it is not one (attributes.NAME included)."""
    column = " ".join(name.split()).lower()
    column = COLUMN_ALIASES.get(column, column)
    if column.startswith(("attributes.", "attr.")):
        attribute = column.partition(".")[2]
        return ATTRIBUTE_PREFIX + attribute if ATTRIBUTE_NAME.fullmatch(attribute) else None
    return column if column in COLUMNS else None


def validate_record(
    line: int,
    record: Mapping[str, object],
    *,
    default_source: str = "",
    default_legal_basis: LegalBasis = LegalBasis.LEGITIMATE_INTEREST,
) -> ContactRow:
    """A ContactRow from one record keyed by canonical column; raises RowProblem."""
    raw_email = record.get("email")
    if raw_email is None or (isinstance(raw_email, str) and not raw_email.strip()):
        raise RowProblem("the email is empty")
    if not isinstance(raw_email, str):
        raise RowProblem(f"the email must be text, not {type(raw_email).__name__}")
    try:
        email = normalise_email(raw_email)
    except EmailNotValidError as exc:
        raise RowProblem(f"{raw_email.strip()!r} is not a valid address: {exc}") from None
    if max(len(email), len(email_key(email))) > MAX_EMAIL_LENGTH:
        raise RowProblem(f"the address is longer than {MAX_EMAIL_LENGTH} characters")
    source = _text(record, "source", MAX_SOURCE_LENGTH) or tidy(default_source)[:MAX_SOURCE_LENGTH]
    return ContactRow(
        line=line,
        email=email,
        name=_text(record, "name", MAX_NAME_LENGTH),
        outlet=_outlet(record),
        role=_text(record, "role", MAX_ROLE_LENGTH),
        beats=_beats(record.get("beats")),
        region=_text(record, "region", MAX_REGION_LENGTH),
        country=_normalised(record, "country"),
        language=_language(record),
        media_type=_choice(record, "media_type", MediaType),
        time_zone=_time_zone(record),
        legal_basis=_choice(record, "legal_basis", LegalBasis) or default_legal_basis,
        source=source,
        embargo_vetted=_flag(record, "embargo_vetted"),
        embargo_breaker=_flag(record, "embargo_breaker"),
        attributes=_attributes(record),
    )


def _string(record: Mapping[str, object], column: str) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowProblem(f"the {column} must be text, not {type(value).__name__}")
    return value


def _check_text(column: str, value: str, limit: int) -> str:
    control = CONTROL_CHARACTER.search(value)
    if control is not None:
        raise RowProblem(
            f"the {column} contains a control character ({control.group()!r}); remove it"
        )
    surrogate = LONE_SURROGATE.search(value)
    if surrogate is not None:
        raise RowProblem(
            f"the {column} contains U+{ord(surrogate.group()):04X} at character "
            f"{surrogate.start() + 1}, half of a UTF-16 pair and no character; "
            "save the file as UTF-8 and import again"
        )
    if column in VISIBLE_COLUMNS:
        try:
            check_visible(value, field=column)
        except HiddenCharacterError as exc:
            raise RowProblem(str(exc)) from None
    if len(value) > limit:
        raise RowProblem(f"the {column} is {len(value)} characters long; keep it to {limit}")
    return value


def _text(record: Mapping[str, object], column: str, limit: int) -> str:
    # Line breaks inside a quoted field become spaces: a name spanning lines would break
    # the To: header of every message sent to it.
    return _check_text(column, tidy(_string(record, column)), limit)


def _outlet(record: Mapping[str, object]) -> str:
    outlet = _text(record, "outlet", MAX_OUTLET_LENGTH)
    # Outlets are told apart by the case-folded name, which can be longer ("ß" folds to "ss").
    folded = len(fold(outlet))
    if folded > MAX_OUTLET_LENGTH:
        raise RowProblem(
            f"the outlet is {folded} characters long once letter case is folded; "
            f"keep it to {MAX_OUTLET_LENGTH}"
        )
    return outlet


def _language(record: Mapping[str, object]) -> str:
    language = _normalised(record, "language")
    if len(language) > MAX_LANGUAGE_LENGTH:
        raise RowProblem(
            f"the language tag is {len(language)} characters long; keep it to "
            f"{MAX_LANGUAGE_LENGTH} (a tag such as en or pt-br is enough)"
        )
    return language


def _normalised(record: Mapping[str, object], column: str) -> str:
    value = _string(record, column)
    try:
        return FILTER_FIELDS[column].normalise(value)
    except ValueError as exc:
        raise RowProblem(f"the {column} {exc}") from None


def _choice(record: Mapping[str, object], column: str, choices: type[Choice]) -> Choice | None:
    value = tidy(_string(record, column)).lower().replace(" ", "_").replace("/", "_")
    if not value:
        return None
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise RowProblem(f"the {column} {value!r} is not one of {allowed}") from None


def _time_zone(record: Mapping[str, object]) -> str | None:
    value = tidy(_string(record, "time_zone"))
    if not value:
        return None
    try:
        if len(value) > MAX_TIME_ZONE_LENGTH:
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowProblem(
            f"the time_zone {value!r} is not an IANA time zone such as Europe/London"
        ) from None
    return value


def _flag(record: Mapping[str, object], column: str) -> bool:
    value = record.get(column)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise RowProblem(f"the {column} {value!r} is neither true nor false (write yes or no)")


def _beats(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts: list[object] = list(value.split(BEAT_SEPARATOR))
    elif isinstance(value, list):
        parts = list(value)
    else:
        raise RowProblem("the beats must be text separated by ; or a list of text")
    beats: dict[str, None] = {}
    for part in parts:
        if not isinstance(part, str):
            raise RowProblem(f"a beat must be text, not {type(part).__name__}")
        beat = _check_text("beat", fold(part), MAX_BEAT_LENGTH)
        if BEAT_SEPARATOR in beat:
            raise RowProblem(f"the beat {beat!r} contains {BEAT_SEPARATOR}, which separates beats")
        if beat:
            beats[beat] = None
    return tuple(beats)


def _attributes(record: Mapping[str, object]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    whole = record.get("attributes")
    if isinstance(whole, str) and whole.strip():
        try:
            whole = json.loads(whole)
        except json.JSONDecodeError as exc:
            raise RowProblem(f"the attributes are not a JSON object: {exc.msg}") from None
    if whole is not None and whole != "":
        if not isinstance(whole, dict):
            raise RowProblem('the attributes must be a JSON object such as {"desk": "news"}')
        for name, value in whole.items():
            _put_attribute(attributes, str(name), value)
    for column, value in record.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            _put_attribute(attributes, column[len(ATTRIBUTE_PREFIX) :], value)
    return attributes


def _put_attribute(attributes: dict[str, str], name: str, value: object) -> None:
    key = name.strip().lower()
    if not ATTRIBUTE_NAME.fullmatch(key):
        raise RowProblem(
            f"the attribute name {name!r} is not lower-case letters, digits and underscores"
        )
    if value is None or value == "":
        return
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = tidy(str(value))
    else:
        raise RowProblem(f"the attribute {key} must be text or a number, not a nested value")
    if text:
        attributes[key] = _check_text(f"attribute {key}", text, MAX_ATTRIBUTE_LENGTH)
