"""The press officer's release pages: writing and editing with a live preview, a test copy to
oneself, choosing the audience, scheduling, and moving, lifting or cancelling the embargo.

Each part has its own module (editor_*.py); this one gathers their routes for the app.
"""

from __future__ import annotations

from fastapi import APIRouter

from distributor.web import editor_embargo, editor_preview, editor_schedule, editor_write

router = APIRouter(include_in_schema=False)
router.include_router(editor_write.router)
router.include_router(editor_preview.router)
router.include_router(editor_schedule.router)
router.include_router(editor_embargo.router)
