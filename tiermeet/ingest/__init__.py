"""Reading signals from files: the ingest contract (design.md §4) and per-line errors."""
