"""Splitting a filter into tokens, each with the place it starts so errors can point at it."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

from distributor.errors import InvalidFilterError


class TokenKind(enum.StrEnum):
    NAME = "name"  # a field name or a keyword: letters, digits, underscores and dots
    STRING = "string"  # a quoted value, quotes removed and escapes resolved
    EQUALS = "="  # equality
    NOT_EQUALS = "!="  # inequality
    OPEN = "("  # opens a group or a list of values
    CLOSE = ")"  # closes it
    COMMA = ","  # separates the values of a list
    END = "end"  # the end of the filter


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    position: int
    length: int

    def is_keyword(self, word: str) -> bool:
        return self.kind is TokenKind.NAME and self.text.lower() == word


_PUNCTUATION = {
    "(": TokenKind.OPEN,
    ")": TokenKind.CLOSE,
    ",": TokenKind.COMMA,
    "=": TokenKind.EQUALS,
}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t"}
MAX_FILTER_LENGTH = 10_000


def tokenize(source: str) -> list[Token]:
    """The tokens of a filter, ending with an END token; raises InvalidFilterError."""
    if len(source) > MAX_FILTER_LENGTH:
        raise InvalidFilterError(
            f"the filter is {len(source)} characters long; keep it under {MAX_FILTER_LENGTH}",
            source=source[:80],
            position=0,
        )
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[ch], ch, i, 1))
            i += 1
        elif source.startswith("!=", i):
            tokens.append(Token(TokenKind.NOT_EQUALS, "!=", i, 2))
            i += 2
        elif ch in "\"'":
            token = _read_string(source, i)
            tokens.append(token)
            i += token.length
        elif ch.isalpha() or ch == "_":
            start = i
            while i < len(source) and (source[i].isalnum() or source[i] in "_."):
                i += 1
            tokens.append(Token(TokenKind.NAME, source[start:i], start, i - start))
        else:
            hint = " (write != for 'not equal')" if ch in "<>!" else ""
            raise InvalidFilterError(
                f"unexpected character {ch!r}{hint}; values go in double quotes",
                source=source,
                position=i,
            )
    tokens.append(Token(TokenKind.END, "", len(source), 1))
    return tokens


def _read_string(source: str, start: int) -> Token:
    quote = source[start]
    chars: list[str] = []
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == quote:
            return Token(TokenKind.STRING, "".join(chars), start, i + 1 - start)
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            if escaped not in _ESCAPES:
                raise InvalidFilterError(
                    f"unknown escape \\{escaped}; inside quotes write \\\" \\' \\\\ \\n or \\t",
                    source=source,
                    position=i,
                    length=2,
                )
            chars.append(_ESCAPES[escaped])
            i += 2
            continue
        if unicodedata.category(ch) == "Cc":
            raise InvalidFilterError(
                f"a control character ({ch!r}) inside a value; remove it",
                source=source,
                position=i,
            )
        chars.append(ch)
        i += 1
    raise InvalidFilterError(
        f"the value starting here has no closing {quote}; add one",
        source=source,
        position=start,
    )
