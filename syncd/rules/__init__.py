"""The consortium's governance rules: départements, links, priority actions, referents, flags.

- `departments`: the 101 départements and the text matcher (pure);
- `governance`: `evaluate`, links, priority actions, referents, topics and findings (pure);
  `FlagCode`; `Rules`, the ``[governance]`` settings;
- `facts`: stored rows → the rules' input (`CardFacts`, `ListFacts`);
- `flags`: recomputes the flags after a sync and records their history.
"""
