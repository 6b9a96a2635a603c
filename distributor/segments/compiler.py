"""Filters compiled to SQLAlchemy conditions: every value a bound parameter, never SQL text.

The condition reads `contacts` outer-joined to `outlets` (see `contacts_with_outlets`).
Missing values compare as the empty string, so `not` and `!=` keep the two-valued meaning
the Python evaluator gives them instead of SQL's NULL logic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.functions import GenericFunction

from distributor.models import Contact, ContactBeat, Outlet
from distributor.segments.fields import ATTRIBUTE_PREFIX, FieldKind, field_spec
from distributor.segments.syntax import And, Condition, Filter, Not, Operator, Or


class text_position(GenericFunction[int]):
    """Where the second string first occurs in the first (1-based), 0 if nowhere; exact case."""

    type = Integer()
    inherit_cache = True


@compiles(text_position, "postgresql")
def _position_postgresql(element: text_position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(text_position)
def _position_default(element: text_position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def contacts_with_outlets() -> FromClause:
    """The FROM every compiled condition reads: each contact once, with its outlet if any."""
    return Contact.__table__.outerjoin(Outlet.__table__, Outlet.id == Contact.outlet_id)


def matching_contact_ids(node: Filter) -> Select[int]:
    """SELECT the ids of contacts (not forgotten) that the filter matches."""
    return (
        select(Contact.id)
        .select_from(contacts_with_outlets())
        .where(Contact.forgotten_at.is_(None), compile_filter(node))
    )


def compile_filter(node: Filter) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(*(compile_filter(p) for p in node.parts))
    if isinstance(node, Or):
        return or_(*(compile_filter(p) for p in node.parts))
    if isinstance(node, Not):
        return not_(compile_filter(node.part))
    return _condition(node)


def _condition(node: Condition) -> ColumnElement[bool]:
    spec = field_spec(node.field)
    assert spec is not None, f"the parser let through the unknown field {node.field}"
    if spec.kind is FieldKind.FLAG:
        flag = _flag(node.field)
        wanted = node.values[0]
        matches = flag if wanted is True else not_(flag)
        return not_(matches) if node.operator is Operator.NOT_EQUALS else matches
    if spec.kind is FieldKind.BEATS:
        return _beats(node)
    return _scalar(node, _column(node.field))


def _positive(operator: Operator) -> tuple[Operator, bool]:
    """The operator without its negation, and whether it was negated."""
    negations = {
        Operator.NOT_EQUALS: Operator.EQUALS,
        Operator.NOT_IN: Operator.IN,
        Operator.NOT_CONTAINS: Operator.CONTAINS,
        Operator.IS_NOT_EMPTY: Operator.IS_EMPTY,
    }
    return negations.get(operator, operator), operator in negations


def _scalar(node: Condition, column: ColumnElement[str]) -> ColumnElement[bool]:
    operator, negated = _positive(node.operator)
    values = [str(v) for v in node.values]
    condition: ColumnElement[bool]
    if operator is Operator.EQUALS:
        condition = column == values[0]
    elif operator is Operator.IN:
        condition = column.in_(values)
    elif operator is Operator.CONTAINS:
        condition = text_position(column, values[0]) > 0
    else:
        condition = column == ""
    return not_(condition) if negated else condition


def _beats(node: Condition) -> ColumnElement[bool]:
    operator, negated = _positive(node.operator)
    values = [str(v) for v in node.values]
    of_this_contact = ContactBeat.contact_id == Contact.id
    condition: ColumnElement[bool]
    if operator is Operator.EQUALS:
        condition = exists().where(of_this_contact, ContactBeat.beat == values[0])
    elif operator is Operator.IN:
        condition = exists().where(of_this_contact, ContactBeat.beat.in_(values))
    elif operator is Operator.CONTAINS:
        condition = exists().where(of_this_contact, text_position(ContactBeat.beat, values[0]) > 0)
    else:
        condition = not_(exists().where(of_this_contact))
    return not_(condition) if negated else condition


def _column(field: str) -> ColumnElement[str]:
    """The field as a never-NULL string expression."""
    if field.startswith(ATTRIBUTE_PREFIX):
        name = field[len(ATTRIBUTE_PREFIX) :]
        return func.coalesce(Contact.attributes[name].as_string(), "")
    columns: dict[str, ColumnElement[Any] | InstrumentedAttribute[Any]] = {
        "email": Contact.email_key,
        "name": Contact.name,
        "outlet": Outlet.name_key,
        "role": Contact.role,
        "region": Contact.region,
        "country": Contact.country,
        "language": Contact.language,
        "media_type": type_coerce(Contact.media_type, String()),
        "time_zone": Contact.time_zone,
        "source": Contact.source,
        "legal_basis": type_coerce(Contact.legal_basis, String()),
    }
    return func.coalesce(columns[field], "", type_=String())


def _flag(field: str) -> ColumnElement[bool]:
    """A contact's flag, or its outlet's: a flag on an outlet applies to all its journalists."""
    contact_flag = Contact.embargo_vetted if field == "embargo_vetted" else Contact.embargo_breaker
    outlet_flag = Outlet.embargo_vetted if field == "embargo_vetted" else Outlet.embargo_breaker
    return or_(contact_flag == true(), func.coalesce(outlet_flag, false()) == true())
