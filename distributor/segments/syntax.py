"""The parsed form of a filter: conditions on fields, combined with and, or and not."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Operator(enum.StrEnum):
    EQUALS = "="  # the field has this value (a beat: the contact has this beat)
    NOT_EQUALS = "!="  # the field does not have this value
    IN = "in"  # the field has one of these values
    NOT_IN = "not in"  # the field has none of these values
    CONTAINS = "contains"  # the value contains this text
    NOT_CONTAINS = "not contains"  # the value does not contain this text
    IS_EMPTY = "is empty"  # the field has no value
    IS_NOT_EMPTY = "is not empty"  # the field has a value


@dataclass(frozen=True, slots=True)
class Condition:
    field: str  # a field name from distributor.segments.fields, or "attributes.NAME"
    operator: Operator
    # Already normalised as the field stores them (case-folded, upper-cased country...).
    values: tuple[str | bool, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Filter


Filter = Condition | And | Or | Not


def render(node: Filter) -> str:
    """The filter written back as text in canonical form; parsing it gives the same tree."""
    if isinstance(node, And | Or):
        word = " and " if isinstance(node, And) else " or "
        return "(" + word.join(render(p) for p in node.parts) + ")"
    if isinstance(node, Not):
        return f"not {render(node.part)}"
    if node.operator in (Operator.IS_EMPTY, Operator.IS_NOT_EMPTY):
        return f"{node.field} {node.operator.value}"
    rendered = [_literal(v) for v in node.values]
    if node.operator in (Operator.IN, Operator.NOT_IN):
        return f"{node.field} {node.operator.value} ({', '.join(rendered)})"
    return f"{node.field} {node.operator.value} {rendered[0]}"


def _literal(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("\t", "\\t") + '"'
