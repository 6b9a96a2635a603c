"""What spam filters and mail programs punish in a release, told when it is saved.

Warnings, not refusals: the press officer may have a reason. Each names what was found and
what to do. (The HTML size against Gmail's clipping limit is `PreparedRelease.warnings`.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from distributor.releases.content import ReleaseContent
from distributor.rendering.personal import PROBE_VALUES, Variant, values_for
from distributor.rendering.render import RenderSetup, prepare_release

# Link shorteners: they hide where a link goes, so filters score them and some block them.
SHORTENERS = frozenset(
    {
        "bit.ly",
        "bitly.com",
        "buff.ly",
        "cutt.ly",
        "goo.gl",
        "is.gd",
        "lnkd.in",
        "ow.ly",
        "rb.gy",
        "rebrand.ly",
        "shorturl.at",
        "t.co",
        "t.ly",
        "tiny.cc",
        "tinyurl.com",
        "trib.al",
        "v.gd",
    }
)
# Fewer words than this beside a picture reads to filters as an image-only message.
MIN_WORDS_WITH_IMAGES = 50
# A plain-text part with under this share of the HTML's words is as good as missing.
MIN_TEXT_SHARE = 0.3
MIN_CAPS_WORDS = 3
_DOMAIN = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?$", re.I
)
_EMAIL = re.compile(r"^(?:mailto:)?[^@\s]+@([a-z0-9.-]+\.[a-z]{2,})$", re.I)
_TEXT_URL = re.compile(r"https?://[^\s<>()\"']+", re.I)
_WORD = re.compile(r"[^\W\d_]{2,}")
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_INVISIBLE = frozenset({"style", "script", "head", "title"})


class _Page(HTMLParser):
    """Images, links and visible words of an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []  # (src, alt)
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.words = 0
        self._hidden = 0
        self._link: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in _INVISIBLE:
            self._hidden += 1
        elif tag == "img":
            self.images.append((attributes.get("src") or "", attributes.get("alt")))
        elif tag == "a" and attributes.get("href"):
            self._link = (attributes["href"] or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self._hidden = max(self._hidden - 1, 0)
        elif tag == "a" and self._link is not None:
            href, text = self._link
            self.links.append((href, " ".join("".join(text).split())))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.words += len(_WORD.findall(data))
        if self._link is not None:
            self._link[1].append(data)


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def _same_site(one: str, other: str) -> bool:
    return one == other or one.endswith("." + other) or other.endswith("." + one)


def _shown_domain(text: str) -> str | None:
    """The domain a link's text shows, when it shows one (a URL, a bare domain, an address)."""
    email = _EMAIL.match(text)
    if email:
        return email.group(1).lower()
    shown = _DOMAIN.match(text)
    return shown.group(1).lower().removeprefix("www.") if shown else None


def _target_domain(href: str) -> str | None:
    if href.lower().startswith("mailto:"):
        email = _EMAIL.match(unquote(href.split("?", 1)[0]))
        return email.group(1).lower() if email else None
    if href.lower().startswith(("http://", "https://")):
        return _host(href)
    return None


def subject_warnings(subject: str) -> list[str]:
    words = _WORD.findall(subject)
    shouting = [w for w in words if w.isupper()]
    if len(shouting) >= MIN_CAPS_WORDS and len(shouting) * 2 > len(words):
        return [
            f"the headline {subject!r} is in capitals: filters score all-caps subjects as "
            "spam and readers take them for shouting; write it in sentence case"
        ]
    return []


def link_warnings(links: list[tuple[str, str]], text: str) -> list[str]:
    warnings = []
    shortened = sorted(
        {h for h in (_host(href) for href, _ in links) if h in SHORTENERS}
        | {h for h in (_host(url) for url in _TEXT_URL.findall(text)) if h in SHORTENERS}
    )
    if shortened:
        warnings.append(
            f"links through a URL shortener ({', '.join(shortened)}): filters distrust links "
            "that hide where they go; link to the page itself"
        )
    for href, label in links:
        shown, target = _shown_domain(label), _target_domain(href)
        if shown and target and not _same_site(shown, target):
            warnings.append(
                f"the link text {label!r} shows {shown} but the link goes to {target}: "
                "filters treat that as phishing; make the text match the address, or use words"
            )
    return warnings


def image_warnings(images: list[tuple[str, str | None]], *, pictures: int, words: int) -> list[str]:
    """`images`: every <img> of the HTML; `pictures`: how many the release itself shows
    (not the logo); `words`: how many the press officer wrote."""
    warnings = []
    unlabelled = [src for src, alt in images if not (alt or "").strip()]
    if unlabelled:
        names = ", ".join(sorted({src.removeprefix("cid:").split("@")[0] for src in unlabelled}))
        warnings.append(
            f"{len(unlabelled)} picture(s) without alt text ({names}): mail programs that "
            "block pictures show nothing in their place, and filters notice; describe each one"
        )
    if pictures and words < MIN_WORDS_WITH_IMAGES:
        warnings.append(
            f"the release is mostly pictures ({words} words of text beside {pictures} "
            "picture(s)): filters score image-only mail as spam and many mail programs hide "
            f"pictures until asked; tell the story in words ({MIN_WORDS_WITH_IMAGES} or more)"
        )
    return warnings


def text_part_warnings(*, html_words: int, text: str, template: str) -> list[str]:
    text_words = len(_WORD.findall(_TEXT_URL.sub(" ", text)))
    if text_words == 0:
        return [
            "the plain-text part is empty: filters score HTML-only mail, and some readers "
            f"only see the text; check the template {template}"
        ]
    if html_words >= MIN_WORDS_WITH_IMAGES and text_words < MIN_TEXT_SHARE * html_words:
        return [
            f"the plain-text part has {text_words} words against the HTML's {html_words}: "
            f"filters score a text part that does not match the HTML; check the template {template}"
        ]
    return []


def release_words(content: ReleaseContent) -> int:
    """Words the press officer wrote: standfirst, body and quotes, without picture syntax."""
    draft = content.draft
    written = " ".join(
        [draft.headline, draft.standfirst, draft.body, *(q.text for q in draft.quotes)]
    )
    return len(_WORD.findall(_TEXT_URL.sub(" ", _MARKDOWN_IMAGE.sub(" ", written))))


def content_warnings(content: ReleaseContent, *, setup: RenderSetup) -> list[str]:
    """Warnings about the release as a journalist receives it (the lifted, named variant)."""
    prepared = prepare_release(content, setup=setup, notice=None)
    variant = Variant(embargoed=False, local_embargo=False, named=True, with_outlet=True)
    rendered = prepared.variant(variant)
    values = values_for(variant, PROBE_VALUES)
    html = rendered.html.fill(values.__getitem__)
    text = rendered.text.fill(values.__getitem__)
    page = _Page()
    page.feed(html)
    page.close()
    remote = [m for m in _MARKDOWN_IMAGE.findall(content.draft.body) if "](http" in m]
    return [
        *subject_warnings(content.draft.headline),
        *image_warnings(
            page.images,
            pictures=len(content.draft.images) + len(remote),
            words=release_words(content),
        ),
        *link_warnings(page.links, text),
        *text_part_warnings(html_words=page.words, text=text, template=prepared.template_names[1]),
    ]
