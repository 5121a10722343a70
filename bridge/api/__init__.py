"""bridge/api."""
