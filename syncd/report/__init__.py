"""The drift report: built from the store alone, rendered for people.

- `build`: `build_report`, the contract's report JSON;
- `figma`: the report's Figma section;
- `render` + `templates/`: table, JSON, Markdown and HTML renderings (French by default).
"""
