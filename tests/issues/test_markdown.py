from __future__ import annotations

from html.parser import HTMLParser

import pytest

from issues.markdown import render_markdown


class Elements(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "<a href='https://x.org' onclick='steal()'>x</a>",
        "![x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        '[x](https://x.org "t\\" onmouseover=\\"alert(1)")',
    ],
)
def test_dangerous_input_is_neutralised(source):
    for tag, attrs in Elements(render_markdown(source)).found:
        assert tag not in {"script", "iframe", "object", "style"}
        assert not any(name.startswith("on") for name in attrs)
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").lower().startswith("javascript:")


def test_links_get_noopener():
    html = render_markdown("[Jamestown](https://jamestown.org)")
    assert html == '<p><a href="https://jamestown.org" rel="noopener">Jamestown</a></p>'


def test_tables_render():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<table>" in html
    assert "<td>2</td>" in html


def test_headings_sit_below_the_article_headline():
    assert render_markdown("# Background") == "<h3>Background</h3>"
