"""messenger/crypto."""
