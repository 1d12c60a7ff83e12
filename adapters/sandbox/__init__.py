"""A loopback imitation of the Trello (and, through a hook, Figma) APIs that syncd uses.

Owns the public surface of the sandbox: ``Sandbox`` (the HTTP server, request counting, fault
injection), ``TrelloWorld`` (the mutable Trello state) and the sample-data builders. The Figma
imitation lives in ``figma_world.py`` and is plugged in through ``Sandbox.figma``: any object with
``handle(method, path, query, headers, body) -> (status, headers, body)``.
"""

from __future__ import annotations

from .sample import (
    CONSORTIUM_SHORT_LINK,
    FIGMA_BROKEN_URL,
    FIGMA_FILE_KEY,
    FIGMA_URLS,
    LARGE_SHORT_LINK,
    PRODUCT_SHORT_LINK,
    build_large_world,
    build_sample_world,
)
from .server import FigmaHandler, RecordedRequest, Sandbox
from .trello_world import (
    EXCLUDED_ACTION_TYPES,
    Delivery,
    TrelloWorld,
    id_timestamp,
    iso,
    object_id,
    parse_iso,
    webhook_signature,
)

__all__ = [
    "CONSORTIUM_SHORT_LINK",
    "EXCLUDED_ACTION_TYPES",
    "FIGMA_BROKEN_URL",
    "FIGMA_FILE_KEY",
    "FIGMA_URLS",
    "LARGE_SHORT_LINK",
    "PRODUCT_SHORT_LINK",
    "Delivery",
    "FigmaHandler",
    "RecordedRequest",
    "Sandbox",
    "TrelloWorld",
    "build_large_world",
    "build_sample_world",
    "id_timestamp",
    "iso",
    "object_id",
    "parse_iso",
    "webhook_signature",
]
