"""messenger/audit."""
