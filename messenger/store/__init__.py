"""messenger/store."""
