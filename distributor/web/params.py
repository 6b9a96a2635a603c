"""Parameters every route reads the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are INTEGER columns: 32-bit on PostgreSQL. A larger number names no record, and the
# database would refuse to compare it, so it is refused here, naming the parameter.
MAX_ID = 2**31 - 1

ReleaseId = Annotated[int, Path(ge=1, le=MAX_ID, description="The release's id.")]
SendId = Annotated[int, Path(ge=1, le=MAX_ID, description="The send's id.")]
