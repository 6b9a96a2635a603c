"""A recursive-descent parser for the segment filter language (grammar in docs/contacts.md).

filter     := or_expr END
or_expr    := and_expr ("or" and_expr)*
and_expr   := unary ("and" unary)*
unary      := "not" unary | "(" or_expr ")" | condition
condition  := field "=" value | field "!=" value
            | field ["not"] "in" "(" value ("," value)* [","] ")"
            | field ["not"] "contains" STRING
            | field "is" ["not"] "empty"
            | flag_field
value      := STRING | "true" | "false"
"""

from __future__ import annotations

from distributor.errors import InvalidFilterError
from distributor.segments.fields import (
    ATTRIBUTE_PREFIX,
    FIELDS,
    FieldKind,
    FieldSpec,
    canonical_field_name,
    field_spec,
)
from distributor.segments.lexer import Token, TokenKind, tokenize
from distributor.segments.syntax import And, Condition, Filter, Not, Operator, Or

KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "is", "empty", "true", "false"})
MAX_DEPTH = 50


def parse_filter(source: str) -> Filter:
    """The tree of a filter; raises InvalidFilterError pointing at the offending token."""
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0

    def peek(self) -> Token:
        """The next token; a method, so that no check on it is assumed to hold after advance()."""
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def fail(self, message: str, token: Token | None = None) -> InvalidFilterError:
        token = token or self.peek()
        return InvalidFilterError(
            message, source=self.source, position=token.position, length=token.length
        )

    def parse(self) -> Filter:
        if self.peek().kind is TokenKind.END:
            raise self.fail('the filter is empty; write a condition such as country = "GB"')
        node = self.or_expr()
        if self.peek().kind is not TokenKind.END:
            raise self.fail(
                f"unexpected {self.describe(self.peek())}; join conditions with and / or"
            )
        return node

    def or_expr(self) -> Filter:
        parts = [self.and_expr()]
        while self.peek().is_keyword("or"):
            self.advance()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Filter:
        parts = [self.unary()]
        while self.peek().is_keyword("and"):
            self.advance()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the filter nests more than {MAX_DEPTH} deep; simplify it")
        try:
            if self.peek().is_keyword("not"):
                self.advance()
                return Not(self.unary())
            if self.peek().kind is TokenKind.OPEN:
                opening = self.advance()
                node = self.or_expr()
                if self.peek().kind is not TokenKind.CLOSE:
                    raise self.fail(
                        f"expected ) to close the ( at character {opening.position + 1}, "
                        f"found {self.describe(self.peek())}"
                    )
                self.advance()
                return node
            return self.condition()
        finally:
            self.depth -= 1

    def condition(self) -> Condition:
        token = self.peek()
        if token.kind is not TokenKind.NAME or token.text.lower() in KEYWORDS:
            raise self.fail(f"expected a field name, found {self.describe(token)}")
        self.advance()
        name = canonical_field_name(token.text)
        spec = field_spec(name)
        if spec is None:
            raise self.fail(self.unknown_field(token.text, name), token)
        operator = self.operator(spec)
        if operator in (Operator.IS_EMPTY, Operator.IS_NOT_EMPTY):
            if spec.kind is FieldKind.FLAG:
                raise self.fail(f"{name} is true or false, never empty", token)
            return Condition(name, operator, ())
        if operator is None:
            # A flag standing alone means "is true".
            return Condition(name, Operator.EQUALS, (True,))
        if operator in (Operator.IN, Operator.NOT_IN):
            return Condition(name, operator, self.value_list(spec))
        if operator in (Operator.CONTAINS, Operator.NOT_CONTAINS):
            if spec.kind in (FieldKind.FLAG, FieldKind.CHOICE):
                raise self.fail(f"{name} takes = or in, not contains", token)
            needle = self.peek()
            if needle.kind is not TokenKind.STRING:
                raise self.fail(
                    f"expected quoted text after contains, found {self.describe(needle)}"
                )
            self.advance()
            return Condition(name, operator, (spec.normalise_needle(needle.text),))
        return Condition(name, operator, (self.value(spec),))

    def operator(self, spec: FieldSpec) -> Operator | None:
        token = self.peek()
        if token.kind is TokenKind.EQUALS:
            self.advance()
            return Operator.EQUALS
        if token.kind is TokenKind.NOT_EQUALS:
            self.advance()
            return Operator.NOT_EQUALS
        if token.is_keyword("in"):
            self.advance()
            return Operator.IN
        if token.is_keyword("contains"):
            self.advance()
            return Operator.CONTAINS
        if token.is_keyword("is"):
            self.advance()
            negated = self.peek().is_keyword("not")
            if negated:
                self.advance()
            if not self.peek().is_keyword("empty"):
                raise self.fail(f"expected empty after is, found {self.describe(self.peek())}")
            self.advance()
            return Operator.IS_NOT_EMPTY if negated else Operator.IS_EMPTY
        if token.is_keyword("not"):
            following = self.tokens[self.index + 1]
            if following.is_keyword("in") or following.is_keyword("contains"):
                self.advance()
                self.advance()
                return Operator.NOT_IN if following.is_keyword("in") else Operator.NOT_CONTAINS
        if spec.kind is FieldKind.FLAG:
            return None
        raise self.fail(
            f"expected =, !=, in, contains or is after {spec.name}, found {self.describe(token)}"
        )

    def value_list(self, spec: FieldSpec) -> tuple[str | bool, ...]:
        if self.peek().kind is not TokenKind.OPEN:
            raise self.fail(
                f'expected ( after in, found {self.describe(self.peek())}; write in ("a", "b")'
            )
        self.advance()
        values: list[str | bool] = []
        while True:
            if self.peek().kind is TokenKind.CLOSE and values:
                self.advance()
                break
            values.append(self.value(spec))
            if self.peek().kind is TokenKind.COMMA:
                self.advance()
                continue
            if self.peek().kind is not TokenKind.CLOSE:
                raise self.fail(
                    f"expected , or ) in the list of values, found {self.describe(self.peek())}"
                )
        return tuple(dict.fromkeys(values))

    def value(self, spec: FieldSpec) -> str | bool:
        token = self.peek()
        if spec.kind is FieldKind.FLAG:
            if token.is_keyword("true") or token.is_keyword("false"):
                self.advance()
                return token.is_keyword("true")
            raise self.fail(f"{spec.name} is true or false, found {self.describe(token)}")
        if token.kind is not TokenKind.STRING:
            hint = (
                f'; put the value in quotes: "{token.text}"' if token.kind is TokenKind.NAME else ""
            )
            raise self.fail(f"expected a quoted value, found {self.describe(token)}{hint}")
        try:
            value = spec.normalise(token.text)
        except ValueError as exc:
            raise self.fail(str(exc), token) from None
        if spec.choices and value not in spec.choices:
            raise self.fail(
                f"{token.text!r} is not a {spec.name}; choose one of {', '.join(spec.choices)}",
                token,
            )
        self.advance()
        return value

    def unknown_field(self, written: str, name: str) -> str:
        if name.startswith(ATTRIBUTE_PREFIX):
            return (
                f"{written!r} is not a valid attribute name; attribute names are lower-case "
                "letters, digits and underscores"
            )
        known = ", ".join([*FIELDS, "attributes.NAME"])
        return f"unknown field {written!r}; the fields are {known}"

    @staticmethod
    def describe(token: Token) -> str:
        if token.kind is TokenKind.END:
            return "the end of the filter"
        if token.kind is TokenKind.STRING:
            return f'the value "{token.text}"'
        return repr(token.text)
