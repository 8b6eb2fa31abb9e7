"""Markdown to safe HTML, the one way the site and the email render editors' text."""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Where an image in rendered Markdown may come from, for the Content-Security-Policy
# (img-src) of the pages that show it: anywhere on the web, as render_markdown allows.
IMAGE_SOURCES = ("http:", "https:")


_HEADING = re.compile(r"<(/?)h([1-6])>")
# An article sits under the page's h1 and its own h2 headline: its headings start at h3.
HEADING_SHIFT = 2


def _demote(match: re.Match[str]) -> str:
    return f"<{match[1]}h{min(int(match[2]) + HEADING_SHIFT, 6)}>"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # Raw HTML off: whatever an editor types in angle brackets is shown as text.
    return MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


def render_markdown(text: str) -> str:
    """Render Markdown to HTML that is safe to show anywhere.

    markdown-it-py (CommonMark and tables, raw HTML off), then nh3: no script, no event
    handlers, no javascript: URLs; links get rel="noopener". Headings are demoted so
    that "# Heading" becomes an h3 under the page's h1 and the article's h2."""
    html = _HEADING.sub(_demote, _parser().render(text or ""))
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener",
        strip_comments=True,
    ).strip()
