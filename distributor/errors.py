"""The error hierarchy: every error the core raises says what was wrong and what to do."""

from __future__ import annotations


class DistributorError(Exception):
    """Root of every error the core raises on purpose."""


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
        super().__init__(
            f"{total or len(problems)} problem(s) in the file; nothing was imported "
            f"(fix them, or pass --skip-invalid to import the valid rows):\n{listed}"
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
