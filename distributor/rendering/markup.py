"""Release text to safe HTML: Markdown through Python-Markdown, then nh3's sanitiser.

Whatever HTML a release's Markdown carries (pasted from a web page, or hostile), only the
tags and attributes below survive, links keep to http(s), mailto and tel, and images point
either at the web or at one of the release's own images by Content-ID.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

import markdown
import nh3
from markupsafe import Markup, escape

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "em", "h1", "h2", "h3",
        "h4", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "strong", "sub", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})
MARKDOWN_EXTENSIONS = ("sane_lists", "tables", "fenced_code")
# ![alt](source "title") in Markdown: enough to check alt text and which file is meant.
MARKDOWN_IMAGE = re.compile(
    r"!\[(?P<alt>[^\]]*)\]\(\s*<?(?P<src>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
CID_IMAGE = re.compile(r'<img ([^>]*?)src="cid:([^"]+)"')
URL_OR_EMAIL = re.compile(
    r"(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'\u2019\u201d])"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
)
# Opening and closing quotation marks, straight and curly.
QUOTE_MARKS = ("\u201c", '"', "\u2018")
CLOSING_MARKS = ("\u201d", '"', "\u2019", "\u201d.", '".')


@dataclass(frozen=True, slots=True)
class BodyImage:
    """How the body refers to one of the release's images."""

    content_id: str
    width: int | None  # shown at most this wide, so Outlook (which ignores CSS) keeps to it


@dataclass(frozen=True, slots=True)
class ImageReference:
    alt: str
    source: str


def markdown_images(source: str) -> list[ImageReference]:
    return [
        ImageReference(m.group("alt").strip(), m.group("src"))
        for m in MARKDOWN_IMAGE.finditer(source)
    ]


def is_remote(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def sanitise(raw_html: str, *, images: Mapping[str, BodyImage] | None = None) -> Markup:
    """Only the allowed tags and attributes; release images become `cid:` references."""
    known = images or {}

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            if value in known:
                return f"cid:{known[value].content_id}"
            return value if is_remote(value) else None
        if attribute == "href" and ":" not in value:
            return None  # a relative link leads nowhere from a mailbox
        return value

    cleaned = nh3.clean(
        raw_html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=keep,
        url_schemes=set(URL_SCHEMES),
        url_relative="pass_through",
        link_rel="noopener noreferrer",
    )
    widths = {image.content_id: image.width for image in known.values()}

    def sized(match: re.Match[str]) -> str:
        width = widths.get(html.unescape(match.group(2)))
        attributes = match.group(1)
        if width and "width=" not in attributes:
            attributes += f'width="{width}" '
        return f'<img {attributes}src="cid:{match.group(2)}"'

    return Markup(CID_IMAGE.sub(sized, cleaned))  # noqa: S704 - sanitised just above


def markdown_to_html(source: str, *, images: Mapping[str, BodyImage] | None = None) -> Markup:
    rendered = markdown.markdown(source, extensions=list(MARKDOWN_EXTENSIONS), output_format="html")
    return sanitise(rendered, images=images)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each on one line."""
    return [" ".join(block.split()) for block in text.split("\n\n") if block.strip()]


def linkify(text: str) -> Markup:
    """Escaped text with web addresses and email addresses made into links."""
    pieces: list[str] = []
    position = 0
    for match in URL_OR_EMAIL.finditer(text):
        pieces.append(str(escape(text[position : match.start()])))
        found = match.group(0)
        href = found if match.group("url") else f"mailto:{found}"
        pieces.append(f'<a href="{escape(href)}">{escape(found)}</a>')
        position = match.end()
    pieces.append(str(escape(text[position:])))
    return Markup("".join(pieces))  # noqa: S704 - every piece is escaped


def _is_quotation(paragraph: str) -> bool:
    return paragraph.startswith(QUOTE_MARKS) and paragraph.endswith(CLOSING_MARKS)


def _is_subheading(paragraph: str) -> bool:
    """A short line without a full stop, such as "About SafeLives", in notes to editors."""
    return (
        len(paragraph) <= 80
        and paragraph[:1].isupper()
        and not paragraph.endswith((".", ",", ";", ":", "!", "?"))
        and "@" not in paragraph
    )


def text_to_html(text: str, *, subheadings: bool = False) -> Markup:
    """Plain paragraphs as HTML: quotations as block quotes, addresses as links."""
    blocks = []
    for paragraph in paragraphs(text):
        inner = linkify(paragraph)
        if _is_quotation(paragraph):
            blocks.append(f"<blockquote><p>{inner}</p></blockquote>")
        elif subheadings and _is_subheading(paragraph):
            blocks.append(f"<h3>{inner}</h3>")
        else:
            blocks.append(f"<p>{inner}</p>")
    return sanitise("\n".join(blocks))
