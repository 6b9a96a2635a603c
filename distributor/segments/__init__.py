"""Dynamic segments: a small filter language over contact and outlet fields.

`parse_filter` turns text into a tree, `compile_filter` turns the tree into a SQLAlchemy
condition with bound parameters, and `evaluate` applies it to one contact in Python.
"""

from distributor.segments.compiler import compile_filter, contacts_with_outlets
from distributor.segments.evaluate import ContactFacts, evaluate
from distributor.segments.parser import parse_filter
from distributor.segments.store import (
    SegmentPreview,
    delete_segment,
    get_segments,
    list_segments,
    preview_filter,
    save_segment,
)
from distributor.segments.syntax import Filter, render

__all__ = [
    "ContactFacts",
    "Filter",
    "SegmentPreview",
    "compile_filter",
    "contacts_with_outlets",
    "delete_segment",
    "evaluate",
    "get_segments",
    "list_segments",
    "parse_filter",
    "preview_filter",
    "render",
    "save_segment",
]
