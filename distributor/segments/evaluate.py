"""Filters evaluated in Python on one contact: the reference the SQL compiler must agree with."""

from __future__ import annotations

from dataclasses import dataclass, field

from distributor.segments.fields import ATTRIBUTE_PREFIX, FieldKind, field_spec
from distributor.segments.syntax import And, Condition, Filter, Not, Operator, Or


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """A contact's fields as stored: keys folded, missing values empty."""

    email_key: str
    name: str = ""
    outlet_key: str = ""
    role: str = ""
    region: str = ""
    country: str = ""
    language: str = ""
    media_type: str = ""
    time_zone: str = ""
    source: str = ""
    legal_basis: str = "legitimate_interest"
    beats: frozenset[str] = frozenset()
    attributes: dict[str, str] = field(default_factory=dict)
    # Already combined with the outlet's flags.
    embargo_vetted: bool = False
    embargo_breaker: bool = False


def evaluate(node: Filter, contact: ContactFacts) -> bool:
    if isinstance(node, And):
        return all(evaluate(p, contact) for p in node.parts)
    if isinstance(node, Or):
        return any(evaluate(p, contact) for p in node.parts)
    if isinstance(node, Not):
        return not evaluate(node.part, contact)
    return _condition(node, contact)


def _condition(node: Condition, contact: ContactFacts) -> bool:
    spec = field_spec(node.field)
    assert spec is not None
    negated = node.operator in (
        Operator.NOT_EQUALS,
        Operator.NOT_IN,
        Operator.NOT_CONTAINS,
        Operator.IS_NOT_EMPTY,
    )
    if spec.kind is FieldKind.FLAG:
        flag = contact.embargo_vetted if node.field == "embargo_vetted" else contact.embargo_breaker
        return (flag is node.values[0]) != negated
    stored = contact.beats if spec.kind is FieldKind.BEATS else {_value(node.field, contact)}
    values = {str(v) for v in node.values}
    if node.operator in (Operator.EQUALS, Operator.NOT_EQUALS, Operator.IN, Operator.NOT_IN):
        result = bool(stored & values)
    elif node.operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        result = any(str(node.values[0]) in s for s in stored)
    elif spec.kind is FieldKind.BEATS:
        result = not stored
    else:
        result = stored == {""}
    return result != negated


def _value(field_name: str, contact: ContactFacts) -> str:
    if field_name.startswith(ATTRIBUTE_PREFIX):
        return contact.attributes.get(field_name[len(ATTRIBUTE_PREFIX) :], "")
    attribute = {"email": "email_key", "outlet": "outlet_key"}.get(field_name, field_name)
    value = getattr(contact, attribute)
    assert isinstance(value, str)
    return value
