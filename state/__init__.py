"""Persistence: SQLModel tables, the store and its Alembic migrations (imports nothing of syncd)."""
