"""Trello: the sync engine, Trello JSON → rows, webhook deliveries and their application.

- `rows`: the one conversion from Trello JSON (snapshots, refetched cards, actions) to rows;
- `engine`: `Mirror`, the change check, incremental refetch and full snapshot of each board;
- `webhooks`: the ``X-Trello-Webhook`` signature, the delivery payload, `BoardIndex`;
- `apply`: one accepted action applied to the store (direct, refetch or board sync);
- `admin`: ``syncd webhooks register|list|delete``.
"""
