"""Rendering a release once per send: templates, inlined CSS, skeletons per variant."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import css_inline
from jinja2 import Environment

from distributor.releases.content import ReleaseContent
from distributor.releases.draft import AttachmentFile
from distributor.rendering.announcements import NOTICE_TEMPLATE, Announcement
from distributor.rendering.brand import BrandColours
from distributor.rendering.embargo_notice import EmbargoNotice
from distributor.rendering.personal import (
    PROBE_VALUES,
    SLOTS,
    PersonalisationError,
    Skeleton,
    Variant,
    placeholder,
    prove,
    values_for,
)
from distributor.rendering.problems import TemplateProblem, describe
from distributor.rendering.view import InlineImage, SharedView, shared_view, template_context

# Gmail shows only the first 102 KB of a message's HTML, behind "[Message clipped]".
GMAIL_CLIP_BYTES = 102 * 1024
DEFAULT_COLOURS = BrandColours(primary="#1d3557", accent="#a4161a")
TEST_PREFIX = "[TEST] "
CORRECTION_PREFIX = "CORRECTION"

# One inliner for the process: @media rules (dark mode, narrow screens) stay in a <style>,
# nothing is fetched from the network.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class RenderSetup:
    """What rendering needs from the installation: templates and default brand colours."""

    environment: Environment
    colours: BrandColours = DEFAULT_COLOURS
    content_id_domain: str = "distributor.local"


@dataclass(frozen=True, slots=True)
class RenderedVariant:
    subject: str
    html: Skeleton  # CSS inlined
    text: Skeleton
    # The inline images this variant's HTML shows, in order.
    images: tuple[InlineImage, ...]


@dataclass
class PreparedRelease:
    """A release rendered for one send; variants are rendered the first time one is needed."""

    content: ReleaseContent
    setup: RenderSetup
    notice: EmbargoNotice | None
    test: bool = False
    # Set for a notice about the release (lifted, moved, withdrawn) instead of the release.
    announcement: Announcement | None = None
    # The press officer's note at the top of a correction; None for anything else.
    correction: str | None = None
    shared: SharedView = field(init=False)
    _variants: dict[Variant, RenderedVariant] = field(default_factory=dict, repr=False)
    _largest_html: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.shared = shared_view(
            self.content,
            colours=self.setup.colours,
            content_id_domain=self.setup.content_id_domain,
        )

    @property
    def warnings(self) -> list[str]:
        """What may go wrong in mail programs, for the variants rendered so far."""
        if self._largest_html <= GMAIL_CLIP_BYTES:
            return []
        return [
            f"the HTML of this release is {self._largest_html / 1024:.0f} KB; Gmail clips "
            f"messages over {GMAIL_CLIP_BYTES // 1024} KB and hides the rest (the unsubscribe "
            "link included) behind 'View entire message' — shorten the release or move "
            "material into an attachment"
        ]

    @property
    def headline(self) -> str:
        return self.shared.release.headline

    @property
    def attachments(self) -> tuple[AttachmentFile, ...]:
        return self.shared.attachments

    @property
    def template_names(self) -> tuple[str, str]:
        name = NOTICE_TEMPLATE if self.announcement else self.content.draft.template
        return f"{name}.html.j2", f"{name}.txt.j2"

    def subject(self, variant: Variant) -> str:
        subject = self.headline
        if self.announcement is not None:
            subject = f"{self.announcement.subject_prefix}: {subject}"
        elif self.correction is not None:
            subject = f"{CORRECTION_PREFIX}: {subject}"
        elif variant.embargoed and self.notice is not None:
            subject = f"{self.notice.subject_prefix}: {subject}"
        return TEST_PREFIX + subject if self.test else subject

    def variant(self, variant: Variant) -> RenderedVariant:
        rendered = self._variants.get(variant)
        if rendered is None:
            rendered = self._variants[variant] = self._render(variant)
        return rendered

    def all_variants(self) -> list[RenderedVariant]:
        """Every variant this send can produce: renders (and so checks) each branch."""
        embargo_choices = [(False, False)]
        if self.notice is not None:
            embargo_choices += [(True, False), (True, True)]
        return [
            self.variant(Variant(embargoed, local, named, with_outlet))
            for (embargoed, local), named, with_outlet in itertools.product(
                embargo_choices, (True, False), (True, False)
            )
        ]

    # Rendering ---------------------------------------------------------------------------

    def _render_template(self, name: str, context: dict[str, Any]) -> str:
        environment = self.setup.environment
        try:
            return environment.get_template(name).render(context)
        except Exception as exc:  # any failure in template code is the template's
            raise describe(exc, environment, rendering=name) from exc

    def _render(self, variant: Variant) -> RenderedVariant:
        subject = self.subject(variant)
        marked = template_context(
            self.shared,
            variant=variant,
            notice=self.notice,
            values=values_for(variant, {slot: placeholder(slot) for slot in SLOTS}),
            subject=subject,
            test=self.test,
            announcement=self.announcement,
            correction=self.correction,
        )
        probed = template_context(
            self.shared,
            variant=variant,
            notice=self.notice,
            values=values_for(variant, PROBE_VALUES),
            subject=subject,
            test=self.test,
            announcement=self.announcement,
            correction=self.correction,
        )
        html_name, text_name = self.template_names
        html = self._skeleton(html_name, marked, probed, html=True)
        text = self._skeleton(text_name, marked, probed, html=False)
        inlined_html = INLINER.inline(html.fill(placeholder))
        if not inlined_html.endswith("\n"):
            inlined_html += "\n"  # the inliner drops the template's final line break
        inlined = self._skeleton_of(html_name, inlined_html)
        size = len(inlined.without_placeholders().encode("utf-8"))
        self._largest_html = max(self._largest_html, size)
        html_text = inlined.without_placeholders()
        images = tuple(i for i in self.shared.images if f"cid:{i.content_id}" in html_text)
        return RenderedVariant(subject=subject, html=inlined, text=text, images=images)

    def _skeleton(
        self, name: str, marked: dict[str, Any], probed: dict[str, Any], *, html: bool
    ) -> Skeleton:
        skeleton = self._skeleton_of(name, self._render_template(name, marked))
        try:
            prove(skeleton, self._render_template(name, probed), html=html)
        except PersonalisationError as exc:
            raise TemplateProblem(str(exc), template=name, line=None) from None
        return skeleton

    @staticmethod
    def _skeleton_of(name: str, text: str) -> Skeleton:
        try:
            return Skeleton.parse(text)
        except PersonalisationError as exc:
            raise TemplateProblem(str(exc), template=name, line=None) from None


def prepare_release(
    content: ReleaseContent,
    *,
    setup: RenderSetup,
    notice: EmbargoNotice | None,
    test: bool = False,
    announcement: Announcement | None = None,
    correction: str | None = None,
) -> PreparedRelease:
    return PreparedRelease(
        content=content,
        setup=setup,
        notice=notice,
        test=test,
        announcement=announcement,
        correction=correction,
    )


def check_release_renders(
    content: ReleaseContent, *, setup: RenderSetup, notice: EmbargoNotice | None
) -> list[str]:
    """Render every variant of the release; raises TemplateProblem, returns warnings."""
    prepared = prepare_release(content, setup=setup, notice=notice)
    prepared.all_variants()
    return prepared.warnings


def context_for(
    content: ReleaseContent,
    *,
    name: str,
    outlet: str,
    email: str,
    unsubscribe_url: str,
    notice: EmbargoNotice | None = None,
    colours: BrandColours = DEFAULT_COLOURS,
) -> dict[str, Any]:
    """The context the bundled templates expect, for one recipient, filled in directly.

    For tools and comparisons that render a template themselves; sends use
    `prepare_release`, which renders once per send rather than once per recipient.
    """
    shared = shared_view(content, colours=colours, content_id_domain="distributor.local")
    variant = Variant(notice is not None, False, bool(name), bool(outlet))
    values = values_for(
        variant,
        {
            "recipient.name": name,
            "recipient.outlet": outlet,
            "recipient.email": email,
            "embargo.local": "",
            "unsubscribe_url": unsubscribe_url,
        },
    )
    subject = shared.release.headline
    if notice is not None:
        subject = f"{notice.subject_prefix}: {subject}"
    return template_context(
        shared, variant=variant, notice=notice, values=values, subject=subject, test=False
    )
