"""Alembic migrations of the tiermeet schema, shipped inside the package."""
