"""Figma webhook V2 deliveries: the route and the event types syncd acts on."""

from __future__ import annotations

FIGMA_PATH = "/webhooks/figma"
FIGMA_EVENTS = frozenset({"FILE_UPDATE", "FILE_VERSION_UPDATE", "FILE_COMMENT", "PING"})
