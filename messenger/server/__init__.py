"""messenger/server."""
