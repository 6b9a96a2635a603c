"""Pages of a list: ?page= and ?per_page=, for the API and the dashboard alike."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
# Far past any list; a bound keeps the offset a number the database can hold.
MAX_PAGE = 1_000_000

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Pagination:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def pagination(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=MAX_PER_PAGE, description="Items a page.")
    ] = DEFAULT_PER_PAGE,
) -> Pagination:
    return Pagination(page=page, per_page=per_page)


Paging = Annotated[Pagination, Depends(pagination)]


@dataclass(frozen=True, slots=True)
class Slice(Generic[T]):
    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def page_of(items: Sequence[T], paging: Pagination) -> Slice[T]:
    """One page of a list already read; a page past the end is empty, not an error."""
    return Slice(
        items=items[paging.offset : paging.offset + paging.per_page],
        page=paging.page,
        per_page=paging.per_page,
        total=len(items),
    )


class PageModel(BaseModel, Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int
    pages: int


def page_model(found: Slice[T], convert: Callable[[T], M]) -> PageModel[M]:
    """A page as the API answers it, each item converted to its JSON model."""
    return PageModel[M](
        items=[convert(item) for item in found.items],
        page=found.page,
        per_page=found.per_page,
        total=found.total,
        pages=found.pages,
    )
