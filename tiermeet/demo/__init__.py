"""The demo plant: its config and the builder that fills a database with believable history."""
