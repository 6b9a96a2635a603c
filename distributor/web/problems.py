"""Errors as the caller can read them: RFC 9457 problem details from the API, pages from
the rest. Bad input is a 4xx that names the field, never a 500.
"""

from __future__ import annotations

import http
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from distributor.errors import (
    DistributorError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
)
from distributor.web.auth import NotAuthenticated
from distributor.web.pages import pages_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
API_PREFIX = "/api/"
LOGIN_PATH = "/login"

log = logging.getLogger("distributor.web")


class FieldProblem(BaseModel):
    """One bad value: `pointer` (RFC 6901) into a JSON body, or the parameter's name."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    # Where the parameter is: path, query or header.
    location: str | None = None
    # The line of an uploaded file the problem is on, when it is one row's.
    line: int | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
        "description": http.HTTPStatus(status).phrase,
    }
    for status in (400, 401, 403, 404, 409, 422)
}
LINE_PREFIX = re.compile(r"^line (\d+): ")


class FieldRefusal(Exception):
    """A refusal of the core, tied to the part of the request that caused it."""

    def __init__(self, status: int, detail: str, errors: Sequence[FieldProblem]) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=http.HTTPStatus(status).phrase, status=status, detail=detail, errors=list(errors)
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def error_page(request: Request, status: int, message: str, **headers: str) -> Response:
    return pages_of(request).render(
        request,
        "error.html.j2",
        {"status": status, "title": http.HTTPStatus(status).phrase, "message": message},
        status_code=status,
        with_forms=False,
        headers=headers or None,
    )


def status_of(exc: DistributorError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, InvalidStateError):
        return 409
    return 422


def refusal(
    status: int,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    location: str | None = None,
) -> FieldRefusal:
    """A refusal naming the one field at fault."""
    blamed = FieldProblem(detail=detail, pointer=pointer, parameter=parameter, location=location)
    return FieldRefusal(status, detail, [blamed])


@contextmanager
def blaming(
    *, pointer: str | None = None, parameter: str | None = None, location: str | None = None
) -> Iterator[None]:
    """A refusal of the core inside the block names the field at fault: `pointer` into the
    JSON body, or the `parameter` at `location`. A name in the body that names nothing is
    content that cannot be processed (422), not a missing resource (404)."""
    try:
        yield
    except DistributorError as exc:
        status = status_of(exc)
        if pointer is not None and status == 404:
            status = 422
        raise refusal(
            status, str(exc), pointer=pointer, parameter=parameter, location=location
        ) from exc


def row_problems(problems: Sequence[str], *, pointer: str) -> list[FieldProblem]:
    """A file's problems ("line 3: ...") each with its line, at the field holding the file."""
    found = []
    for text in problems:
        line = LINE_PREFIX.match(text)
        found.append(
            FieldProblem(detail=text, pointer=pointer, line=int(line.group(1)) if line else None)
        )
    return found


def field_problems(exc: RequestValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors():
        location, *path = [str(part) for part in error.get("loc", ())] or ["request"]
        message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            # Its "location" is a character position, not a field.
            at = f" (near character {path[0]})" if path else ""
            problems.append(FieldProblem(detail=f"the body is not valid JSON{at}", pointer="#"))
        elif location == "body":
            problems.append(
                FieldProblem(detail=message, pointer="#/" + "/".join(path) if path else "#")
            )
        else:
            problems.append(
                FieldProblem(
                    detail=message, parameter=".".join(path) or location, location=location
                )
            )
    return problems


def _summary(problems: Sequence[FieldProblem]) -> str:
    named = [
        f"{p.parameter or (p.pointer or '#').removeprefix('#').removeprefix('/') or 'body'}: "
        f"{p.detail}"
        for p in problems
    ]
    return "; ".join(named) or "the request is not valid"


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = field_problems(exc)
    if is_api(request):
        return problem(422, _summary(problems), errors=problems)
    return error_page(request, 400, _summary(problems))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    detail = exc.detail if isinstance(exc.detail, str) else http.HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"nothing is at {request.url.path}"
    if is_api(request):
        return problem(exc.status_code, detail, headers=headers)
    return error_page(request, exc.status_code, detail, **headers)


async def _on_field_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FieldRefusal)
    if is_api(request):
        return problem(exc.status, exc.detail, errors=exc.errors)
    return error_page(request, exc.status, exc.detail)


async def _on_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DistributorError)
    status = status_of(exc)
    if is_api(request):
        return problem(status, exc.for_page)
    return error_page(request, status, exc.for_page)


async def _on_anonymous(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotAuthenticated)
    if is_api(request):
        return problem(401, exc.reason, headers={"WWW-Authenticate": "Bearer"})
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = LOGIN_PATH if request.method != "GET" else f"{LOGIN_PATH}?next={quote(wanted)}"
    return RedirectResponse(target, status_code=303)


def document_problems(app: FastAPI) -> None:
    """Say in the OpenAPI schema that errors come as application/problem+json: FastAPI puts
    a response model under application/json, whatever media type the response declares."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _on_out_of_range(request: Request, exc: Exception) -> Response:
    # A value the checks let through and the database refused (a number past its column):
    # the request's fault, so a 4xx, never a 500.
    detail = "a value given is out of the range the database holds; give a smaller one"
    if "NUL" in str(exc):
        # PostgreSQL's text holds no NUL character, whatever the column.
        detail = "a value given holds a NUL character (\\u0000), which text may not hold"
    if is_api(request):
        return problem(422, detail)
    return error_page(request, 400, detail)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DataError, _on_out_of_range)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(DistributorError, _on_refusal)
    app.add_exception_handler(FieldRefusal, _on_field_refusal)
    app.add_exception_handler(NotAuthenticated, _on_anonymous)


class ErrorBoundary:
    """A failure nobody foresaw: logged with its traceback, answered with a plain 500 that
    gives nothing away, inside the security headers (Starlette's own handler is outside)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            route = getattr(scope.get("route"), "path", "(no route)")
            log.exception("unexpected error in %s %s", scope.get("method"), route)
            if started:
                raise
            path = str(scope.get("path", ""))
            response: Response
            if path.startswith(API_PREFIX):
                response = problem(500, "the server failed; the error is logged")
            else:
                response = Response(
                    "The server failed; the error is logged. Try again in a moment.",
                    status_code=500,
                    media_type="text/plain",
                )
            await response(scope, receive, send)
