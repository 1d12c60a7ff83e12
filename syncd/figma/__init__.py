"""Figma: the mock-up files mirrored within Figma's request budget.

- `engine`: `FigmaMirror`, per-file meta, versions, comments and tree reads, Figma JSON → rows;
- `links`: Figma URLs found in card descriptions and attachments;
- `webhooks`: the Figma webhook V2 route and the event types syncd acts on.
"""
