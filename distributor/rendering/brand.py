"""Brand colours that stay readable: text colour chosen by contrast, links dark enough."""

from __future__ import annotations

from dataclasses import dataclass

WHITE = "#ffffff"
INK = "#1a1a1a"
AA_CONTRAST = 4.5  # WCAG 2 AA for body text


def _channels(colour: str) -> tuple[float, float, float]:
    value = colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255)


def luminance(colour: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_colour_on(background: str) -> str:
    """White or near-black, whichever reads better on `background`."""
    return WHITE if contrast(background, WHITE) >= contrast(background, INK) else INK


def darkened_until_readable(colour: str, *, on: str = WHITE) -> str:
    """The colour, darkened in steps until text in it reaches AA contrast on `on`."""
    r, g, b = _channels(colour)
    for _ in range(20):
        candidate = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if contrast(candidate, on) >= AA_CONTRAST:
            return candidate
        r, g, b = r * 0.85, g * 0.85, b * 0.85
    return INK


@dataclass(frozen=True, slots=True)
class BrandColours:
    primary: str  # the header band
    accent: str  # the embargo banner and rules

    @property
    def on_primary(self) -> str:
        return text_colour_on(self.primary)

    @property
    def on_accent(self) -> str:
        return text_colour_on(self.accent)

    @property
    def link(self) -> str:
        return darkened_until_readable(self.primary)
