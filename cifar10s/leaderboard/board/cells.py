"""Table cells both pages share: Markdown text that renders literally, sortable HTML cells, headers.

Every string here may come from a result file, so the Markdown escapes every character that
could start a link, an image, emphasis, HTML or a cell break, and the HTML escapes everything.
"""

from __future__ import annotations

import html
import re

from .results import clean_text

__all__ = ["header", "md", "md_link", "num_cell"]


def md(text: str) -> str:
    """Inline Markdown text that renders literally: no links, images, HTML, emphasis or cell breaks."""
    text = clean_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~$])", r"\\\1", text)


def md_link(label: str, url: str) -> str:
    return f"[{md(label)}]({url})"  # url passed http_url(): http(s), no spaces, parentheses encoded


def header(label: str) -> str:
    """Column header text; after a ``|`` comes a smaller second line."""
    main, _, small = label.partition("|")
    return html.escape(main) + (f"<small>{html.escape(small)}</small>" if small else "")


def num_cell(value: float | None, text: str, sub: str = "") -> str:
    """A right-aligned cell; ``data-v`` is what the script sorts by (empty: sorted last).

    ``sub``: HTML (already escaped) of smaller lines under the value."""
    v = "" if value is None else repr(float(value))
    return f'<td class="num" data-v="{v}">{html.escape(text)}{sub}</td>'
