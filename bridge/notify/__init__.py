"""bridge/notify."""
