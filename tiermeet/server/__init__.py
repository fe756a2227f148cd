"""The central API: signals in from AI systems, sync push and pull for plants, tokens."""
