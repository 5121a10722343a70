"""med/backends."""
