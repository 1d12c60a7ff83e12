"""Write-back: syncd comments on the dashboard card of a flagged département (opt-in).

- `marker`: the intent id written in each comment, and recognising syncd's own comments (pure);
- `attempts`: which process is posting a comment, and whether it can still be (in flight);
- `text`: the French comments (a flag opened, a flag resolved) (pure);
- `plan`: which comments the flags owe, from the flags and the rows already planned (pure);
- `service`: `WriteBack`, one round (plan, reconcile, post within the budget), the dry run,
  `syncd check`'s permission line, and the daemon's `WritebackWorker`.
"""
