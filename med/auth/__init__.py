"""med/auth."""
