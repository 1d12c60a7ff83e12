"""Figma URLs in free text: which file (and which frame) a card points at. Pure functions.

Recognised: ``https://www.figma.com/{file|design|proto|board}/KEY/Title?node-id=5-95`` with the
node id written ``5-95``, ``5:95`` or ``5%3A95``. The node id is returned in Figma's API form
(``5:95``); a URL without ``node-id`` links to the whole file (node id ``""``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_FIGMA_URL = re.compile(
    r"https?://(?:www\.)?figma\.com/(?:file|design|proto|board)/([A-Za-z0-9]{10,64})[^\s)\]>\"'<]*",
    re.IGNORECASE,
)
_NODE_ID = re.compile(r"^(\d+)[-:](\d+)$")


@dataclass(frozen=True)
class FigmaLink:
    file_key: str
    node_id: str  # "5:95", or "" for the whole file
    url: str


def normalise_node_id(raw: str) -> str:
    """``5-95``, ``5%3A95``, ``5:95`` -> ``5:95``; anything else -> ``""``."""
    match = _NODE_ID.match(unquote(raw).strip())
    return f"{match.group(1)}:{match.group(2)}" if match else ""


def find_figma_links(text: str) -> list[FigmaLink]:
    """Every Figma link in `text`, in order, without duplicates."""
    links: list[FigmaLink] = []
    for match in _FIGMA_URL.finditer(text or ""):
        url = match.group(0).rstrip(".,;")
        query = parse_qs(urlsplit(url).query)
        node = normalise_node_id(query.get("node-id", [""])[0])
        link = FigmaLink(match.group(1), node, url)
        if link not in links:
            links.append(link)
    return links
