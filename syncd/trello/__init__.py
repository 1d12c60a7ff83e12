"""Trello: the sync engine, Trello JSON → rows, webhook deliveries and their application.

- `rows`: the one conversion from Trello JSON (snapshots, refetched cards, actions) to rows,
  with the card field table;
- `actions`: what an action means: its card, its plan, its direct application onto rows;
- `engine`: `Mirror`, the change check, incremental refetch and full snapshot of each board;
- `webhooks`: the ``X-Trello-Webhook`` signature, the delivery payload, `BoardIndex`;
- `apply`: accepted deliveries applied to the store (direct, refetches coalesced, board sync);
- `admin`: ``syncd webhooks register|list|delete``.
"""
