"""The error hierarchy: every error the core raises says what was wrong and what to do."""

from __future__ import annotations


class DistributorError(Exception):
    """Root of every error the core raises on purpose."""


class NotFoundError(DistributorError):
    """A named record does not exist."""


class InvalidEmbargoError(DistributorError):
    """An embargo time that cannot be scheduled: past, missing a zone, or not a real instant."""


class InvalidStateError(DistributorError):
    """An operation that the record's current state does not allow."""


class ConfigurationError(DistributorError):
    """Settings that cannot work together, or that are unsafe outside development."""


class ImportRejectedError(DistributorError):
    """A contacts file with invalid rows; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{len(problems)} problem(s) in the file; nothing was imported "
            f"(fix them, or pass --skip-invalid to import the valid rows):\n{listed}"
        )


class TransportError(DistributorError):
    """The mail relay refused or lost a message."""

    def __init__(self, message: str, *, code: int | None = None, temporary: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.temporary = temporary
