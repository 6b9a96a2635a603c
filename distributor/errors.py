"""The error hierarchy: every error the core raises says what was wrong and what to do."""

from __future__ import annotations


class DistributorError(Exception):
    """Root of every error the core raises on purpose.

    Its text is worded for the command line, and may name the command or the flag to use
    next. Where those would mean nothing to a person on a web page, the error also carries
    the same refusal in words for a page (`on_page`); `for_page` gives the words to show
    there.
    """

    on_page: str | None = None

    def __init__(self, *args: object, on_page: str | None = None) -> None:
        super().__init__(*args)
        if on_page is not None:
            self.on_page = on_page

    @property
    def for_page(self) -> str:
        return self.on_page if self.on_page is not None else str(self)


class Worded(str):
    """A message that is not an error (a notice, one problem of a file) worded for the command
    line, carrying its words for a web page as `for_page`; it reads as the former."""

    for_page: str

    def __new__(cls, text: str, *, on_page: str) -> Worded:
        worded = super().__new__(cls, text)
        worded.for_page = on_page
        return worded

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, str]]:
        # Copied and pickled (dataclasses.asdict copies) with both wordings.
        return (str(self),), {"on_page": self.for_page}


def page_words(message: object) -> str:
    """What a web page shows of an error or a message: its words for a page, if it has any."""
    if isinstance(message, DistributorError | Worded):
        return message.for_page
    return str(message)


class NotFoundError(DistributorError):
    """A named record does not exist."""


class InvalidEmbargoError(DistributorError):
    """An embargo time that cannot be scheduled: past, missing a zone, or not a real instant."""


class InvalidAddressError(DistributorError):
    """Something given as an email address that is not one."""


class InvalidStateError(DistributorError):
    """An operation that the record's current state does not allow."""


class ConfigurationError(DistributorError):
    """Settings that cannot work together, or that are unsafe outside development."""


class ImportRejectedError(DistributorError):
    """A contacts file with invalid rows; nothing was imported."""

    def __init__(self, problems: list[str], *, total: int | None = None) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        count = f"{total or len(problems)} problem(s) in the file; nothing was imported"
        super().__init__(
            f"{count} (fix them, or pass --skip-invalid to import the valid rows):\n{listed}",
            on_page=f"{count} (fix them, or choose to import the valid rows only):\n"
            + "\n".join(f"  {page_words(p)}" for p in problems),
        )


class TransportError(DistributorError):
    """The mail relay refused or lost a message."""

    def __init__(self, message: str, *, code: int | None = None, temporary: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary


class RelayUnavailableError(TransportError):
    """The relay could not be reached, or refused to start a transaction: it is the relay,
    not this message, that failed, so the message is not charged an attempt."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message, code=code, temporary=True)


class PermissionDeniedError(DistributorError):
    """The acting person's role does not allow the operation."""


class InvalidFilterError(DistributorError):
    """A segment filter that cannot be parsed; points at the offending token."""

    def __init__(self, message: str, *, source: str, position: int, length: int = 1) -> None:
        self.source = source
        self.position = position
        self.length = max(length, 1)
        pointer = " " * position + "^" * self.length
        # Shown on one line, so that the caret stays under the token.
        shown = "".join(" " if ch.isspace() else ch for ch in source)
        super().__init__(f"{message} (at character {position + 1})\n  {shown}\n  {pointer}")
