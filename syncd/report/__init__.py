"""The drift report: built from the store alone, rendered for people.

- `model`: `Report`, the contract's report JSON typed;
- `strings`: every text a person reads, one table per language;
- `build`: `build_report`, the report from the store, in one language;
- `figma`: the report's Figma section;
- `render` + `templates/`: table, JSON, Markdown and HTML renderings (French by default).
"""
