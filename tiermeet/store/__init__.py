"""Persistence: SQLModel tables, the engine factory and migrations. Never imports Textual."""
