"""syncd: mirrors the consortium Trello and Figma data into SQL and flags governance drift."""
