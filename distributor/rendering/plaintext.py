"""The plain-text part: sanitised release HTML written out as readable, wrapped text.

Run once per release, not per message, so it can afford to be thorough; it only has to
understand the small set of tags the sanitiser lets through.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from html.parser import HTMLParser

WIDTH = 72
BLOCKS = frozenset({"p", "h1", "h2", "h3", "h4", "li", "pre", "tr", "caption"})


@dataclass
class _Block:
    kind: str
    prefix: str = ""
    words: list[str] = field(default_factory=list)
    ends_group: bool = False  # the last item of a list or row of a table


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Block] = []
        self.current: _Block | None = None
        self.lists: list[list[int]] = []  # per open list: [ordered?, counter]
        self.quote_depth = 0
        self.links: list[str | None] = []
        self.link_text: list[str] = []
        self.in_pre = False

    # Building blocks ---------------------------------------------------------------------

    def _open(self, kind: str, prefix: str = "") -> None:
        self._close()
        self.current = _Block(kind, "> " * self.quote_depth + prefix)

    def _close(self) -> None:
        if self.current is not None and "".join(self.current.words).strip():
            self.blocks.append(self.current)
        self.current = None

    def _write(self, text: str) -> None:
        if self.current is None:
            self._open("p")
        assert self.current is not None
        self.current.words.append(text)
        if self.links:
            self.link_text.append(text)

    # HTMLParser hooks -------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("ul", "ol"):
            self.lists.append([tag == "ol", 0])
        elif tag == "li":
            prefix = "- "
            if self.lists and self.lists[-1][0]:
                self.lists[-1][1] += 1
                prefix = f"{self.lists[-1][1]}. "
            self._open("li", "  " * max(len(self.lists) - 1, 0) + prefix)
        elif tag == "blockquote":
            self._close()
            self.quote_depth += 1
        elif tag in BLOCKS:
            self._open(tag)
            self.in_pre = tag == "pre"
        elif tag == "br":
            self._write("\n")
        elif tag == "hr":
            self._open("hr")
            self._write("-" * 20)
            self._close()
        elif tag in ("td", "th"):
            if self.current is not None and self.current.words:
                self._write(" | ")
        elif tag == "a":
            self.links.append(values.get("href"))
            self.link_text = []
        elif tag == "img":
            alt = (values.get("alt") or "").strip()
            if alt:
                self._write(f"[{alt}]")

    def _end_group(self) -> None:
        self._close()
        if self.blocks:
            self.blocks[-1].ends_group = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self.lists:
            self._end_group()
            self.lists.pop()
        elif tag == "table":
            self._end_group()
        elif tag == "blockquote":
            self._close()
            self.quote_depth = max(self.quote_depth - 1, 0)
        elif tag in BLOCKS or tag == "li":
            self._close()
            self.in_pre = False
        elif tag == "a" and self.links:
            href = self.links.pop()
            shown = " ".join("".join(self.link_text).split())
            if href:
                target = href.removeprefix("mailto:").removeprefix("tel:")
                if target != shown:
                    self._write(f" <{href.removeprefix('mailto:')}>")

    def handle_data(self, data: str) -> None:
        if self.in_pre:
            self._write(data)
            return
        if data.strip() or (self.current is not None and self.current.words):
            self._write(" ".join(data.split()) if data.strip() else " ")
            if data[:1].isspace() and self.current and len(self.current.words) > 1:
                self.current.words[-1] = " " + self.current.words[-1].lstrip()
            if data[-1:].isspace() and data.strip():
                assert self.current is not None
                self.current.words[-1] += " "


def _render(block: _Block) -> str:
    text = "".join(block.words)
    if block.kind == "pre":
        return "\n".join(block.prefix + line for line in text.strip("\n").split("\n"))
    lines = []
    indent = " " * len(block.prefix.lstrip("> ")) if block.kind == "li" else ""
    quote = block.prefix[: len(block.prefix) - len(block.prefix.lstrip("> "))]
    for number, piece in enumerate(text.split("\n")):
        piece = " ".join(piece.split())
        first = block.prefix if number == 0 else quote + indent
        wrapped = textwrap.wrap(
            piece,
            width=WIDTH,
            initial_indent=first,
            subsequent_indent=quote + indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.extend(wrapped or [first.rstrip()])
    if block.kind in ("h1", "h2"):
        longest = max(len(line) for line in lines)
        lines.append(("=" if block.kind == "h1" else "-") * longest)
    return "\n".join(lines)


def html_to_text(html: str) -> str:
    """Wrapped plain text with blank lines between blocks; links as `text <address>`."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    writer._close()
    pieces: list[str] = []
    previous: _Block | None = None
    for block in writer.blocks:
        if previous is not None:
            # Items of one list and rows of one table stay together.
            tight = (
                block.kind == previous.kind
                and block.kind in ("li", "tr")
                and not previous.ends_group
            )
            pieces.append("\n" if tight else "\n\n")
        pieces.append(_render(block))
        previous = block
    return "".join(pieces)
