"""The Textual app. It calls services only: no SQL, no HTTP in screens."""
