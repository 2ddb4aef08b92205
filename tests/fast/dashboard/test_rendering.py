"""The dashboard's own elements show names as typed: whatever a name holds, the HTML holds only the
dashboard's tags and links, and its text is the name (control and bidi characters as escapes)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from bitbucket_assets.dashboard.rendering import Link, anchor, element, linked_table
from bitbucket_assets.reporting.safe_text import visible

HOSTILE = [
    "![pixel](http://evil.example/p.png) Ana",
    '<img src="http://evil.example/x.png" onerror="alert(1)"> Ben',
    '"><script>alert(1)</script>',
    "[Ben](javascript:alert(1)) **b** _i_ `c` ~~s~~",
    "Carl :smile: :material/home: :red[alert] $x^2$ A&amp;B &lt;i&gt;",
    "Dev \u202eliveE\u202c \u2067RTL\u2069 \u200fmark\x1b[31m\nnext line",
    "www.evil.example and mallory@evil.example",
]


class Parsed(HTMLParser):
    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("name", HOSTILE)
def test_an_element_holds_the_name_as_text_only(name: str) -> None:
    parsed = Parsed(element(name, "h3"))
    assert parsed.tags == [("h3", {"class": "bb-text"})]
    assert "".join(parsed.text) == visible(name)


def test_a_linked_table_holds_only_the_dashboards_links() -> None:
    links = [Link(name, f"?page=Person&user=u{i}") for i, name in enumerate(HOSTILE)]
    rows = [(name, f"via group {name} (write)", None, float("nan")) for name in HOSTILE]
    parsed = Parsed(linked_table("person", links, ["name", "paths", "empty", "missing"], rows))
    assert {tag for tag, _ in parsed.tags} == {"table", "thead", "tbody", "tr", "th", "td", "a"}
    anchors = [attrs for tag, attrs in parsed.tags if tag == "a"]
    assert [a["href"] for a in anchors] == [f"?page=Person&user=u{i}" for i in range(len(HOSTILE))]
    assert all(set(a) == {"href"} for a in anchors)
    text = "".join(parsed.text)
    assert all(visible(name) in text for name in HOSTILE) and "nan" not in text


def test_linked_cells_and_text_in_place_of_links_show_names_as_typed() -> None:
    """A second linked column (a risk's resource, a change's row count) and text where no page exists (a
    group, a workspace) are escaped like the first column."""
    first = [Link(name, f"?page=Person&user=u{i}") if i % 2 else name for i, name in enumerate(HOSTILE)]
    second = [
        Link(name, f"?page=Who+has+access&r={i}") if i % 2 == 0 else None for i, name in enumerate(HOSTILE)
    ]
    rows = [(name, name) for name in HOSTILE]
    parsed = Parsed(linked_table("person", first, ["resource", "detail"], rows, {"resource": second}))
    anchors = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert sorted(anchors) == sorted(
        [f"?page=Person&user=u{i}" for i in range(1, len(HOSTILE), 2)]
        + [f"?page=Who+has+access&r={i}" for i in range(0, len(HOSTILE), 2)]
    )
    assert {tag for tag, _ in parsed.tags} == {"table", "thead", "tbody", "tr", "th", "td", "a"}
    text = "".join(parsed.text)
    assert all(text.count(visible(name)) >= 3 for name in HOSTILE)


@pytest.mark.parametrize("name", HOSTILE)
def test_an_anchor_holds_the_name_as_text_only(name: str) -> None:
    parsed = Parsed(anchor(Link(name, "?page=Changes&user=all")))
    assert parsed.tags == [("p", {"class": "bb-text bb-caption"}), ("a", {"href": "?page=Changes&user=all"})]
    assert "".join(parsed.text) == visible(name)


def test_the_dashboard_links_only_to_itself() -> None:
    with pytest.raises(ValueError, match="links only to itself"):
        Link("Ana", "http://evil.example/")


@pytest.mark.parametrize(
    ("control", "escape"),
    [
        *((chr(c), f"\\u{c:04x}") for c in (0x202A, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069)),
        ("\u200e", "\\u200e"),  # LRM
        ("\u200f", "\\u200f"),  # RLM
        ("\u061c", "\\u061c"),  # ALM
        ("\x1b", "\\x1b"),
        ("\n", "\\x0a"),
    ],
)
def test_every_bidi_and_control_character_shows_as_an_escape(control: str, escape: str) -> None:
    assert visible(f"Ana{control}Ben") == f"Ana{escape}Ben"
    assert control not in element(f"Ana{control}Ben")
