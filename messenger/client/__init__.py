"""messenger/client."""
